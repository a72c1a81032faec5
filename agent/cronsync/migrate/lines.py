"""How cron reads the parts of an entry that ``cronsync import`` carries over (pure).

The command field of an entry line, the environment in force at a line (and whether a
setting holds a secret), the schedule cron really uses and how a job names the shell
cron ran it with. ``debianschedule.read_debian_schedule`` is cron's own reading of a
schedule (``1-5-7`` as ``1-5``, reversed ranges dropped): the one place that knows it.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Sequence
from typing import Optional

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import parse_schedule
from cronsync.crontab.debianschedule import read_debian_schedule
from cronsync.crontab.line import parse_env_line
from cronsync.secretscan import scan

BLANKS = " \t"


@functools.lru_cache(maxsize=4096)  # a crontab repeats its schedules
def effective_schedule(written: str) -> Optional[str]:
    """Return the schedule cron really uses for ``written``, or None if it never runs."""
    try:
        parse_schedule(written)
        return written
    except ScheduleError:
        when = read_debian_schedule(written)
        return when.schedule.text if when.schedule is not None and not when.error else None


@functools.lru_cache(maxsize=4096)
def env_is_secret(name: str, value: str) -> bool:
    return scan.mask_env_value(name, value) != value


CRON_PATH = "/usr/bin:/bin"
"""The PATH cron gives a job unless the crontab sets one."""
_STANDARD_BIN = ("/bin", "/usr/bin")


def shell_program(shell: str, path: str) -> str:
    """Return how a job names the shell cron ran it with (``SHELL=...``).

    Args:
        shell: the SHELL value (cron execs it as written).
        path: the PATH the job gets (cronsync looks a bare program name up in it).
    Returns:
        the bare name (``bash``) when that finds the same program: the shell is in
        /bin or /usr/bin and no other folder comes before it in ``path``; else the
        value as written (``/usr/local/bin/bash``), so the same interpreter runs.
    """
    folder, name = posixpath.split(shell)
    if folder not in _STANDARD_BIN:
        return shell
    folders = path.split(":")
    before = folders[: folders.index(folder)] if folder in folders else folders
    return name if all(f in _STANDARD_BIN for f in before) else shell


_ONE_WORD = re.compile(r"(?:[^ \t]+[ \t]*)?")
_FIVE_WORDS = re.compile(r"(?:[^ \t]+[ \t]*){0,5}")


def command_field(body: str, system: bool) -> str:
    """Return the command field of an entry line (leading blanks and ``#`` removed):
    what follows the macro or the 5 time fields, and the user field of a system
    crontab, each word ending at a blank (cron's reader)."""
    rest = _after(_ONE_WORD if body.startswith("@") else _FIVE_WORDS, body)
    return _after(_ONE_WORD, rest) if system else rest


def _after(words: re.Pattern[str], text: str) -> str:
    match = words.match(text)
    return text[match.end() :] if match else text


def entry_body(line: str, commented: bool) -> str:
    """Return an entry line as cron's reader sees it (a commented one without ``#``)."""
    body = line.lstrip(BLANKS)
    return body.lstrip("#").lstrip(BLANKS) if commented else body


def env_at(lines: Sequence[str], wanted: set[int]) -> dict[int, tuple[tuple[str, str], ...]]:
    """Return the environment in force at each of the ``wanted`` line numbers."""
    env: dict[str, str] = {}
    snapshot: Optional[tuple[tuple[str, str], ...]] = ()
    found = {}
    for number, line in enumerate(lines, 1):
        body = line.lstrip(BLANKS)
        if number in wanted:
            snapshot = tuple(env.items()) if snapshot is None else snapshot
            found[number] = snapshot
        elif body and not body.startswith("#"):
            setting = parse_env_line(body)
            if setting is not None:
                env[setting[0]] = setting[1]
                snapshot = None
    return found
