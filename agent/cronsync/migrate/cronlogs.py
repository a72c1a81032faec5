"""Reading a host's cron log: rsyslog's files (rotated and gzipped too) and the journal.

The adapter around ``cronsync.crontab.cronlog`` (which parses): it reads
``ROOT/var/log/syslog`` and ``cron.log`` with their rotations (``syslog.1``,
``syslog.2.gz``...), oldest first, and the journal through a :data:`JournalReader`
(the seam): :func:`journalctl_reader` runs ``journalctl -u cron.service -o json`` on
this host, :func:`journal_file_reader` reads a file holding such output (or
``-o short-iso``), which is what the tests and an operator with an exported journal
use. Nothing is written. A file that cannot be read is named in the notes.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from cronsync.core.errors import UsageError
from cronsync.core.textshow import visible
from cronsync.crontab.cronlog import LogRead, merged, read_journal_text, read_syslog_lines

LOG_DIR = "var/log"
LOG_NAMES = ("syslog", "cron.log")
# only the fields read (the timestamp comes always): a year of cron's journal is big
JOURNAL_ARGV = (
    "journalctl",
    "-u",
    "cron.service",
    "-o",
    "json",
    "--output-fields=MESSAGE,SYSLOG_IDENTIFIER,SYSLOG_PID,_PID",
    "--no-pager",
    "-q",
)
JOURNAL_TIMEOUT = 120.0
_ROTATED = re.compile(r"(?P<base>syslog|cron\.log)(?:\.(?P<n>[0-9]+)(?P<gz>\.gz)?)?")

JournalReader = Callable[[], Optional[tuple[str, str]]]
"""Returns (the name of the source shown, the journal text), or None: no journal here.
Raises :class:`JournalNotRead` when there is one that could not be read."""


class JournalNotRead(Exception):
    """The journal is there but could not be read (``journalctl`` failed, ran out of
    time): the message says why, and becomes a note (``journal not read: ...``)."""


@dataclass
class CronLogs:
    """Cron's log as read: every source merged, the sources (oldest first) and notes."""

    read: LogRead
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def journalctl_reader(timeout: float = JOURNAL_TIMEOUT) -> JournalReader:
    """Return a reader that asks this host's journal: None when ``journalctl`` is not
    installed; :class:`JournalNotRead` when it cannot start, fails or runs out of time
    (the files are read all the same, and the note says why)."""

    def read() -> Optional[tuple[str, str]]:
        from cronsync.repo.process import run_capture

        if shutil.which("journalctl") is None:
            return None
        try:
            done = run_capture(list(JOURNAL_ARGV), timeout=timeout)
        except OSError as exc:
            raise JournalNotRead(f"journalctl could not start: {exc.strerror or exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise JournalNotRead(f"journalctl ran longer than {timeout:g} s") from exc
        if done.returncode != 0:
            why = next((line for line in done.stderr.splitlines() if line.strip()), "")
            raise JournalNotRead(
                f"journalctl exited with {done.returncode}" + (f": {why.strip()}" if why else "")
            )
        return "journal (journalctl -u cron.service)", done.stdout

    return read


def journal_file_reader(path: Path) -> JournalReader:
    """Return a reader of a file (or a pipe: ``--journal-file /dev/stdin``) holding
    ``journalctl -o json`` (or ``-o short-iso``) output.

    Raises (when called):
        UsageError: the file cannot be read, or is a device or a folder, which would
            be read for ever or not at all (``--journal-file PATH: reason``).
    """

    def read() -> Optional[tuple[str, str]]:
        try:
            with open(path, "rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
                    raise UsageError(f"--journal-file {path}: not a file or a pipe")
                data = handle.read()
        except OSError as exc:
            raise UsageError(f"--journal-file {path}: {exc.strerror or exc}") from exc
        return f"journal ({path})", data.decode("utf-8", "replace")

    return read


def _rotations(directory: Path) -> list[tuple[str, int, Path]]:
    """The log files below ``directory``, oldest first: (base, rotation, path)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        match = _ROTATED.fullmatch(name)
        if match is not None:
            found.append((match["base"], int(match["n"] or 0), directory / name))
    return sorted(found, key=lambda item: (item[0], -item[1]))


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded leniently (gzip when its name ends in ``.gz``)."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    else:
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield from handle


def _read_file(path: Path, zone: ZoneInfo) -> LogRead:
    """Raises OSError, EOFError, gzip.BadGzipFile: the file cannot be read."""
    reference = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return read_syslog_lines(_lines(path), zone, reference)


def _read_journal(
    logs: CronLogs, reads: list[LogRead], journal: Optional[JournalReader], zone: ZoneInfo
) -> None:
    """Put the journal first in ``reads`` and ``logs.sources``, or say in the notes why
    it is not there (it could not be read, or it holds nothing)."""
    try:
        found = journal() if journal is not None else None
    except JournalNotRead as exc:
        logs.notes.append(f"journal not read: {visible(str(exc))}")
        return
    if found is None:
        return
    name, text = found
    read = read_journal_text(text, zone)
    if read.lines == 0:
        logs.notes.append(f"{name} holds no line of cron's: not a source")
        return
    reads.insert(0, read)
    logs.sources.insert(0, name)


def read_cron_logs(root: Path, zone: ZoneInfo, journal: Optional[JournalReader]) -> CronLogs:
    """Read cron's log on the host below ``root``.

    Args:
        root: the host root (its ``var/log``).
        zone: the host's zone (traditional syslog lines are in host time).
        journal: the journal seam, or None not to read one.
    Returns:
        every source merged (an event the journal forwarded to syslog counted once);
        the notes say what could not be read (``journal not read: ...``).
    Raises:
        UsageError: a journal file given by the operator cannot be read.
    """
    logs = CronLogs(LogRead())
    reads: list[LogRead] = []
    for _base, _n, path in _rotations(root / LOG_DIR):
        shown = "/" + path.relative_to(root).as_posix()
        try:
            read = _read_file(path, zone)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            logs.notes.append(f"cannot read {shown}: {getattr(exc, 'strerror', None) or exc}")
            continue
        reads.append(read)
        logs.sources.append(shown)
    _read_journal(logs, reads, journal, zone)
    logs.read = merged(reads)
    if not logs.sources:
        logs.notes.append(
            f"no cron log found (no journal, nothing in {root / LOG_DIR}): cron logs through "
            "syslog, and a host without a syslog daemon or journal keeps no record of runs"
        )
    return logs
