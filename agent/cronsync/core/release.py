"""A release directory's names and the ``jobs.json`` format version.

Shared by what writes a release (:mod:`cronsync.core.compiled`,
:mod:`cronsync.host.install`) and what reads one (the shim's
:mod:`cronsync.run.jobspec`, ``status``). Imports nothing: the shim reads it at start-up.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Any, Optional

RELEASE_REPO = "repo"  # the exported tree of the commit, inside releases/<name>/
JOBS_FILE = "jobs.json"  # the compiled jobs, beside it
FORMAT = 1  # the jobs.json format this cronsync writes and reads; a change that an
# older shim could misread bumps it


def format_problem(value: Any, program: str) -> Optional[str]:
    """Say why a jobs.json ``format`` cannot be read by this ``program`` (None: it can).

    A newer sync may write a format that a running older shim or CLI would misread;
    they refuse it rather than guess.
    """
    if value == FORMAT and isinstance(value, int) and not isinstance(value, bool):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return f"release format {value} needs a newer {program} (this one reads format 1)"
    return f"not a cronsync jobs file (format {value!r}, expected {FORMAT})"
