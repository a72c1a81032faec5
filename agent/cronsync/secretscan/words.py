"""Shell words for the secret detectors, and the :class:`Scan` that collects findings.

Pure: no I/O. :class:`WordReader` splits a command into simple commands of words, with
quoting removed but each character's position in the raw text kept, so a detector can
report the exact span of a value (:func:`word_span`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from cronsync.secretscan.kinds import Finding, is_reference


@dataclass(frozen=True)
class ShellWord:
    """A shell word: its text with quoting removed, and where each character came from."""

    text: str
    positions: tuple[int, ...]
    raw_start: int
    raw_end: int
    brk: bool = False  # a redirection operator: not an argument


_BREAK = ShellWord("", (), 0, 0, brk=True)
_SEPARATORS = ";&|()`\n"
_PLAIN = re.compile(r"[^ \t\r;&|()`\n<>$\\'\"]+")  # nothing :meth:`WordReader._step` treats apart


class WordReader:
    """Split shell text into simple commands of words (quotes and escapes honoured)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.commands: list[list[ShellWord]] = [[]]
        self.chars: list[str] = []
        self.positions: list[int] = []
        self.start: Optional[int] = None

    def read(self) -> list[list[ShellWord]]:
        """Return the simple commands (empty ones dropped)."""
        index = 0
        while index < len(self.text):
            index = self._step(index)
        self._end_word(len(self.text))
        return [command for command in self.commands if command]

    def _step(self, index: int) -> int:
        char = self.text[index]
        if char in " \t\r" or char in _SEPARATORS or char in "<>":
            self._end_word(index)
            if char in _SEPARATORS:
                self.commands.append([])
            elif char in "<>":
                self.commands[-1].append(_BREAK)
            return index + 1
        if char == "$" and self.text.startswith("$(", index):
            self._end_word(index)
            self.commands.append([])
            return index + 2
        if self.start is None:
            self.start = index
        plain = _PLAIN.match(self.text, index)
        if plain:  # a run of ordinary characters, taken at once
            return self._add_span(index, plain.end())
        if char == "\\":
            return self._add_span(index + 1, min(index + 2, len(self.text)))
        if char == "'":
            close = self.text.find("'", index + 1)
            close = len(self.text) if close < 0 else close
            self._add_span(index + 1, close)
            return close + 1
        if char == '"':
            return self._double_quoted(index + 1)
        self._add(char, index)
        return index + 1

    def _double_quoted(self, index: int) -> int:
        while index < len(self.text) and self.text[index] != '"':
            if self.text[index] == "\\" and self.text[index + 1 : index + 2] in (
                '"',
                "\\",
                "$",
                "`",
            ):
                index += 1
            self._add(self.text[index], index)
            index += 1
        return index + 1

    def _add(self, char: str, index: int) -> None:
        self.chars.append(char)
        self.positions.append(index)

    def _add_span(self, start: int, end: int) -> int:
        self.chars.append(self.text[start:end])
        self.positions.extend(range(start, end))
        return end

    def _end_word(self, index: int) -> None:
        if self.start is not None:
            word = ShellWord("".join(self.chars), tuple(self.positions), self.start, index)
            self.commands[-1].append(word)
        self.chars, self.positions, self.start = [], [], None


def word_span(
    text: str, word: ShellWord, first: int, stop: Optional[int] = None
) -> tuple[int, int]:
    """Return the raw span of ``word.text[first:stop]``: exact when written plainly,
    else from after the prefix to the word's end (quotes included, still valid shell)."""
    stop = len(word.text) if stop is None else stop
    start, end = word.positions[first], word.positions[stop - 1] + 1
    if text[start:end] == word.text[first:stop]:
        return start, end
    if stop < len(word.text):
        return start, end
    return (word.positions[first - 1] + 1 if first else word.raw_start), word.raw_end


# --- the program a command runs ------------------------------------------------------

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Wrappers that run another program: how many option words take a value.
_WRAPPER_VALUE_OPTIONS = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "nice": frozenset({"-n"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "timeout": frozenset({"-s", "-k"}),
    "flock": frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}),
    "nohup": frozenset(),
    "exec": frozenset({"-a"}),
    "time": frozenset({"-f", "-o"}),
    "chronic": frozenset(),
    "command": frozenset(),
    "setsid": frozenset(),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
}
_WRAPPER_POSITIONALS = {"timeout": 1, "flock": 1}


def program_name(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def find_program(words: Sequence[ShellWord]) -> int:
    """Index of the program word of a simple command (after NAME=value words and
    wrappers such as sudo, env, nice, timeout, flock); ``len(words)`` if none."""
    index = 0
    while index < len(words) and not words[index].brk:
        name = program_name(words[index].text)
        if _ASSIGNMENT.match(words[index].text):
            index += 1
        elif name in _WRAPPER_VALUE_OPTIONS:
            index = _skip_wrapper(words, index + 1, name)
        else:
            return index
    return len(words)


def _skip_wrapper(words: Sequence[ShellWord], index: int, name: str) -> int:
    takes_value = _WRAPPER_VALUE_OPTIONS[name]
    positionals = _WRAPPER_POSITIONALS.get(name, 0)
    while index < len(words) and not words[index].brk:
        text = words[index].text
        if text == "--":
            return index + 1
        if text.startswith("-") and len(text) > 1:
            index += 2 if text in takes_value else 1
        elif name == "env" and _ASSIGNMENT.match(text):
            index += 1
        elif positionals:
            positionals -= 1
            index += 1
        else:
            break
    return index


# --- collecting findings -----------------------------------------------------------


@dataclass
class Scan:
    """Collects candidate findings over one text."""

    text: str
    found: list[Finding] = field(default_factory=list)

    def add(self, kind: str, span: tuple[int, int], value: str, env: str, label: str) -> None:
        if not is_reference(value):
            self.found.append(Finding(kind, span[0], span[1], env, label, value))

    def attached(self, word: ShellWord, first: int, kind: str, env: str, label: str) -> None:
        """The value is ``word.text[first:]`` (``-pSECRET``, ``--password=SECRET``)."""
        if first < len(word.text):
            self.add(kind, word_span(self.text, word, first), word.text[first:], env, label)

    def separate(
        self, args: Sequence[ShellWord], index: int, kind: str, env: str, label: str
    ) -> None:
        """The value is the next argument, unless it is missing or another option."""
        if index + 1 < len(args):
            value = args[index + 1]
            if not value.brk and value.text and not value.text.startswith("-"):
                self.attached(value, 0, kind, env, label)
