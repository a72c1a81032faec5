"""Cron's own log lines, as Debian writes them: what ran, as whom, when, and what failed.

Pure: log text in, :class:`LogRead` out (the adapter ``cronsync.migrate.cronlogs``
reads the files and the journal). Debian's cron (3.0pl1) logs through syslog with the
ident ``CRON`` and the pid of the process that runs the job::

    CRON[1234]: (root) CMD (/usr/local/bin/backup.sh >> /var/log/backup.log 2>&1)
    CRON[1233]: (root) CMD ([1234] command)             (with -L 8: the job's pid)
    CRON[1233]: (root) END ([1234] command)             (-L 2: ignored here)
    CRON[1233]: (CRON) error (grandchild #1234 failed with exit status 2)   (-L 4)
    CRON[1233]: (CRON) error (grandchild #1236 terminated by signal 13)     (-L 4)
    CRON[1233]: (CRON) info (No MTA installed, discarding output)

(Checked against cron 3.0pl1-162 on Debian 12: without ``-L 8`` the job's process
logs its ``CMD`` itself, so the pid of the tag is the one a failure names; with it,
the pid in brackets is. A failure naming another pid is not the job's: cron forks a
second process to feed a job the text after ``%`` on stdin, and that one dies of
SIGPIPE when the job does not read it.)

The logged command is what cron hands to the shell (the part before the first
unescaped ``%``, ``\\%`` made ``%``, a blank before the ``%`` kept), made printable by
cron's ``mkprint``: a control character as ``^X``, DEL as ``^?``, every byte above 127
as ``\\ooo`` (:func:`cron_printable`). Cron refuses a command of 999 bytes or more
(the whole file is ignored), so its message stays below rsyslog's 8 KiB; a daemon with
a smaller limit (1 KiB in classic syslogd) may cut it: a ``CMD`` without its closing
``)`` is marked ``truncated``.

Formats read: rsyslog's traditional ``Dec  7 03:15:01 host TAG[PID]: MSG`` (host
time, no year: the year is the one that puts the line at or before the file's last
write), rsyslog's RFC 3339 ``2026-12-07T03:15:01.123456+00:00 host TAG[PID]: MSG``
(Debian 12's default), ``journalctl -o short-iso`` (``+0000`` or ``+00:00``) and
``journalctl -o json`` (one object per line; a message that is not UTF-8 comes as an
array of bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Optional

CMD = "cmd"
FAILED = "failed"
NO_MTA = "no-mta"

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_TRADITIONAL = re.compile(
    r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d) (?P<rest>.*)"
)
_ISO = re.compile(
    r"(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(?P<zone>Z|[+-]\d\d:?\d\d) (?P<rest>.*)"
)
_TAGGED = re.compile(r"\S+ (?P<tag>[^\s\[:]+)\[(?P<pid>\d+)\]: (?P<msg>.*)")
_MESSAGE = re.compile(r"\((?P<user>[^)\s]*)\) (?P<what>CMD|END) \((?P<cmd>.*)", re.DOTALL)
_OWN_PID = re.compile(r"\[(?P<pid>\d+)\] ")
_FAILED = re.compile(
    r"\(CRON\) error \(grandchild #(?P<pid>\d+) (?:failed with exit status (?P<st>\d+)"
    r"|terminated by signal (?P<sig>\d+))\)"
)
_NO_MTA = "No MTA installed, discarding output"
_CRON_TAGS = frozenset({"CRON", "cron", "crond"})


@dataclass(frozen=True)
class CronEvent:
    """One thing cron logged about a job.

    Attributes:
        kind: ``CMD`` (a job started), ``FAILED`` (its shell exited non-zero or was
            killed by a signal, ``-L 4``) or ``NO_MTA`` (its output was thrown away: no
            mail transport).
        at: when (aware, UTC).
        pid: the pid the job ran as (``CMD``: the logging process, or the one logged
            with ``-L 8``; ``FAILED``: the grandchild named).
        user: whose job (``CMD``), else "".
        command: the command as logged (printable form), else "".
        truncated: the message was cut (no closing parenthesis): ``command`` is a prefix.
        exit_status: ``FAILED``'s exit status, else None.
        signal: the signal that killed ``FAILED``'s process, else None.
    """

    kind: str
    at: datetime
    pid: int
    user: str = ""
    command: str = ""
    truncated: bool = False
    exit_status: Optional[int] = None
    signal: Optional[int] = None

    def failure(self) -> str:
        """Return how a ``FAILED`` event ended: ``exit status N`` or ``killed by signal N``."""
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exit status {self.exit_status}"


@dataclass
class LogRead:
    """What one log source holds: the cron events and the period its lines cover."""

    events: list[CronEvent] = field(default_factory=list)
    first: Optional[datetime] = None
    last: Optional[datetime] = None
    lines: int = 0

    def saw(self, moment: datetime) -> None:
        """Widen the period covered to include ``moment``."""
        self.first = moment if self.first is None or moment < self.first else self.first
        self.last = moment if self.last is None or moment > self.last else self.last


_PRINTABLE_ASCII = re.compile("[\x20-\x7e]*")  # what mkprint leaves as it is


def cron_printable(text: str) -> str:
    """Return ``text`` as Debian's cron logs it (``mkprint``: controls as ``^X``, DEL as
    ``^?``, each UTF-8 byte above 127 as a backslash and three octal digits); ``text``
    itself when it is printable ASCII (most commands: no loop over each byte)."""
    if _PRINTABLE_ASCII.fullmatch(text):
        return text
    out: list[str] = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if byte < 0x20:
            out.append("^" + chr(byte + 0x40))
        elif byte < 0x7F:
            out.append(chr(byte))
        elif byte == 0x7F:
            out.append("^?")
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def event_of(tag: str, pid: int, message: str, at: datetime) -> Optional[CronEvent]:
    """Return the cron event a syslog message is, or None (another program, another
    message)."""
    if tag not in _CRON_TAGS:
        return None
    found = _MESSAGE.match(message)
    if found is not None and found["what"] == "CMD":
        command, closed = found["cmd"], found["cmd"].endswith(")")
        command = command[:-1] if closed else command
        own = _OWN_PID.match(command)
        if own is not None:
            pid, command = int(own["pid"]), command[own.end() :]
        return CronEvent(CMD, at, pid, found["user"], command, truncated=not closed)
    failed = _FAILED.search(message)
    if failed is not None:
        status, signal = failed["st"], failed["sig"]
        return CronEvent(
            FAILED,
            at,
            int(failed["pid"]),
            exit_status=int(status) if status is not None else None,
            signal=int(signal) if signal is not None else None,
        )
    if _NO_MTA in message:
        return CronEvent(NO_MTA, at, pid)
    return None


def _traditional_time(
    match: re.Match[str], zone: tzinfo, reference: datetime
) -> Optional[datetime]:
    """The moment of a traditional line: host time, the year that puts it at or before
    ``reference`` (a day of slack for clocks)."""
    month = _MONTHS.get(match["mon"])
    if month is None:
        return None
    parts = (month, int(match["day"]), int(match["h"]), int(match["m"]), int(match["s"]))
    limit = reference + timedelta(days=1)
    for year in (reference.year, reference.year - 1):
        try:
            moment = datetime(year, *parts, tzinfo=zone).astimezone(timezone.utc)
        except ValueError:  # 29 Feb of a year without one
            continue
        if moment <= limit:
            return moment
    return None


def _iso_time(match: re.Match[str]) -> Optional[datetime]:
    zone = match["zone"]
    if zone != "Z" and ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:
        moment = datetime.fromisoformat(match["stamp"] + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc)


def _read_line(read: LogRead, line: str, zone: tzinfo, reference: datetime) -> None:
    """Read one syslog-style line into ``read`` (its time, and its event if any)."""
    iso = _ISO.match(line)
    if iso is not None:
        moment, rest = _iso_time(iso), iso["rest"]
    else:
        old = _TRADITIONAL.match(line)
        if old is None:
            return
        moment, rest = _traditional_time(old, zone, reference), old["rest"]
    if moment is None:
        return
    read.lines += 1
    read.saw(moment)
    tagged = _TAGGED.match(rest)
    if tagged is not None:
        event = event_of(tagged["tag"], int(tagged["pid"]), tagged["msg"], moment)
        if event is not None:
            read.events.append(event)


def read_syslog_text(text: str, zone: tzinfo, reference: datetime) -> LogRead:
    """Read a syslog file's text (traditional or RFC 3339 lines, mixed too).

    Args:
        text: the file's lines.
        zone: the host's zone (traditional lines are in host time).
        reference: an aware time at or after the file's last line (its mtime): the
            traditional format has no year.
    Returns:
        the cron events and the period the file's lines cover. Never raises.
    """
    return read_syslog_lines(text.splitlines(), zone, reference)


def read_syslog_lines(lines: Iterable[str], zone: tzinfo, reference: datetime) -> LogRead:
    """:func:`read_syslog_text` for a file read line by line (a syslog file may be big:
    only cron's lines, the first and the last line are parsed in full)."""
    read = LogRead()
    last = None
    count = 0
    for line in lines:
        count += 1
        if read.first is None or "CRON[" in line or "cron[" in line:
            _read_line(read, line.rstrip("\n"), zone, reference)
            last = None
        else:
            last = line
    if last is not None:
        _read_line(read, last.rstrip("\n"), zone, reference)
    read.lines = count
    return read


def _journal_message(value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    return None


def _read_json_line(read: LogRead, line: str) -> None:
    try:
        entry = json.loads(line)
        micros = int(entry["__REALTIME_TIMESTAMP"])
    except (ValueError, KeyError, TypeError):
        return
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    read.lines += 1
    read.saw(moment)
    message = _journal_message(entry.get("MESSAGE"))
    tag, pid = entry.get("SYSLOG_IDENTIFIER"), str(entry.get("SYSLOG_PID") or entry.get("_PID"))
    if message is not None and isinstance(tag, str) and pid.isdigit():
        event = event_of(tag, int(pid), message, moment)
        if event is not None:
            read.events.append(event)


def read_journal_text(text: str, zone: tzinfo) -> LogRead:
    """Read ``journalctl -o json`` or ``-o short-iso`` output (``--`` notes skipped).

    Args:
        text: the output.
        zone: the host's zone (for a line in another format; unused by these two).
    Returns:
        the cron events and the period the entries cover. Never raises.
    """
    read = LogRead()
    reference = datetime.now(timezone.utc)
    for line in text.splitlines():
        if line.startswith("{"):
            _read_json_line(read, line)
        elif not line.startswith("-- "):
            _read_line(read, line, zone, reference)
    return read


def merged(reads: Iterable[LogRead]) -> LogRead:
    """Return one read of several sources: a journal forwarded to syslog holds the same
    events twice, so one event per (kind, pid, minute) is kept."""
    out = LogRead()
    seen: set[tuple[str, int, str]] = set()
    for read in reads:
        out.lines += read.lines
        for moment in (read.first, read.last):
            if moment is not None:
                out.saw(moment)
        for event in read.events:
            key = (event.kind, event.pid, event.at.strftime("%Y%m%d%H%M"))
            if key not in seen:
                seen.add(key)
                out.events.append(event)
    out.events.sort(key=lambda e: e.at)
    return out
