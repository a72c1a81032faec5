"""Evidence of life of legacy cron entries, and a verdict that names it (pure).

Inventory entries, cron's log (``cronlog``, matched by ``logmatch``) and what the
adapter (``cronsync.migrate.lifecheck``) found on disk about the files an entry
writes and its script (named by ``commandfiles``; :class:`PathFacts`) in; one
:class:`EntryEvidence` per entry out. A verdict is never a guess: each says what it
rests on and the period the logs cover.

* ``dead``: cron does not run it (the inventory says why), its script does not exist,
  or it was due in the covered period and never seen.
* ``failing``: it ran, and cron logged its last run as failed (``-L 4``), or the
  last lines of the file it writes to show an error (written in the period).
* ``alive``: it ran, and a file it writes to changed in the period, or its output
  goes to cron's mail on a host that has a mail transport.
* ``silent``: it ran, and its output goes to ``/dev/null``, to a file that did not
  change in the period, or to a mail nobody gets (``MAILTO=""``, or cron logged
  "No MTA installed, discarding output").
* ``unknown``: no log to read, not due in the covered period (``@reboot``, a yearly
  job), or its runs cannot be told from another entry's.

Everything shown is made of the inventory's masked text, and a line of a job's own
log is masked by ``printable`` before it is quoted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from cronsync.core.textshow import visible
from cronsync.core.tzrender import next_runs
from cronsync.crontab.commandfiles import DEV_NULL, Redirect, redirect_targets, script_of
from cronsync.crontab.cronlog import NO_MTA, LogRead
from cronsync.crontab.debianschedule import read_debian_schedule
from cronsync.crontab.inventory import HostFacts
from cronsync.crontab.logmatch import RunTally, Unmatched, match_runs
from cronsync.crontab.printable import read_line_secrets
from cronsync.crontab.records import InventoryEntry

ALIVE, SILENT, FAILING, DEAD, UNKNOWN = "alive", "silent", "failing", "dead", "unknown"
VERDICTS = (ALIVE, SILENT, FAILING, DEAD, UNKNOWN)
_ERROR = re.compile(
    r"\b(error|fatal|failed|failure|exception|traceback|denied|cannot|could not)\b", re.I
)
_TAIL_CHECKED = 5  # the last lines of a job's own log that decide "shows an error"
_QUOTED = 100  # characters of such a line quoted


Named = tuple[str, int]
"""An entry as ``(source, line)``."""


@dataclass(frozen=True)
class PathFacts:
    """What the host shows about one file.

    Attributes:
        exists: it is there. modified: its mtime (aware). size: bytes.
        tail: its last lines (a log a job writes to), as read.
        commit: the last commit touching it (``<hash> <date>``) when it lives in a git
            checkout.
        withheld: why the file was not looked at ("is a symbolic link: not
            followed"), or "".
        owner: its owner's uid, when known.
        trusted_by: the entries a file they write to is evidence for (its owner is
            the entry's user, or root for a system crontab); for the others it is
            withheld: a crontab naming a file proves nothing about it, and root must
            not show its content for them.
    """

    exists: bool
    modified: Optional[datetime] = None
    size: Optional[int] = None
    tail: tuple[str, ...] = ()
    commit: Optional[str] = None
    withheld: str = ""
    owner: Optional[int] = None
    trusted_by: frozenset[Named] = frozenset()


@dataclass(frozen=True)
class EntryEvidence:
    """What the host can prove about one entry's recent life, and the verdict."""

    source: str
    line: int
    user: Optional[str]
    command: str
    verdict: str
    evidence: tuple[str, ...]
    period: Optional[tuple[datetime, datetime]]
    runs: int = 0
    ambiguous: int = 0
    truncated: int = 0
    failures: int = 0
    last_seen: Optional[datetime] = None
    writes: tuple[tuple[str, PathFacts], ...] = ()
    script: Optional[tuple[str, PathFacts]] = None

    def to_json(self) -> dict[str, object]:
        """Return the JSON-ready form (the ``evidence`` of ``inventory --json``)."""
        return {
            "verdict": self.verdict,
            "evidence": list(self.evidence),
            "period": [t.isoformat() for t in self.period] if self.period else None,
            "runs": self.runs,
            "ambiguous_runs": self.ambiguous,
            "truncated_runs": self.truncated,
            "failed_runs": self.failures,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "writes": [_path_json(path, facts) for path, facts in self.writes],
            "script": _path_json(*self.script) if self.script else None,
        }


@dataclass(frozen=True)
class Evidence:
    """The evidence of every entry, the log sources read, and what matched nothing."""

    entries: list[EntryEvidence]
    sources: list[str]
    period: Optional[tuple[datetime, datetime]]
    unmatched: list[Unmatched]


def _path_json(path: str, facts: PathFacts) -> dict[str, object]:
    return {
        "path": path,
        "exists": facts.exists,
        "modified": facts.modified.isoformat() if facts.modified else None,
        "size": facts.size,
        "last_commit": facts.commit,
        "withheld": facts.withheld or None,
    }


def _when(moment: datetime, zone_name: str = "") -> str:
    return moment.strftime("%Y-%m-%d %H:%M") + (f" {zone_name}" if zone_name else "")


def period_text(period: Optional[tuple[datetime, datetime]]) -> str:
    """Return ``from A to B UTC`` for a covered period, ``nothing (no cron log could be
    read)`` when there is none."""
    if period is None:
        return "nothing (no cron log could be read)"
    return f"from {_when(period[0])} to {_when(period[1], 'UTC')}"


def log_covered(period: Optional[tuple[datetime, datetime]]) -> str:
    """Return ``cron log from A to B UTC``, or ``no cron log could be read``."""
    return f"cron log {period_text(period)}" if period else "no cron log could be read"


def judge(
    entries: Sequence[InventoryEntry],
    log: LogRead,
    sources: Sequence[str],
    facts: Mapping[str, PathFacts],
    host: HostFacts,
) -> Evidence:
    """Judge every entry that is not commented out.

    Args:
        entries: inventory entries (commented-out ones are left out).
        log: cron's log, every source merged (``cronlog.merged``).
        sources: the log sources read (shown with the period).
        facts: path -> what the adapter found, for each of :func:`paths_of`.
        host: the inventory's ``HostFacts`` (its ``zone``).
    Returns:
        the evidence per entry, in order. Never raises.
    """
    zone = host.zone
    active = [e for e in entries if not e.commented_out]
    matching = match_runs(active, log.events, zone)
    period = (log.first, log.last) if log.first and log.last else None
    no_mta = any(event.kind == NO_MTA for event in log.events)
    judged = [
        _judge_one(entry, tally, period, facts, no_mta, zone)
        for entry, tally in zip(active, matching.tallies)
    ]
    return Evidence(judged, list(sources), period, matching.unmatched)


def judge_entries(
    entries: Sequence[InventoryEntry],
    log: LogRead,
    sources: Sequence[str],
    facts: Mapping[str, PathFacts],
    host: HostFacts,
) -> list[EntryEvidence]:
    """Return :func:`judge`'s evidence per entry."""
    return judge(entries, log, sources, facts, host).entries


@dataclass(frozen=True)
class _Case:
    """One entry being judged: what the verdict functions read."""

    entry: InventoryEntry
    tally: RunTally
    period: Optional[tuple[datetime, datetime]]
    writes: tuple[tuple[Redirect, PathFacts], ...]
    script: Optional[tuple[str, PathFacts]]
    no_mta: bool
    zone: ZoneInfo
    withheld: tuple[tuple[Redirect, PathFacts], ...] = ()


def _judge_one(
    entry: InventoryEntry,
    tally: RunTally,
    period: Optional[tuple[datetime, datetime]],
    facts: Mapping[str, PathFacts],
    no_mta: bool,
    zone: ZoneInfo,
) -> EntryEvidence:
    named = tuple(
        (r, _COMPUTED if r.computed else _for_entry(entry, facts[r.path]))
        for r in redirect_targets(entry.shell_command)
        if r.path != DEV_NULL and (r.computed or (r.path.startswith("/") and r.path in facts))
    )
    writes = tuple((r, f) for r, f in named if not f.withheld)
    withheld = tuple((r, f) for r, f in named if f.withheld)
    script_path = script_of(entry.shell_command)
    script = (
        (script_path, facts[script_path])
        if script_path is not None and script_path in facts and not facts[script_path].withheld
        else None
    )
    case = _Case(entry, tally, period, writes, script, no_mta, zone, withheld)
    verdict, reasons = _verdict(case)
    if period is not None:  # without one, the verdict says so already
        reasons.append(log_covered(period))
    return EntryEvidence(
        entry.source,
        entry.line,
        entry.user,
        entry.command,
        verdict,
        tuple(visible(r) for r in reasons),
        period,
        tally.runs,
        tally.ambiguous,
        tally.truncated,
        len(tally.failures),
        tally.last_seen,
        tuple((r.path, f) for r, f in named),
        script,
    )


_COMPUTED = PathFacts(False, withheld="is a name the shell makes when the job runs: not checked")


def _for_entry(entry: InventoryEntry, facts: PathFacts) -> PathFacts:
    """``facts`` of a file ``entry`` writes to as evidence for it: withheld (no time,
    size or lines) when the file exists but is not its user's (nor root's, for a
    system crontab)."""
    if not facts.exists or facts.withheld or (entry.source, entry.line) in facts.trusted_by:
        return facts
    return PathFacts(
        True,
        owner=facts.owner,
        withheld=f"is not {entry.user}'s (owner uid {facts.owner}): no evidence of this "
        "job, and not read",
    )


def _verdict(case: _Case) -> tuple[str, list[str]]:
    entry, tally = case.entry, case.tally
    if not entry.runs:
        why = entry.problems[0] if entry.problems else entry.state
        return DEAD, [f"cron does not run it ({entry.state}): {why}"]
    if case.script is not None and not case.script[1].exists:
        return DEAD, [f"its script {case.script[0]} does not exist"]
    facts = _script_facts(case)
    if case.period is None:
        return UNKNOWN, [*facts, "no cron log to read: whether it runs is not known"]
    if tally.runs == 0 and tally.ambiguous:
        also = ", ".join(sorted(tally.also))
        return UNKNOWN, [
            *facts,
            f"cron logged its command {tally.ambiguous} times, but the log cannot tell "
            f"its runs from those of {also} (same user and command)",
        ]
    if tally.runs == 0:
        return _never_seen(case, facts)
    return _ran(case, facts)


def _script_facts(case: _Case) -> list[str]:
    """What the files say: its script, and each file it writes to that was withheld."""
    withheld = [f"the file it writes to, {r.path}, {f.withheld}" for r, f in case.withheld]
    if case.script is None:
        return withheld
    return [_script_said(case.script), *withheld]


def _script_said(script: tuple[str, PathFacts]) -> str:
    path, facts = script
    said = f"its script {path} exists"
    if facts.modified is not None:
        said += f", last modified {_when(facts.modified, 'UTC')}"
    if facts.commit:
        said += f", last commit {facts.commit}"
    return said


def _never_seen(case: _Case, facts: list[str]) -> tuple[str, list[str]]:
    assert case.period is not None
    schedule = read_debian_schedule(case.entry.schedule).schedule
    if schedule is None or schedule.reboot:
        return UNKNOWN, [*facts, "not seen in the log; it runs only when cron starts (@reboot)"]
    first, last = case.period
    due = next_runs(schedule, first - timedelta(seconds=1), 1, case.zone)
    if not due or due[0] > last:
        return UNKNOWN, [*facts, "not seen in the log, and it was not due in the period it covers"]
    when = _when(due[0].astimezone(first.tzinfo), "UTC")
    return DEAD, [*facts, f"never seen in the cron log, though it was due (first at {when})"]


def _ran(case: _Case, facts: list[str]) -> tuple[str, list[str]]:
    tally = case.tally
    assert tally.last_seen is not None and case.period is not None
    said = f"ran {_times(tally.runs)}, last at {_when(tally.last_seen, 'UTC')}"
    missed = _missed(case)
    if missed:
        said += f" (not seen since, though due {_times(missed)} after it)"
    if tally.truncated:
        said += f" ({tally.truncated} matched by the start of a message the log cut)"
    if tally.ambiguous:
        said += f"; {tally.ambiguous} more runs may be its or {', '.join(sorted(tally.also))}'s"
    reasons = [said, *facts]
    if tally.last_failed:
        return FAILING, [
            *reasons,
            f"cron logged {len(tally.failures)} of its runs as failed, the last one "
            f"{_ended(tally.failures[-1])}",
        ]
    error = _error_line(case)
    if error is not None:
        return FAILING, [*reasons, error]
    return _output(case, reasons)


def _ended(failure: str) -> str:
    return failure if failure.startswith("killed") else f"with {failure}"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


_MISSED_COUNTED = 100


def _missed(case: _Case) -> int:
    """How often the entry was due after its last run seen, to the end of the period."""
    schedule = read_debian_schedule(case.entry.schedule).schedule
    if schedule is None or case.tally.last_seen is None or case.period is None:
        return 0
    due = next_runs(schedule, case.tally.last_seen, _MISSED_COUNTED, case.zone)
    return sum(moment <= case.period[1] for moment in due)


def _error_line(case: _Case) -> Optional[str]:
    assert case.period is not None
    for redirect, facts in case.writes:
        if facts.modified is None or facts.modified < case.period[0]:
            continue
        lines = [line for line in facts.tail if line.strip()][-_TAIL_CHECKED:]
        for line in reversed(lines):
            if _ERROR.search(line):
                shown = read_line_secrets(line).shown()
                shown = shown if len(shown) <= _QUOTED else shown[: _QUOTED - 1] + "…"
                return f"the last lines of {redirect.path} show an error: {shown!r}"
    return None


def _output(case: _Case, reasons: list[str]) -> tuple[str, list[str]]:
    assert case.period is not None
    start = case.period[0]
    fresh = [(r, f) for r, f in case.writes if f.modified is not None and f.modified >= start]
    if fresh:
        redirect, facts = fresh[0]
        assert facts.modified is not None
        return ALIVE, [
            *reasons,
            f"wrote {redirect.path} at {_when(facts.modified, 'UTC')} ({facts.size} bytes)",
        ]
    if case.withheld and not case.writes:
        return UNKNOWN, [*reasons, "so whether it wrote anything is not known"]
    if case.writes:
        redirect, facts = case.writes[0]
        state = (
            f"last changed {_when(facts.modified, 'UTC')}, before the period"
            if facts.modified is not None
            else "does not exist"
        )
        return SILENT, [*reasons, f"the file it writes to, {redirect.path}, {state}"]
    return _unredirected(case, reasons)


def _unredirected(case: _Case, reasons: list[str]) -> tuple[str, list[str]]:
    targets = redirect_targets(case.entry.shell_command)
    if any(r.fd == 1 and r.path == "/dev/null" for r in targets):
        return SILENT, [*reasons, "its output goes to /dev/null"]
    mailto = dict(case.entry.env).get("MAILTO")
    if mailto == "":
        return SILENT, [*reasons, 'its output goes to cron\'s mail, and MAILTO="" discards it']
    if case.no_mta:
        return SILENT, [
            *reasons,
            "its output goes to cron's mail, and cron logged 'No MTA installed, discarding "
            "output' on this host",
        ]
    return ALIVE, [*reasons, "its output goes to cron's mail (MAILTO)"]
