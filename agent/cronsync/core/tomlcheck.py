"""Check parsed TOML against a schema: types, required keys, unknown keys.

Pure: takes text or parsed tables, returns Problems. Every Problem carries the file,
the dotted field and the line it was written on (found by ``locate_keys``, since the
standard TOML parser does not report positions).
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.core import schema
from cronsync.core.durations import parse_duration
from cronsync.core.model import Problem
from cronsync.core.schema import Field
from cronsync.core.urls import redact_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TABLE_HEADER = re.compile(r"\[\[?\s*([^\]]+?)\s*\]\]?")
_KEY_PART = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY = re.compile(rf"({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_BOM = "\ufeff"
BOM_MESSAGE = "starts with a UTF-8 byte-order mark; save the file without it"


@dataclass(frozen=True)
class Located:
    """A parsed TOML file with the line of each dotted key."""

    path: str
    data: Mapping[str, Any]
    lines: Mapping[str, int]

    def problem(self, dotted: str, message: str) -> Problem:
        """Build a Problem at ``dotted`` (or the nearest enclosing key that has a line)."""
        key = dotted
        while key and key not in self.lines:
            key = key.rpartition(".")[0]
        return Problem(self.path, self.lines.get(key), dotted, message)


def _split_key(raw: str) -> list[str]:
    parts = re.findall(_KEY_PART, raw)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _multiline_state(line: str, open_quote: str) -> str:
    """Return the multi-line string delimiter still open after ``line`` ("" if none)."""
    position = 0
    while True:
        if open_quote:
            end = line.find(open_quote, position)
            if end < 0:
                return open_quote
            position, open_quote = end + 3, ""
            continue
        starts = [(line.find(q, position), q) for q in ('"""', "'''")]
        starts = [(index, q) for index, q in starts if index >= 0]
        comment = line.find("#", position)
        if not starts or (0 <= comment < min(starts)[0]):
            return ""
        index, open_quote = min(starts)
        position = index + 3


def locate_keys(text: str) -> dict[str, int]:
    """Map each dotted key of a TOML document to the 1-based line it is written on.

    A best-effort scan (tables, dotted keys, quoted keys); the first occurrence wins.
    """
    found: dict[str, int] = {}
    table: list[str] = []
    open_quote = ""  # the delimiter of a multi-line string we are inside, if any
    # split on "\n" only: splitlines() also breaks at U+2028, U+0085 and the like,
    # which TOML allows in comments and strings, and would shift every line after them
    for number, line in enumerate(text.split("\n"), 1):
        inside, open_quote = bool(open_quote), _multiline_state(line, open_quote)
        if inside:
            continue
        stripped = line.strip()
        header = _TABLE_HEADER.match(stripped) if stripped.startswith("[") else None
        if header:
            table = _split_key(header.group(1))
            found.setdefault(".".join(table), number)
            continue
        key = _KEY.match(stripped)
        if key:
            found.setdefault(".".join([*table, *_split_key(key.group(1))]), number)
    return found


def parse_toml(path: str, text: str) -> tuple[Optional[Located], list[Problem]]:
    """Parse TOML text.

    Returns:
        The located document, or None with one Problem naming the line of the syntax
        error (or, for text starting with a UTF-8 byte-order mark, line 1 and what to
        do about it: TOML allows no BOM, and the parser would only say "Invalid
        statement").
    """
    if text.startswith(_BOM):
        return None, [Problem(path, 1, "", BOM_MESSAGE)]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = int(position.group(1)) if position else None
        reason = _TOML_POSITION.sub("", message).strip()
        return None, [Problem(path, line, "", f"invalid TOML: {reason}")]
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
        return None, [Problem(path, None, "", f"invalid TOML: {str(exc)[:120]}")]
    return Located(path, data, locate_keys(text)), []


def _type_name(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _bad_type(expected: str, value: object) -> str:
    # redacted: a misplaced value may be a URL with credentials (agent.toml repo.url)
    return f"expected {expected}, got {_type_name(value)} ({redact_url(repr(value))[:40]})"


def _check_string(value: object, multiline: bool) -> Optional[str]:
    if not isinstance(value, str):
        return _bad_type("a string", value)
    if not value.strip():
        return "must not be empty"
    if "\x00" in value:
        return "contains a NUL character"
    if not multiline and _CONTROL.search(value):
        return "contains a line break or control character (it would break the crontab)"
    return None


def _check_argv(value: object) -> Optional[str]:
    if not isinstance(value, list) or not value:
        return _bad_type("a non-empty list of strings", value)
    for item in value:
        if not isinstance(item, str):
            return f"every item must be a string, got {_type_name(item)} ({item!r:.40})"
        if "\x00" in item:
            return "an item contains a NUL character"
    if not value[0].strip():
        return "the program (first item) must not be empty"
    return None


def _check_string_list(value: object) -> Optional[str]:
    if not isinstance(value, list):
        return _bad_type("a list of strings", value)
    for item in value:
        problem = _check_string(item, multiline=False)
        if problem:
            return f"item {item!r:.40}: {problem}"
    return None


def _check_scalar(item: Field, value: object) -> Optional[str]:
    """Check one non-table value; return a message or None when it is fine."""
    kind = item.kind
    if kind in (schema.STRING, schema.TEXT):
        return _check_string(value, multiline=kind == schema.TEXT)
    if kind == schema.BOOL:
        return None if isinstance(value, bool) else _bad_type("true or false", value)
    if kind == schema.INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else _bad_type("a whole number >= 0", value)
    if kind == schema.DURATION:
        if not isinstance(value, str):
            return _bad_type('a duration string such as "45m"', value)
        try:
            parse_duration(value)
        except ValueError as exc:
            return str(exc)
        return None
    if kind == schema.ARGV:
        return _check_argv(value)
    if kind == schema.STRING_LIST:
        return _check_string_list(value)
    if kind == schema.ENUM:
        if value in item.choices:
            return None
        return f"{value!r:.40} is not one of {', '.join(item.choices)}{_hint(value, item.choices)}"
    raise AssertionError(f"unknown kind {kind}")  # a schema bug, not a user mistake


def _hint(value: object, names: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_env_table(doc: Located, dotted: str, value: object) -> list[Problem]:
    if not isinstance(value, dict):
        return [doc.problem(dotted, _bad_type('a table of NAME = "value"', value))]
    problems = []
    for name, text in value.items():
        where = f"{dotted}.{name}"
        if not ENV_NAME.fullmatch(name):
            problems.append(
                doc.problem(
                    where,
                    "not a valid environment variable name "
                    "(letters, digits and _, not starting with a digit)",
                )
            )
        elif not isinstance(text, str):
            problems.append(doc.problem(where, _bad_type("a string", text)))
        elif "\x00" in text:
            problems.append(doc.problem(where, "contains a NUL character"))
    return problems


_SECRET_KEYS = ("secret", "key")


def _check_secrets_table(doc: Located, dotted: str, value: object) -> list[Problem]:
    if not isinstance(value, dict):
        return [doc.problem(dotted, _bad_type("a table of NAME = reference", value))]
    problems = []
    for name, ref in value.items():
        where = f"{dotted}.{name}"
        if not ENV_NAME.fullmatch(name):
            problems.append(doc.problem(where, "not a valid environment variable name"))
        elif isinstance(ref, dict):
            for key in ref:
                if key not in _SECRET_KEYS:
                    problems.append(
                        doc.problem(
                            f"{where}.{key}",
                            f"unknown key{_hint(key, _SECRET_KEYS)}; a secret "
                            'reference is { secret = "name", key = "json-key" }',
                        )
                    )
            for key in _SECRET_KEYS:
                if key in ref and _check_string(ref[key], multiline=False):
                    problems.append(
                        doc.problem(
                            f"{where}.{key}", _check_string(ref[key], multiline=False) or ""
                        )
                    )
            if "secret" not in ref:
                problems.append(doc.problem(where, 'missing "secret" (the secret\'s name)'))
        else:
            message = _check_string(ref, multiline=False)
            if message:
                problems.append(
                    doc.problem(
                        where,
                        f"{message}; a secret reference is "
                        '"name", "ssm:/path" or { secret = "name", '
                        'key = "json-key" }',
                    )
                )
    return problems


def check_table(
    doc: Located, table: Mapping[str, Any], fields: tuple[Field, ...], prefix: str = ""
) -> list[Problem]:
    """Check a table against its fields: unknown keys (with a hint), types, tables.

    Required keys are not checked here: whether a key is missing depends on defaults,
    which the caller applies.

    Returns:
        Every problem found, located; empty when the table is well-formed.
    """
    by_name = {item.name: item for item in fields}
    problems: list[Problem] = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        item = by_name.get(key)
        if item is None:
            hint = _hint(key, tuple(by_name))
            problems.append(doc.problem(dotted, f"unknown key{hint}"))
        elif item.kind == schema.TABLE:
            if isinstance(value, dict):
                problems += check_table(doc, value, item.fields, f"{dotted}.")
            else:
                problems.append(doc.problem(dotted, _bad_type("a table", value)))
        elif item.kind == schema.ENV_TABLE:
            problems += _check_env_table(doc, dotted, value)
        elif item.kind == schema.SECRETS_TABLE:
            problems += _check_secrets_table(doc, dotted, value)
        else:
            message = _check_scalar(item, value)
            if message:
                problems.append(doc.problem(dotted, message))
    return problems
