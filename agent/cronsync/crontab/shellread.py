"""Which shell construct a command leaves open, and where cron's ``%`` cuts inside one.

Pure: text in, a construct (or a cut) out. Cron knows nothing of shell quoting: an
unescaped ``%`` inside ``$(date +%F)`` or quotes cuts the command there all the same,
and the shell then gets a broken line (:func:`percent_cut`, which reads the shell text
with :func:`open_construct`; cron's own ``%`` rule is ``line.split_percent``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from cronsync.crontab.line import split_percent

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
