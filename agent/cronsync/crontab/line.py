"""Cron's readers of one crontab line: an environment setting, ``%`` and an entry's parts.

Pure: text in, parts out; the rules are Debian cron 3.0pl1-162's as observed by running
it (see FACTS.md):

* A line is blank (spaces and tabs only), a comment (first non-blank is ``#``), an
  environment setting (:func:`parse_env_line`, cron's ``load_env``) or an entry
  (:func:`split_entry_line`).
* In a user crontab (no user field), a command starting with ``*`` is rejected (a
  6-field schedule); an empty command is accepted and runs nothing. In a system
  crontab the user must exist and be followed by a blank. A line holding only ``\\r``
  (a blank line of a CRLF file) is a broken entry.
* ``%``: see :func:`split_percent`. CRLF: the command keeps a trailing ``\\r``.
* Cron knows nothing of shell quoting: an unescaped ``%`` inside ``$(date +%F)`` or
  quotes cuts the command there all the same, and the shell then gets a broken line
  (``shellread.percent_cut``).
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from typing import Optional

WHITESPACE = " \t\n\v\f\r"  # C isspace()
BLANKS = " \t"  # cron's Skip_Blanks
FIELD_CHARS = re.compile(r"[0-9*/,-]+")
"""The characters of a time field (a user name made of them is a 6th time field)."""
_USER_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*\$?")


# --- cron's readers ------------------------------------------------------------------

_NAMEI, _NAME, _EQ1, _EQ2, _VALUEI, _VALUE, _FINI, _ERROR = range(8)


def parse_env_line(line: str) -> Optional[tuple[str, str]]:
    """Read a line the way cron's ``load_env`` does.

    Args:
        line: one line without its ``\\n`` (leading blanks allowed).
    Returns:
        ``(name, value)`` when cron takes it as an environment setting, else None.
        Quotes (``'`` or ``"``) around the name or the value are removed, without
        escapes; trailing whitespace of the value is dropped, even inside quotes
        (``A="a b "`` gives ``a b``); ``A=`` with no value is *not* a setting (cron
        then reads it as a broken entry); anything after a closing quote but blanks
        makes it not a setting either.
    """
    text = line.lstrip(BLANKS)
    name: list[str] = []
    value: list[str] = []
    state, quote, index = _NAMEI, "", 0
    while state != _ERROR and index < len(text):
        char = text[index]
        if state in (_NAMEI, _VALUEI):
            if char in "'\"":
                quote, index = char, index + 1
            state += 1
        elif state in (_NAME, _VALUE):
            state, index = _env_word_step(state, quote, char, index, name, value)
        elif state == _EQ1:
            state = _EQ2 if char == "=" else (_EQ1 if char in WHITESPACE else _ERROR)
            quote, index = "", index + 1
        elif char in WHITESPACE:  # _EQ2 or _FINI: skip blanks
            index += 1
        else:
            state += 1
    if state != _FINI and not (state == _VALUE and not quote):
        return None
    return "".join(name), "".join(value).rstrip(WHITESPACE)


def _env_word_step(
    state: int, quote: str, char: str, index: int, name: list[str], value: list[str]
) -> tuple[int, int]:
    """One character of the name or value of an environment line (cron's states)."""
    if quote:
        if char == quote:
            return state + 1, index + 1
        if state == _NAME and char == "=":
            return _ERROR, index
    elif state == _NAME:
        if char in WHITESPACE:
            return state + 1, index + 1
        if char == "=":
            return state + 1, index
    (name if state == _NAME else value).append(char)
    return state, index + 1


def split_percent(command: str) -> tuple[str, Optional[str]]:
    """Apply cron's ``%`` rule to a command field.

    Args:
        command: the command as written in the crontab.
    Returns:
        ``(shell_command, stdin)``: the first unescaped ``%`` ends the command; ``\\%``
        before it becomes ``%`` (other backslashes stay). In the rest, each ``%`` is a
        newline and ``\\%`` a ``%``; a non-empty stdin gets a final newline if it has
        none (observed on Debian). ``stdin`` is None without an unescaped ``%``.
    """
    if "%" not in command:  # most commands: nothing to do, and no loop over each char
        return command, None
    out: list[str] = []
    escaped = False
    for index, char in enumerate(command):
        if escaped:
            escaped = False
            if char == "%":
                out[-1] = "%"
                continue
        elif char == "\\":
            escaped = True
        elif char == "%":
            return "".join(out), _stdin_text(command[index + 1 :])
        out.append(char)
    return "".join(out), None


def _stdin_text(data: str) -> str:
    out: list[str] = []
    escaped = False
    for char in data:
        if escaped and char != "%":
            out.append("\\")
        written = "\n" if (not escaped and char == "%") else char
        escaped = written == "\\"
        if not escaped:
            out.append(written)
    if escaped:
        out.append("\\")
    text = "".join(out)
    return text + "\n" if text and not text.endswith("\n") else text


# --- one line ------------------------------------------------------------------------


@dataclass
class EntryLine:
    """A line read as an entry: its parts and why cron would reject it."""

    schedule: str = ""
    user: Optional[str] = None
    command: str = ""
    error: Optional[str] = None
    bad_schedule: bool = False  # the time fields themselves are missing


def _take_word(text: str) -> tuple[str, str, bool]:
    """Split off the first word (up to a blank); return it, the rest after the blanks,
    and whether a blank followed the word."""
    end = 0
    while end < len(text) and text[end] not in BLANKS:
        end += 1
    rest = text[end:]
    return text[:end], rest.lstrip(BLANKS), bool(rest)


def split_entry_line(body: str, system: bool, users: Optional[Container[str]]) -> EntryLine:
    """Split an entry line into schedule, user and command the way cron reads it."""
    entry = EntryLine()
    if not body.strip(WHITESPACE):
        entry.error = (
            "a blank line ending in a carriage return (CRLF line endings): cron reads "
            "the \\r as a broken entry"
        )
        entry.bad_schedule = True
        return entry
    if body.startswith("@"):
        entry.schedule, rest, blank = _take_word(body)
    else:
        fields: list[str] = []
        rest, blank = body, True
        while len(fields) < 5 and rest:
            word, rest, blank = _take_word(rest)
            fields.append(word)
        entry.schedule = " ".join(fields)
        if len(fields) < 5:
            entry.error = f"only {len(fields)} of the 5 time fields"
            entry.bad_schedule = True
            return entry
    if system:
        return _split_user(entry, rest, blank, users)
    entry.command = rest
    if rest.startswith("*"):
        entry.error = (
            f"the command starts with '{rest.split()[0]}': a 6th time field? (cron has no "
            "seconds or year field; it rejects a user crontab command starting with '*')"
        )
    return entry


def _split_user(
    entry: EntryLine, rest: str, blank: bool, users: Optional[Container[str]]
) -> EntryLine:
    if not rest:
        entry.error = "no user field and no command (a system crontab needs both)"
        return entry
    user, command, blank = _take_word(rest)
    entry.user, entry.command = user, command
    entry.error = _user_error(user, users)
    if entry.error is None and not blank:
        entry.error = f"nothing after the user '{user}' (no command)"
    return entry


def _user_error(user: str, users: Optional[Container[str]]) -> Optional[str]:
    hint = ""
    if "/" in user or user.startswith("."):
        hint = "; the user field is missing: cron reads the command as the user name"
    elif FIELD_CHARS.fullmatch(user):
        hint = "; a 6th time field? cron has no seconds or year field"
    if hint or not _USER_NAME.fullmatch(user):
        return f"'{user}' cannot be a user name{hint}"
    if users is not None and user not in users:
        return f"unknown user '{user}'"
    return None
