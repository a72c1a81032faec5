"""The broker's log: one line per event on stderr (the journal, under systemd).

Refusals, delivery problems and errors go here, with the job, the caller's uid and the
reason, never a secret's value. The agent passes its own log function instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

# Writes one line of the broker's log.
Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    """Write ``cronsync broker: MESSAGE`` on stderr, at once."""
    print(f"cronsync broker: {message}", file=sys.stderr, flush=True)
