"""JSON for the shim's start-up path, without importing :mod:`json`.

Importing ``json`` compiles its regular expressions (and imports ``re`` and ``enum``
for them): about a quarter of ``cronsync-run``'s start-up. The shim reads the release's
jobs file and ``last.json`` and writes run records on every run, so it uses what
``json`` itself uses underneath: CPython's C scanner and string encoder from ``_json``.
The output of :func:`dumps` is byte for byte what ``json.dumps`` gives for the same
arguments (a test checks it), and :func:`loads` accepts exactly what ``json.loads``
does. Where ``_json`` is missing (another Python), or for the message of a document
that is not JSON, ``json`` itself is imported after all.

On the shim's start-up path: no typing at import time.
"""

from __future__ import annotations

import math

try:
    import _json
except ImportError:  # pragma: no cover - CPython has it
    _json = None  # type: ignore[assignment]

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Context:
    """What the C scanner reads from its context: ``json.loads``'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = getattr(_json, "make_scanner", None)
_scan_once = _scan(_Context()) if _scan is not None else None
_encode_string = getattr(_json, "encode_basestring_ascii", None)


def loads(text: str) -> Any:
    """Parse a JSON document, as ``json.loads(text)`` does.

    Raises:
        ValueError: ``text`` is not one JSON document (``json.JSONDecodeError``).
        RecursionError: it is nested too deeply.
    """
    if _scan_once is not None:
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scan_once(text, start)
        except RecursionError:
            raise
        except Exception:  # noqa: S110 - json below says what is wrong, and where
            pass
        else:
            if not text[end:].strip(_WHITESPACE):
                return value
    import json

    return json.loads(text)


def dumps(value: Any, *, indent: int = 1, sort_keys: bool = False) -> str:
    """Return ``json.dumps(value, indent=indent, sort_keys=sort_keys)``.

    Handles what records hold: dicts with string keys, lists and tuples, strings,
    ints, floats, booleans and None.

    Raises:
        TypeError: ``value`` holds anything else (or a dict key that is not a string).
    """
    parts: list[str] = []
    _encode(value, parts, " " * indent, "\n", sort_keys)
    return "".join(parts)


def _encode(value: Any, parts: list[str], step: str, newline: str, sort_keys: bool) -> None:
    """Append the JSON text of ``value`` to ``parts``; ``newline`` is a line break and
    the current indentation."""
    if isinstance(value, str):
        parts.append(_string(value))
    elif value is None or isinstance(value, (bool, int, float)):
        parts.append(_scalar(value))
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        inner = newline + step
        items = sorted(value.items()) if sort_keys else value.items()
        parts.append("{")
        for index, (key, item) in enumerate(items):
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            parts.append(("," if index else "") + inner + _string(key) + ": ")
            _encode(item, parts, step, inner, sort_keys)
        parts.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            parts.append("[]")
            return
        inner = newline + step
        parts.append("[")
        for index, item in enumerate(value):
            parts.append(("," if index else "") + inner)
            _encode(item, parts, step, inner, sort_keys)
        parts.append(newline + "]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _scalar(value: Any) -> str:
    """JSON text of None, a bool, an int or a float (as ``json`` writes them)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _string(text: str) -> str:
    """A JSON string, ASCII only (``json``'s default ``ensure_ascii``)."""
    if _encode_string is not None:
        return str(_encode_string(text))
    import json

    return json.dumps(text)
