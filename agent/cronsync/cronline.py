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
  (:func:`percent_cut`, which reads the shell text with :func:`open_construct`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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


# --- a cut inside a shell construct ---------------------------------------------------

_PHRASES = {
    "'": "inside single quotes '…'",
    '"': 'inside double quotes "…"',
    "$(": "inside $( … )",
    "$((": "inside $(( … ))",
    "${": "inside ${ … }",
    "`": "inside backticks ` … `",
    "(": "inside a subshell ( … )",
    "{": "inside a group { … }",
    "if": "inside if … fi",
    "case": "inside case … esac",
    "loop": "inside a loop (… done)",
    "&&": "right after &&",
    "||": "right after ||",
    "|": "right after a pipe |",
    "|&": "right after a pipe |&",
    "!": "right after !",
}
_OPENERS = {"if": "if", "case": "case", "for": "loop", "select": "loop", "while": "loop"}
_OPENERS.update({"until": "loop", "{": "{"})
_CLOSERS = {"fi": "if", "esac": "case", "done": "loop", "}": "{"}
_COMMAND_NEXT = frozenset({"then", "else", "elif", "do", "!", "if", "while", "until", "{"})
_RESERVED = re.compile(r"[a-z]+|[{}!]")
_WORD_END = " \t\n;&|()<>"
_OPERATOR = re.compile(r";;|&&|\|\||\|&|[;&|\n]")
_MAX_PERCENTS = 64  # more unescaped % than this in one line: no fix is suggested
_PLAIN_CODE = re.compile(r"[^ \t\n'\"\\$`();&|#{}!<>]+")  # nothing to the shell's grammar
_PARAMETER_OPERATORS = "-=?+#%:"
_PLAIN_INSIDE = {
    '"': re.compile(r'[^"\\$`]+'),
    "${": re.compile(r"[^}\\$`'\"=?+#%:-]+"),
    "$((": re.compile(r"[^()\\$`'\"]+"),
}


class _ShellReader:
    """Reads shell text (no here-documents) far enough to tell which construct is
    still open at its end: quotes, substitutions, subshells, groups, compound
    commands, or a trailing ``&&``, ``||`` or ``|``."""

    def __init__(self, text: str) -> None:
        self.text, self.index = text, 0
        self.frames: list[list[object]] = []  # [kind, depth of ( inside $(( ))]
        self.command = True  # at the start of a command: a reserved word counts
        self.word_start = True
        self.operator = ""  # an operator nothing followed yet

    def open_construct(self) -> Optional[str]:
        while self.index < len(self.text):
            kind = self.frames[-1][0] if self.frames else ""
            if kind == "'":
                end = self.text.find("'", self.index)
                self.index = len(self.text) if end < 0 else end + 1
                if end >= 0:
                    self.frames.pop()
            elif kind in ('"', "${", "$(("):
                self._inside_word(str(kind))
            else:
                self._code()
        if self.frames:
            return str(self.frames[-1][0])
        return self.operator or None

    def _push(self, kind: str, width: int) -> None:
        self.frames.append([kind, 0])
        self.index += width
        self.command = self.word_start = kind in ("$(", "`", "(")
        self.operator = ""

    def _substitution(self) -> bool:
        """Open ``$((``, ``$(``, ``${`` or a backtick at the index; return whether one was."""
        text, i = self.text, self.index
        if text.startswith("$((", i):
            self._push("$((", 3)
        elif text.startswith(("$(", "${"), i):
            self._push(text[i : i + 2], 2)
        elif text[i] == "`":
            kinds = [frame[0] for frame in self.frames]
            if "`" in kinds:  # sh finds the closing backtick first: it ends what is inside
                del self.frames[len(kinds) - kinds[::-1].index("`") :]
                self._close()
                self.index += 1
            else:
                self._push("`", 1)
        else:
            return False
        return True

    def _close(self) -> None:
        self.frames.pop()
        self.command = self.word_start = False
        self.operator = ""

    def _inside_word(self, kind: str) -> None:
        """One step inside double quotes, ``${ }`` or ``$(( ))``. In ``${ }``, quotes and
        substitutions count only after the operator (``${x:-'a b'}``), not in the name."""
        char = self.text[self.index]
        plain = _PLAIN_INSIDE[kind].match(self.text, self.index)
        in_name = kind == "${" and not self.frames[-1][1]
        if plain:
            self.index = plain.end()
        elif (kind, char) in (('"', '"'), ("${", "}")):
            self._close()
            self.index += 1
        elif in_name:
            self.frames[-1][1] = int(char in _PARAMETER_OPERATORS)
            self.index += 1
        elif char == "\\":
            self.index += 2
        elif self._substitution():
            return
        elif kind == "$((" and char in "()":
            self._arithmetic_paren(char)
        elif kind == "${" and char in "'\"":
            self._push(char, 1)
        else:
            self.index += 1

    def _arithmetic_paren(self, char: str) -> None:
        frame = self.frames[-1]
        depth = int(str(frame[1]))
        if char == "(":
            frame[1] = depth + 1
        elif depth:
            frame[1] = depth - 1
        elif self.text.startswith("))", self.index):
            self._close()
            self.index += 1
        self.index += 1  # a lone ) at depth 0 closes nothing (sh: "Missing '))'")

    def _code(self) -> None:
        """One step of shell code (top level, ``$( )``, backticks, subshells...)."""
        text, i = self.text, self.index
        char = text[i]
        operator = _OPERATOR.match(text, i)
        if char in " \t":
            self.index, self.word_start = i + 1, True
        elif operator:
            self.index, self.command, self.word_start = operator.end(), True, True
            self.operator = operator[0] if operator[0] in _PHRASES else ""
        elif char == "#" and self.word_start:  # a comment: to the end, or of the backticks
            end = text.find("`", i) if self.frames and self.frames[-1][0] == "`" else -1
            self.index = len(text) if end < 0 else end
        elif self.word_start and self.command and self._reserved():
            return
        elif char == "\\":
            self._word(i + 2)
        elif char in "'\"(":
            self._push(char, 1)
        elif char == ")":
            self._paren_close()
        elif char not in "$`":
            plain = _PLAIN_CODE.match(text, i)
            self._word(plain.end() if plain else i + 1)
        elif not self._substitution():
            self._word(i + 1)

    def _word(self, index: int) -> None:
        self.index, self.command, self.word_start, self.operator = index, False, False, ""

    def _paren_close(self) -> None:
        kind = self.frames[-1][0] if self.frames else ""
        if kind in ("$(", "("):
            self._close()
        elif kind == "case":  # the end of a pattern: a command follows
            self.command = self.word_start = True
        self.index += 1

    def _reserved(self) -> bool:
        """Handle a reserved word at the start of a command; return whether one was."""
        match = _RESERVED.match(self.text, self.index)
        end = match.end() if match else 0
        if not match or (end < len(self.text) and self.text[end] not in _WORD_END):
            return False
        word = match[0]
        kind = self.frames[-1][0] if self.frames else ""
        if word in _OPENERS:
            self.frames.append([_OPENERS[word], 0])
        elif _CLOSERS.get(word) == kind and kind:
            self.frames.pop()
        elif word not in _COMMAND_NEXT:
            return False
        self.index, self.word_start = end, False
        self.operator = "!" if word == "!" else ""
        self.command = word in _COMMAND_NEXT
        return True


def open_construct(text: str) -> Optional[str]:
    """Return the shell construct left open at the end of ``text``, if any.

    Args:
        text: shell text (one line, as ``/bin/sh -c`` would get it).
    Returns:
        the innermost open construct: ``'``, ``"``, ``$(``, ``$((``, ``${``, a
        backtick, ``(``, ``{``, ``if``, ``case``, ``loop`` (for, while, until), or a
        trailing ``&&``, ``||``, ``|``, ``|&``; None when the text could end there
        (it may still hold other errors). Never raises.
    """
    return _ShellReader(text).open_construct()


def describe_construct(kind: str) -> str:
    """Return where a construct of :func:`open_construct` leaves a cut ("inside $( … )")."""
    return _PHRASES.get(kind, f"inside {kind}")


@dataclass(frozen=True)
class PercentCut:
    """Cron's ``%`` cutting a command in the middle of a shell construct.

    Attributes:
        construct: what is open where the cut falls (see :func:`open_construct`).
        runs: the shell text cron runs (before the first unescaped ``%``).
        literal: the index in the command of each unescaped ``%`` that falls inside a
            construct, in order: presumably meant as a literal ``%`` (written ``\\%``).
            An unescaped ``%`` outside every construct after them still starts stdin.
        fixable: with those escaped, the shell could read the command (no construct
            left open).
    """

    construct: str
    runs: str
    literal: tuple[int, ...] = field(default=())
    fixable: bool = False

    @property
    def where(self) -> str:
        """The construct as words: "inside $( … )"."""
        return describe_construct(self.construct)


_ESCAPE_OR_PERCENT = re.compile(r"\\.|%", re.DOTALL)


def _unescaped_percents(command: str) -> list[int]:
    return [m.start() for m in _ESCAPE_OR_PERCENT.finditer(command) if m[0] == "%"]


def escape_percents(command: str, positions: tuple[int, ...]) -> str:
    """Return ``command`` with a backslash before the ``%`` at each of ``positions``."""
    pieces, start = [], 0
    for position in positions:
        pieces += [command[start:position], "\\"]
        start = position
    return "".join(pieces) + command[start:]


def percent_cut(command: str) -> Optional[PercentCut]:
    """Tell whether cron's ``%`` rule breaks a command: the first unescaped ``%`` falls
    inside a shell construct (``$(date +%F)``, ``'%s'``, ``$(( RANDOM % 60 ))``).

    Args:
        command: the command field as written in the crontab.
    Returns:
        the cut (the shell gets a line it cannot parse, every time), or None when the
        first unescaped ``%`` ends the shell text where it may end (or there is none).
        Never raises.
    """
    positions = _unescaped_percents(command) if "%" in command else []
    if not positions:
        return None
    runs = split_percent(command)[0]
    construct = open_construct(runs)
    if construct is None:
        return None
    literal: list[int] = []
    for position in positions[:_MAX_PERCENTS]:
        before = split_percent(escape_percents(command[:position], tuple(literal)))[0]
        if open_construct(before) is None:
            break
        literal.append(position)
    fixed = escape_percents(command, tuple(literal))
    fixable = len(positions) <= _MAX_PERCENTS and open_construct(split_percent(fixed)[0]) is None
    return PercentCut(construct, runs, tuple(literal), fixable)


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


def split_entry_line(body: str, system: bool, users: Optional[frozenset[str]]) -> EntryLine:
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
    entry: EntryLine, rest: str, blank: bool, users: Optional[frozenset[str]]
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


def _user_error(user: str, users: Optional[frozenset[str]]) -> Optional[str]:
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
