"""The JSON output of the ``cronsync`` command: documents and the error document.

A command given ``--json`` prints one document on stdout; one that ends with an error
prints the ``cronsync.error/1`` document instead, so a script always has JSON to read.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

ERROR_FORMAT = "cronsync.error/1"


def emit_json(data: Any) -> None:
    """Print ``data`` on stdout as indented JSON with sorted keys (``str`` for values
    JSON has no type for, ``null`` for a float that is infinite or not a number: a run
    record's user can write one, and JSON has none), then a newline."""
    json.dump(_finite(data), sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float inside it (dicts, lists, tuples) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def error_document(line: str, exit_code: int) -> dict[str, Any]:
    """The ``--json`` answer of a command that ends with an error.

    Args:
        line: the one line printed on stderr (``cronsync: ...``).
        exit_code: the command's exit code.

    Returns:
        ``{"format": "cronsync.error/1", "error": line, "exit_code": exit_code}``.
    """
    return {"format": ERROR_FORMAT, "error": line, "exit_code": exit_code}


def emit_error_json(line: str, exit_code: int) -> None:
    """Print the error document on stdout; a closed stdout is left alone (stderr has
    the line already)."""
    try:
        emit_json(error_document(line, exit_code))
        sys.stdout.flush()
    except OSError:
        pass
