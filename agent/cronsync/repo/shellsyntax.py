"""Parse many shell strings and shell scripts in few processes (adapter: subprocesses).

The verdict for each string is the one ``sh -n -c STRING`` gives alone, and for each
script the one ``SHELL -n -- SCRIPT`` gives: its exit status and its stderr, word for
word. Two ways get there in fewer processes:

* Strings that :func:`cronsync.core.shellbatch.batchable` proves self-contained are
  parsed together, one function each, in one ``sh -n -c`` per 100 KB of text. A batch
  that parses clears all its strings; a failing one names a line, and the string there
  is parsed alone while the others are batched again (a process per failing string).
* Everything parsed alone (scripts, strings that may not be batched, the strings a
  batch points at) runs in one ``/bin/sh`` loop per chunk, which starts the very same
  command for each item and prints its exit status after a random marker on stderr.
  No Python start per item, but still one shell per item: a script's syntax is never
  joined with another's (here-documents and ``case`` are common in scripts).

When a loop cannot be used (its program is missing, it timed out, its output is not
what it printed) each of its items is run alone, exactly as a one-by-one check would.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from cronsync.core.shellbatch import (
    MAX_BATCH_BYTES,
    batch_text,
    batchable,
    batches,
    string_at_line,
)
from cronsync.repo.process import Completed, run_capture

TIMEOUT = 30.0
"""Seconds one parse may take, alone or a whole batch (as the one-by-one checks had)."""

_LOOP_ITEMS = 500  # items per loop process (its argv stays well below ARG_MAX)
# $1 marker, $2 program, $3 option before each item; then the items. Fixed text: the
# items reach the program as arguments, never as shell code of this loop.
_LOOP = (
    'm=$1 p=$2 o=$3; shift 3; for a do "$p" -n "$o" "$a"; printf "\\n%s %d\\n" "$m" "$?" >&2; done'
)
_ERROR_LINE = re.compile(r"^[^\n]*?: (\d+): ", re.MULTILINE)


class Runner(Protocol):
    """How a program is run: :func:`cronsync.repo.process.run_capture`'s signature."""

    def __call__(
        self, argv: Sequence[str], *, timeout: Optional[float] = ..., cwd: Optional[Path] = ...
    ) -> Completed: ...


@dataclass(frozen=True)
class Parse:
    """What parsing one string or script said.

    Attributes:
        returncode: the parser's exit status (0: it parses).
        stderr: its error output.
        failure: set when the parser could not be run: the error, as text.
    """

    returncode: int
    stderr: str
    failure: Optional[str] = None


_CLEAN = Parse(0, "")


def parse_strings(strings: Sequence[str], run: Runner = run_capture) -> list[Parse]:
    """Return what ``sh -n -c S`` says for each ``S`` of ``strings`` (in order).

    Raises:
        StoppedError: cronsync is shutting down.
    """
    grouped: list[str] = []
    alone: list[str] = []
    for text in dict.fromkeys(strings):
        (grouped if batchable(text) else alone).append(text)
    alone += _screen(grouped, run)
    verdicts = dict.fromkeys(grouped, _CLEAN)
    verdicts.update(zip(alone, _each("sh", "-c", alone, None, run)))
    return [verdicts[s] for s in strings]


def parse_scripts(
    shell: str, scripts: Sequence[str], cwd: Path, run: Runner = run_capture
) -> list[Parse]:
    """Return what ``SHELL -n -- SCRIPT`` run in ``cwd`` says for each of ``scripts``.

    Raises:
        StoppedError: cronsync is shutting down.
    """
    unique = list(dict.fromkeys(scripts))
    verdicts = dict(zip(unique, _each(shell, "--", unique, cwd, run)))
    return [verdicts[s] for s in scripts]


def _screen(strings: list[str], run: Runner) -> list[str]:
    """Parse ``strings`` in batches; return those a batch could not clear."""
    suspects: list[str] = []
    pending = [[strings[i] for i in indexes] for indexes in batches(strings)]
    while pending:
        group = pending.pop()
        if len(group) == 1:
            suspects += group
            continue
        text, starts = batch_text(group)
        try:
            done = run(["sh", "-n", "-c", text], timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            suspects += group
            continue
        if done.returncode == 0:
            continue
        found = _ERROR_LINE.search(done.stderr)
        if found is None:  # no line to go by: halve it
            middle = len(group) // 2
            pending += [group[:middle], group[middle:]]
            continue
        at = string_at_line(int(found.group(1)), starts)
        suspects.append(group[at])
        pending += [part for part in (group[:at], group[at + 1 :]) if part]
    return suspects


def _each(
    program: str, option: str, items: list[str], cwd: Optional[Path], run: Runner
) -> list[Parse]:
    """Return ``PROGRAM -n OPTION ITEM`` 's verdict for each item, a loop per chunk."""
    verdicts: list[Parse] = []
    for chunk in _chunks(items):
        loop = _loop(program, option, chunk, cwd, run)
        if loop is None:
            loop = [_alone([program, "-n", option, item], cwd, run) for item in chunk]
        verdicts += loop
    return verdicts


def _chunks(items: list[str]) -> list[list[str]]:
    """Split ``items`` so that a loop's arguments stay below the kernel's limits."""
    chunks: list[list[str]] = []
    for indexes in batches(items, MAX_BATCH_BYTES):
        for start in range(0, len(indexes), _LOOP_ITEMS):
            chunks.append([items[i] for i in indexes[start : start + _LOOP_ITEMS]])
    return chunks


def _loop(
    program: str, option: str, items: list[str], cwd: Optional[Path], run: Runner
) -> Optional[list[Parse]]:
    """Run ``PROGRAM -n OPTION ITEM`` for each item in one shell; None when that
    cannot stand for the one-by-one runs (a single item, a program not found, a
    timeout, output that does not split into one part per item)."""
    found = shutil.which(program)  # as run_capture finds it: its errors name this path
    if len(items) < 2 or found is None:
        return None
    marker = secrets.token_hex(16)  # unguessable: no item's error output can forge it
    argv = ["sh", "-c", _LOOP, "cronsync-check", marker, found, option, *items]
    try:
        done = run(argv, timeout=TIMEOUT + len(items), cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = re.split("\n" + marker + r" (\d+)\n", done.stderr)
    if done.returncode != 0 or len(parts) != 2 * len(items) + 1 or parts[-1]:
        return None
    return [Parse(int(parts[2 * n + 1]), parts[2 * n]) for n in range(len(items))]


def _alone(argv: list[str], cwd: Optional[Path], run: Runner) -> Parse:
    """Run one parse by itself, as the one-by-one check does."""
    try:
        done = run(argv, timeout=TIMEOUT, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Parse(-1, "", str(exc))
    return Parse(done.returncode, done.stderr)
