"""A cron command field -> what a cronsync job runs (pure).

:func:`translate` applies cron's rules to a command field and says how cronsync can
run the same thing:

* ``%``: the first unescaped ``%`` starts the standard input (each later ``%`` a
  newline) and ``\\%`` is a literal ``%`` (``cronsync.crontab.line.split_percent``); the stdin
  text becomes ``printf '%s\\n' 'line 1' 'line 2' | CMD`` (quoted with ``shlex``).
* Inline secrets: each span the caller moves out is replaced by a reference to an
  environment variable, quoted for where it stands (``"$X"`` unquoted, ``${X}``
  inside double quotes, ``'"$X"'`` inside single quotes).
* A command with no shell syntax at all (:func:`shell_features` finds none) can run as
  an argv list: its words by ``shlex.split``, which reads such a line exactly as
  ``/bin/sh`` does. Anything else stays a shell line, byte for byte.
* A ``%`` that cut the command inside a shell construct (``$(date +%F)``) is kept as
  cron read it; :func:`percent_cut_note` says so and gives the line that was meant.

Naming a job after its command is ``names``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from cronsync.core.textshow import code_span
from cronsync.crontab.line import split_percent
from cronsync.crontab.shellread import escape_percents, percent_cut

ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def word_set(text: str) -> frozenset[str]:
    """Return the blank-separated words of ``text`` as a set."""
    return frozenset(text.split())


_PLACEHOLDER = re.compile("\x00([0-9]+)\x00")
_SHOWN = 60  # characters of a cut command shown (its end: where the cut is)
_KEYWORDS = word_set(
    "if then else elif fi case esac for select while until do done function in time [[ ]] ! { }"
)
# Shell builtins that are not also programs in PATH: an argv list cannot run them.
_BUILTINS = word_set(
    "cd exit export . source eval exec set unset ulimit umask alias read wait trap "
    "shift return break continue readonly local type hash times getopts jobs fg bg"
)
_FEATURES = {
    "pipe": "a pipe",
    "list": "a command list (;, &&, || or &)",
    "redirect": "a redirection",
    "subshell": "a subshell ( )",
    "expansion": "a $ expansion",
    "backticks": "a backtick substitution",
    "glob": "a glob pattern",
    "braces": "braces",
    "tilde": "a ~ path",
    "comment": "a # comment",
    "bang": "a !",
    "assignment": "a variable assignment",
    "keyword": "a shell keyword",
    "builtin": "a shell builtin",
    "unbalanced": "an unclosed quote",
    "control": "a control character",
}
# What makes ``printf ... | CMD`` mean something else than stdin for the whole line.
_NEEDS_GROUP = frozenset({"list", "subshell", "keyword", "bang", "braces"})


# --- reading a shell line -------------------------------------------------------------


def quote_state(text: str, index: int) -> str:
    """Return the quote in force at ``text[index]``: ``""``, ``"'"`` or ``'"'``."""
    state, i = "", 0
    while i < index:
        char = text[i]
        if state == "'":
            state = "" if char == "'" else state
        elif char == "\\":
            i += 1
        elif char == '"':
            state = "" if state == '"' else '"'
        elif char == "'" and not state:
            state = "'"
        i += 1
    return state


def _unquoted_tag(text: str, i: int, word_start: bool) -> tuple[Optional[str], int]:
    """Classify the unquoted character at ``i``; return its tag and the next index."""
    char, after = text[i], text[i + 1 : i + 2]
    if char in "<>" or (char == "&" and after == ">"):
        i += 1
        while i < len(text) and text[i] in "<>&|-":
            i += 1
        return "redirect", i
    if char in "|&":
        double = after == char
        return ("list" if double or char == "&" else "pipe"), i + (2 if double else 1)
    simple = {";": "list", "(": "subshell", ")": "subshell", "$": "expansion"}
    simple.update({"`": "backticks", "*": "glob", "?": "glob", "[": "glob", "{": "braces"})
    simple.update({"}": "braces", "~": "tilde", "!": "bang"})
    if char in simple:
        return simple[char], i + 1
    if char == "#" and word_start:
        return "comment", len(text)
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return "control", i + 1
    return None, i + 1


# Characters that never matter to the shell outside quotes (skipped a run at a time).
_PLAIN_RUN = re.compile(r"[^ \t'\"\\|&;<>()$`*?\[{}~!#\x00-\x1f\x7f]+")
_DOUBLE_QUOTED_STOP = re.compile(r'["\\$`]')


def _double_quoted(text: str, i: int, tags: set[str]) -> int:
    """Scan a double-quoted string from just after its quote; return the index after
    the closing quote (``len(text)`` and ``unbalanced`` when there is none)."""
    while True:
        match = _DOUBLE_QUOTED_STOP.search(text, i)
        if match is None:
            tags.add("unbalanced")
            return len(text)
        char, i = match[0], match.end()
        if char == '"':
            return i
        if char == "\\":
            if text[i : i + 1] in ("$", "`"):  # sh drops the backslash, shlex keeps it
                tags.add("expansion")
            i += 1
        else:
            tags.add("expansion" if char == "$" else "backticks")


def _char_tags(text: str) -> set[str]:
    tags: set[str] = set()
    i, word_start = 0, True
    while i < len(text):
        char = text[i]
        if char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                tags.add("unbalanced")
                break
            i, word_start = end + 1, False
        elif char == '"':
            i, word_start = _double_quoted(text, i + 1, tags), False
        elif char == "\\":
            if i + 1 == len(text):
                tags.add("unbalanced")  # a lone backslash at the very end
            i, word_start = i + 2, False
        elif char in " \t":
            i, word_start = i + 1, True
        else:
            plain = _PLAIN_RUN.match(text, i)
            if plain:
                i, word_start = plain.end(), False
                continue
            tag, i = _unquoted_tag(text, i, word_start)
            word_start = tag in ("list", "pipe", "redirect", "subshell")
            if tag:
                tags.add(tag)
    return tags


def shell_features(text: str) -> tuple[str, ...]:
    """Return what in ``text`` needs a shell (tags of ``_FEATURES``), sorted.

    An empty result means ``shlex.split(text)`` gives exactly the words ``/bin/sh``
    would run: no operator, expansion, glob, comment, keyword or builtin.
    """
    tags = _char_tags(text)
    if not tags:
        words = text.split()
        first = words[0] if words else ""
        if ASSIGNMENT.match(first):
            tags.add("assignment")
        elif first in _KEYWORDS:
            tags.add("keyword")
        elif first in _BUILTINS:
            tags.add("builtin")
    return tuple(sorted(tags))


_WORD = re.compile(r"""(?:[^ \t'"\\]+|'[^']*'|"(?:\\.|[^"\\])*"|\\.)+""")
_PIECE = re.compile(r"""'([^']*)'|"((?:\\.|[^"\\])*)"|\\(.)|([^'"\\]+)""")
_IN_DOUBLE_QUOTES = re.compile(r'\\(["\\])')


def _unquote_piece(match: re.Match[str]) -> str:
    single, double, escaped, plain = match.groups()
    if double is not None:
        return _IN_DOUBLE_QUOTES.sub(r"\1", double)
    return next(part for part in (single, escaped, plain) if part is not None)


def plain_words(text: str) -> tuple[str, ...]:
    """Return the words of a line without shell syntax (``shell_features`` empty),
    as ``shlex.split`` and ``/bin/sh`` read it (quotes and backslashes removed)."""
    return tuple(_PIECE.sub(_unquote_piece, word) for word in _WORD.findall(text))


def describe_features(tags: Sequence[str]) -> str:
    """Return the features as words ("a pipe, a redirection")."""
    return ", ".join(_FEATURES.get(tag, tag) for tag in tags)


# --- translating ----------------------------------------------------------------------


@dataclass(frozen=True)
class SecretSpan:
    """A span of the command to replace by a variable (``text[start:end]``)."""

    start: int
    end: int
    env: str


@dataclass(frozen=True)
class CommandForm:
    """How cronsync runs one cron command.

    Attributes:
        text: the command as the shell gets it (after ``%``, secrets referenced).
        argv: its words when it needs no shell, else None.
        stdin: the printf arguments (quoted) giving the stdin cron fed, or None.
        features: what needs a shell (``shell_features`` tags).
        notes: what changed, one sentence each.
    """

    text: str
    argv: Optional[tuple[str, ...]]
    stdin: Optional[tuple[str, ...]]
    features: tuple[str, ...]
    notes: tuple[str, ...]

    def shell_line(self, shell: str = "sh") -> str:
        """Return the whole shell line: ``printf ... | CMD`` when there is stdin.

        Args:
            shell: the shell cron used (``sh``, ``bash``): a line with a comment is
                run by it with ``-c`` behind the pipe, so the comment ends there.
        """
        if self.stdin is None:
            return self.text
        feed = "printf '%s\\n' " + " ".join(self.stdin) + " | "
        if "comment" in self.features:
            return feed + f"{shell} -c {shlex.quote(self.text)}"
        if _NEEDS_GROUP.intersection(self.features):
            end = " }" if self.text.rstrip(" \t").endswith((";", "&")) else "; }"
            return feed + "{ " + self.text + end
        return feed + self.text


def _reference(env: str, state: str) -> str:
    if state == '"':
        return "${" + env + "}"
    if state == "'":
        return "'\"$" + env + "\"'"
    return '"$' + env + '"'


def _stdin_argument(line: str, spans: Sequence[SecretSpan]) -> str:
    pieces = []
    for index, part in enumerate(_PLACEHOLDER.split(line)):
        if index % 2:
            pieces.append('"$' + spans[int(part)].env + '"')
        elif part:
            pieces.append(shlex.quote(part))
    return "".join(pieces) or "''"


def translate(command: str, spans: Sequence[SecretSpan] = ()) -> CommandForm:
    """Turn a cron command field into what cronsync runs.

    Args:
        command: the command field as written (no ``\\n``, no NUL; a CRLF's ``\\r``
            already removed).
        spans: secret values to replace by variables; none may contain ``%``.
    Returns:
        the command form (see :class:`CommandForm`).
    """
    marked = command
    for index, span in sorted(enumerate(spans), key=lambda pair: -pair[1].start):
        marked = f"{marked[: span.start]}\x00{index}\x00{marked[span.end :]}"
    text, stdin = split_percent(marked) if "%" in marked else (marked, None)
    notes = ["\\% became % (cron's escape)"] if "\\%" in command else []
    lines: Optional[tuple[str, ...]] = None
    if stdin:
        raw = stdin[:-1].split("\n") if stdin.endswith("\n") else stdin.split("\n")
        lines = tuple(_stdin_argument(line, spans) for line in raw)
        notes.append(
            f"the text after % ({len(raw)} line{'s' if len(raw) != 1 else ''}) was cron's "
            "stdin: it is piped in with printf"
        )
    elif stdin == "":
        notes.append("a trailing % gave an empty stdin: dropped")
    text = _PLACEHOLDER.sub(
        lambda m: _reference(spans[int(m[1])].env, quote_state(text, m.start())), text
    )
    features = shell_features(text)
    argv = None
    if not features and not spans and not stdin:
        argv = plain_words(text) or None
    return CommandForm(text, argv, lines, features, tuple(notes))


def percent_cut_note(
    command: str, spans: Sequence[SecretSpan], shown: str, shell: str = "sh"
) -> Optional[str]:
    """Say that cron's ``%`` cut a command inside a shell construct, if it did.

    Args:
        command: the command field (as for :func:`translate`).
        spans: the secrets moved out of it (as for :func:`translate`).
        shown: the shell text cron ran, secrets masked (shown, shortened).
        shell: the shell cron used (``sh``, ``bash``...).
    Returns:
        None when no ``%`` cuts it inside a construct; else a sentence for the person
        migrating: the original line never worked as written, and the line that was
        presumably meant (each such ``%`` literal, ``\\%`` in a crontab).
    """
    cut = percent_cut(command)
    if cut is None:
        return None
    if len(shown) > _SHOWN:
        shown = "…" + shown[-_SHOWN:]
    note = (
        f"the original line never worked as written: an unescaped % cut the command "
        f"{cut.where}, so cron ran {code_span(shown)}, which the shell cannot parse, and "
        "fed the rest to its stdin, every time; this job does the same"
    )
    if not cut.fixable:
        return note + ": write the line that was meant (a literal % is \\% in a crontab)"
    moved = [
        SecretSpan(_shift(s.start, cut.literal), _shift(s.end, cut.literal), s.env) for s in spans
    ]
    meant = code_span(translate(escape_percents(command, cut.literal), moved).shell_line(shell))
    return f"{note}: if a literal % was meant (\\% in a crontab), the line to run is {meant}"


def _shift(index: int, inserted: Sequence[int]) -> int:
    """Where ``index`` of a command is once a backslash is put before each of ``inserted``."""
    return index + sum(position < index for position in inserted)
