"""Which entry each ``CMD`` line of cron's log belongs to, and when the log cannot tell.

Pure: inventory entries and cron events in, one :class:`RunTally` per entry out.

Cron logs the text it hands to the shell (``shell_command``: before the first
unescaped ``%``, ``\\%`` made ``%``) in ``mkprint`` form (see ``cronlog``). The
inventory keeps that text with every secret masked (``***``), so an entry matches a
logged command when the command is the entry's text with each ``***`` standing for
any non-empty text; the user must be the entry's. A cut message (``truncated``)
matches an entry it is a prefix of. When several entries match (the same command for
the same user twice), the schedule decides: the entries due in the minute of the line;
if that leaves more than one, or none, the run is counted for each as *ambiguous*,
never as a run of one of them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional
from zoneinfo import ZoneInfo

from cronsync.core.schedule import CronSchedule
from cronsync.core.tzrender import is_due
from cronsync.crontab.cronlog import CMD, FAILED, CronEvent, cron_printable
from cronsync.crontab.debianschedule import read_debian_schedule
from cronsync.crontab.records import InventoryEntry
from cronsync.secretscan.kinds import MASK


@dataclass
class RunTally:
    """What the log says about one entry.

    Attributes:
        runs: ``CMD`` lines that are this entry's alone.
        ambiguous: lines that match this entry and another one as well.
        also: the other entries those lines match (``source:line``).
        truncated: of ``runs``, lines the syslog daemon cut (matched by prefix).
        failures: of ``runs``, those cron logged as failed: how each ended (``exit
            status 3``, ``killed by signal 9``).
        last_seen: the last of ``runs`` (of ``ambiguous`` when there are no runs).
        last_failed: the last of ``runs`` failed.
    """

    runs: int = 0
    ambiguous: int = 0
    also: set[str] = field(default_factory=set)
    truncated: int = 0
    failures: list[str] = field(default_factory=list)
    last_seen: Optional[datetime] = None
    last_failed: bool = False


@dataclass(frozen=True)
class Unmatched:
    """A command cron logged that matches no entry (a line removed since, another
    file): ``command`` is as logged, for the caller to mask before showing it."""

    user: str
    command: str
    count: int
    last_seen: datetime


@dataclass
class Matching:
    """Every entry's tally (in entry order) and the commands no entry matches."""

    tallies: list[RunTally]
    unmatched: list[Unmatched]


def pieces_of(shell_command: str) -> tuple[str, ...]:
    """Return the literal parts of a masked command as cron would log them: the text
    between the ``***`` masks, each in ``mkprint`` form."""
    return tuple(cron_printable(part) for part in shell_command.split(MASK))


@functools.lru_cache(maxsize=4096)
def _pattern(pieces: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("(?s)" + ".+?".join(re.escape(piece) for piece in pieces))


def fits(pieces: tuple[str, ...], logged: str, truncated: bool) -> bool:
    """Whether ``logged`` is the command of ``pieces`` (``***`` standing for any
    non-empty text), or, when ``truncated``, the start of one."""
    if not truncated:
        return _pattern(pieces).fullmatch(logged) is not None
    return _prefix_fits(pieces, logged)


def _prefix_fits(pieces: Sequence[str], text: str) -> bool:
    """Whether the cut ``text`` is the start of a command made of ``pieces``: up to the
    first mask it must be the command's text; past it, the mask may stand for all the
    rest (a secret of any length, where the cut may fall)."""
    first = pieces[0]
    if len(text) <= len(first):
        return first.startswith(text)
    return text.startswith(first) and len(pieces) > 1


def _schedule(entry: InventoryEntry) -> Optional[CronSchedule]:
    return read_debian_schedule(entry.schedule).schedule if entry.schedule else None


def _where(entry: InventoryEntry) -> str:
    return f"{entry.source}:{entry.line}"


class _Matcher:
    """The entries that cron runs, by user, with their pieces and schedules."""

    def __init__(self, entries: Sequence[InventoryEntry], zone: ZoneInfo) -> None:
        self.entries = entries
        self.zone = zone
        self.by_user: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        self.schedules = [_schedule(entry) for entry in entries]
        for index, entry in enumerate(entries):
            if entry.runs and entry.user is not None:
                pieces = pieces_of(entry.shell_command)
                self.by_user.setdefault(entry.user, []).append((index, pieces))

    def candidates(self, event: CronEvent) -> list[int]:
        found = [
            index
            for index, pieces in self.by_user.get(event.user, ())
            if fits(pieces, event.command, event.truncated)
        ]
        if len(found) < 2:
            return found
        due = [i for i in found if self._due(i, event.at)]
        return due if due else found

    def _due(self, index: int, at: datetime) -> bool:
        schedule = self.schedules[index]
        return schedule is not None and is_due(schedule, at, self.zone)


def match_runs(
    entries: Sequence[InventoryEntry], events: Sequence[CronEvent], zone: ZoneInfo
) -> Matching:
    """Count each entry's runs in ``events`` (see the module's rules).

    Args:
        entries: inventory entries (those cron does not run never match).
        events: cron events, oldest first (``FAILED`` lines name the pid of a run).
        zone: the host's zone (cron's schedules are in host time).
    Returns:
        one tally per entry, in order, and the commands no entry matches.
    """
    matcher = _Matcher(entries, zone)
    tallies = [RunTally() for _ in entries]
    unmatched: dict[tuple[str, str], Unmatched] = {}
    by_pid: dict[int, int] = {}  # pid -> the entry whose last sole run had it
    for event in events:
        if event.kind == FAILED:
            _failed(tallies, by_pid.get(event.pid), event)
            continue
        if event.kind != CMD:
            continue
        found = matcher.candidates(event)
        if not found:
            _unmatched(unmatched, event)
        elif len(found) == 1:
            _sole(tallies[found[0]], event)
            by_pid[event.pid] = found[0]
        else:
            for index in found:
                _shared(tallies[index], event, [_where(entries[i]) for i in found if i != index])
    return Matching(tallies, sorted(unmatched.values(), key=lambda u: (u.user, u.command)))


def _sole(tally: RunTally, event: CronEvent) -> None:
    tally.runs += 1
    tally.truncated += event.truncated
    tally.last_seen = event.at
    tally.last_failed = False


def _shared(tally: RunTally, event: CronEvent, others: list[str]) -> None:
    tally.ambiguous += 1
    tally.also.update(others)
    if tally.runs == 0:
        tally.last_seen = event.at


def _failed(tallies: list[RunTally], index: Optional[int], event: CronEvent) -> None:
    if index is None:  # not a job's own pid (a stdin feeder), or no run seen
        return
    tallies[index].failures.append(event.failure())
    tallies[index].last_failed = True


def _unmatched(found: dict[tuple[str, str], Unmatched], event: CronEvent) -> None:
    key = (event.user, event.command)
    old = found.get(key)
    count = old.count + 1 if old else 1
    found[key] = Unmatched(event.user, event.command, count, event.at)
