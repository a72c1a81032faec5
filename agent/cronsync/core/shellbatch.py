"""Many shell strings in one ``sh -n`` parse, with the same verdicts as one parse each.

Every string is put in a function of its own::

    _cronsync_check() {
    :
    STRING
    }

and the functions are parsed together. A batch that parses proves that each of its
strings parses alone only when no string can reach past its function: leave a quote,
a command substitution or a here-document open for the next function to close, glue
the next line to it with a trailing backslash, or close the wrapper's braces and open
new ones. :func:`batchable` lets in only strings a conservative reading of the shell's
lexer proves self-contained; any other string is parsed alone. Among batchable strings
the first that fails alone makes the batch fail by its wrapper's ``}`` at the latest
(an open ``if``, ``(``, ``for``... meets ``}`` where it expects its closer), so the error
line says where to look; the caller then parses that one string alone (its message is
the one-by-one message) and the rest in new batches.

Pure: text in, text and numbers out.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

MAX_BATCH_BYTES = 100_000
"""A string longer than this (in UTF-8) is parsed alone; a batch stays below this size
too (Linux limits one argument to 128 KiB, and a batch is passed as ``sh -n -c TEXT``)."""

_OPENER = "_cronsync_check() {\n:\n"  # ':' keeps an empty string's body non-empty
_CLOSER = "\n}\n"
_OPENER_LINES = _OPENER.count("\n")
# Words that could close the wrapper and open it again ("}; {"), or make ")" mean a
# case pattern's end inside a command substitution.
_RISKY_WORDS = frozenset({"{", "}", "case", "esac"})
_WORD_SPLIT = re.compile(r"[\s;&|()<>]+")
_WORD_START = frozenset(" \t\n;&|()<>")
# The characters that matter in each context of _closed (the others are skipped).
_NEXT = {
    "sq": re.compile("'"),
    "param": re.compile("[}'\"$\\\\{\n]"),
    "dq": re.compile('["$\\\\]'),
    "top": re.compile("['\"$\\\\#]"),
    "cmd": re.compile("['\"$\\\\#()]"),
}


def batchable(text: str) -> bool:
    """Return whether ``text`` provably cannot reach past its function in a batch.

    False (parse it alone) for: a leading ``-`` or ``+``, a NUL byte, ``<<`` (a
    here-document reads the lines after it), a backquote, ``$((``, a ``#`` that could
    start a comment, the words ``{`` ``}`` ``case`` ``esac``, a ``${...}`` holding
    quotes or expansions, a trailing backslash, a quote or command substitution left
    open, or more than :data:`MAX_BATCH_BYTES` bytes. False is always safe: it only costs a process.
    """
    if _size(text) > MAX_BATCH_BYTES or "\0" in text or "<<" in text or "`" in text:
        return False
    if text.startswith(("-", "+")):
        return False  # alone, ``sh -n -c -x`` reads it as options (as cron's sh -c would)
    if "$((" in text:
        return False
    joined = text.replace("\\\n", "")  # the shell joins continued lines before it reads words
    if any(word in _RISKY_WORDS for word in _WORD_SPLIT.split(joined)):
        return False
    return _closed(text)


def _closed(text: str) -> bool:
    """Return whether every quote, ``$(`` and ``${`` in ``text`` ends inside it."""
    stack: list[str] = ["top"]  # contexts: top, sq, dq, cmd (a $( ... ) ), param
    depth: list[int] = []  # open "(" inside each open $( ... )
    i, size = 0, len(text)
    while True:
        found = _NEXT[stack[-1]].search(text, i)  # ordinary characters are skipped
        if found is None:
            return stack == ["top"]
        i = found.start()
        char, context = text[i], stack[-1]
        if context == "sq":
            stack.pop()  # the closing quote
            i += 1
            continue
        if context == "param":
            if char != "}":
                return False
            stack.pop()
            i += 1
            continue
        if char == "\\":
            if i + 1 >= size:
                return False  # a trailing backslash joins the wrapper's next line
            i += 2
            continue
        if text.startswith("$(", i):
            stack.append("cmd")
            depth.append(0)
            i += 2
            continue
        if text.startswith("${", i):
            stack.append("param")
            i += 2
            continue
        if context == "dq":
            if char == '"':
                stack.pop()
        elif not _top_or_command(text, i, stack, depth):
            return False
        i += 1


def _top_or_command(text: str, i: int, stack: list[str], depth: list[int]) -> bool:
    """Read ``text[i]`` outside quotes (at the top or in a ``$( )``); False to refuse."""
    char = text[i]
    if char == "'":
        stack.append("sq")
    elif char == '"':
        stack.append("dq")
    elif char == "#":
        if i == 0 or text[i - 1] in _WORD_START:
            return False  # a comment: it could hide a quote from this reading
    elif stack[-1] == "cmd":
        if char == "(":
            depth[-1] += 1
        elif char == ")":
            if depth[-1]:
                depth[-1] -= 1
            else:
                depth.pop()
                stack.pop()
    return True


def batch_text(strings: Sequence[str]) -> tuple[str, list[int]]:
    """Return the batch of ``strings`` and the first line of each one's function.

    Args:
        strings: batchable strings (see :func:`batchable`).

    Returns:
        The text to parse with ``sh -n -c``, and the 1-based line on which each
        string's function starts (ascending), for :func:`string_at_line`.
    """
    parts: list[str] = []
    starts: list[int] = []
    line = 1
    for text in strings:
        starts.append(line)
        parts += (_OPENER, text, _CLOSER)
        line += _OPENER_LINES + text.count("\n") + _CLOSER.count("\n")
    return "".join(parts), starts


def string_at_line(line: int, starts: Sequence[int]) -> int:
    """Return the index of the string whose function holds ``line`` (clamped to the
    first and last)."""
    return max(0, min(len(starts) - 1, bisect.bisect_right(starts, line) - 1))


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def batches(strings: Sequence[str], limit: int = MAX_BATCH_BYTES) -> list[list[int]]:
    """Split the indexes of ``strings`` into runs whose batch text stays below ``limit``
    bytes in UTF-8 (a run of one string may be as long as that string)."""
    runs: list[list[int]] = []
    current: list[int] = []
    size = 0
    overhead = len(_OPENER) + len(_CLOSER)
    for index, text in enumerate(strings):
        cost = _size(text) + overhead
        if current and size + cost > limit:
            runs.append(current)
            current, size = [], 0
        current.append(index)
        size += cost
    if current:
        runs.append(current)
    return runs
