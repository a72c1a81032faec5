"""When jobs run across a day or a week: the layout behind ``cronsync timeline`` (pure).

A :class:`Window` is whole days of the host's zone (midnight to midnight, so a DST day
is 23 or 25 hours long). A :class:`Timeline` holds one :class:`Lane` per drawn job with
its runs in the window -- scheduled ones (the schedule code's ``next_runs`` in the job's
zone, lasting up to the job's timeout) or recorded ones (start and duration from the run
records) -- and the jobs left out, with why. The renderings (:mod:`.timelinetext`,
:mod:`.timelinesvg`, :mod:`.timelinejson`) cut the window into slots of whole minutes
counted from its start; :func:`lane_cells` and :func:`load_per_slot` say what falls in
each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import CronSchedule, parse_schedule
from cronsync.core.tzrender import load_zone, next_runs, offset_deltas

MAX_DAYS = 7
SLOT_MINUTES = (10, 15, 30, 60, 120, 180, 360)  # a column each; longer ones for many days
SCHEDULED = "schedule"
HISTORY = "history"
REBOOT_REASON = "@reboot: runs only when cron starts"
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Window:
    """Whole days of the host's zone: ``start`` (inclusive) to ``end`` (exclusive), UTC."""

    day: date
    days: int
    host_zone: str
    start: datetime
    end: datetime

    @property
    def zone(self) -> ZoneInfo:
        """The host's zone."""
        return load_zone(self.host_zone)


@dataclass(frozen=True)
class Run:
    """One run: its start (aware, UTC), how long it lasts or may last (seconds; None when
    unknown), and for a recorded run its status."""

    start: datetime
    seconds: Optional[float]
    status: str = ""

    @property
    def end(self) -> Optional[datetime]:
        """When it ends (None: unknown)."""
        return None if self.seconds is None else self.start + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Lane:
    """One job's runs in the window, ascending; ``overlaps`` are the indexes of the runs
    that start while an earlier run of the same job is still going."""

    job: str
    zone: str
    schedule: str
    runs: tuple[Run, ...]
    overlaps: tuple[int, ...]


@dataclass(frozen=True)
class LeftOut:
    """A job that is not drawn, and why (its compiled status, or ``@reboot``)."""

    job: str
    reason: str


@dataclass(frozen=True)
class Timeline:
    """What to draw: the window, where the runs come from (``schedule`` or ``history``),
    a lane per drawn job (by name) and the jobs left out (by name)."""

    window: Window
    source: str
    lanes: tuple[Lane, ...]
    left_out: tuple[LeftOut, ...]


@dataclass(frozen=True)
class Cells:
    """One lane cut into slots: runs starting in each, whether a run started earlier is
    still going in it, whether a run starts in it while an earlier one still runs."""

    starts: tuple[int, ...]
    busy: tuple[bool, ...]
    overlap: tuple[bool, ...]


def day_window(day: date, days: int, host_zone: str) -> Window:
    """Return the window from midnight of ``day`` to midnight ``days`` later, host time.

    Raises:
        ValueError: ``days`` is not 1 to 7.
        ScheduleError: ``host_zone`` is not a known zone.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days must be 1 to {MAX_DAYS}, not {days}")
    zone = load_zone(host_zone)
    last = day + timedelta(days=days)
    return Window(day, days, host_zone, _midnight(day, zone), _midnight(last, zone))


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone`` (a zone may skip midnight: then later)."""
    local = datetime.combine(day, time(0), tzinfo=zone)
    instant = local.astimezone(timezone.utc)
    while instant.astimezone(zone).date() < day:  # midnight fell in a DST gap
        instant += timedelta(minutes=1)
    return instant


def runs_between(
    schedule: CronSchedule, zone: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Return every run of ``schedule`` in ``zone`` from ``start`` (inclusive) to ``end``
    (exclusive), as aware UTC datetimes: the schedule code's ``next_runs``.

    A day of the job's zone has at most hours x minutes runs and the window touches at
    most two days more than it spans, so one bounded ``next_runs`` call holds them all
    (and stops early for a sparse schedule: a monthly job walks a few months, not years).

    Raises:
        ValueError: ``start`` is naive.
    """
    days = -int(-(end - start).total_seconds() // 86400) + 2
    count = len(schedule.hours) * len(schedule.minutes) * days
    runs = next_runs(schedule, start - timedelta(microseconds=1), count, zone)
    return [run.astimezone(timezone.utc) for run in runs if run < end]


def overlapping(runs: Sequence[Run]) -> tuple[int, ...]:
    """Indexes of the runs (ascending by start) that start before an earlier one ends."""
    found: list[int] = []
    latest_end: Optional[datetime] = None
    for index, run in enumerate(runs):
        if latest_end is not None and run.start < latest_end:
            found.append(index)
        end = run.end
        if end is not None and (latest_end is None or end > latest_end):
            latest_end = end
    return tuple(found)


def _lane(name: str, job: Mapping[str, Any], runs: Iterable[Run]) -> Lane:
    ordered = tuple(sorted(runs, key=lambda run: run.start))
    return Lane(
        name, str(job.get("timezone")), str(job.get("schedule")), ordered, overlapping(ordered)
    )


def _drawable(
    jobs: Mapping[str, Mapping[str, Any]],
) -> tuple[list[tuple[str, Mapping[str, Any], CronSchedule, ZoneInfo]], list[LeftOut]]:
    """Split compiled jobs into those to draw (with schedule and zone) and the rest."""
    drawn, left = [], []
    for name in sorted(jobs):
        job = jobs[name]
        if not job.get("installed"):
            left.append(LeftOut(name, str(job.get("status") or "not installed")))
            continue
        try:
            schedule = parse_schedule(str(job.get("schedule")))
            zone = load_zone(str(job.get("timezone")))
        except ScheduleError as exc:
            left.append(LeftOut(name, exc.message))
            continue
        if schedule.reboot:
            left.append(LeftOut(name, REBOOT_REASON))
            continue
        drawn.append((name, job, schedule, zone))
    return drawn, left


def scheduled_timeline(jobs: Mapping[str, Mapping[str, Any]], window: Window) -> Timeline:
    """Lay out when compiled jobs (``jobs.json``'s ``jobs``) are due in ``window``; each
    run lasts up to the job's ``timeout`` (unknown without one). Jobs not installed on
    the host, ``@reboot`` jobs and unreadable schedules are left out."""
    drawn, left = _drawable(jobs)
    lanes = []
    for name, job, schedule, zone in drawn:
        timeout = job.get("timeout")
        seconds = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None
        starts = runs_between(schedule, zone, window.start, window.end)
        lanes.append(_lane(name, job, (Run(start, seconds) for start in starts)))
    return Timeline(window, SCHEDULED, tuple(lanes), tuple(left))


def history_timeline(
    jobs: Mapping[str, Mapping[str, Any]],
    runs: Mapping[str, Sequence[Run]],
    window: Window,
) -> Timeline:
    """Lay out the recorded ``runs`` (job -> runs) of the drawn jobs that started in
    ``window``, or before it and were still going when it began; left out as
    :func:`scheduled_timeline` says."""
    drawn, left = _drawable(jobs)
    lanes = [
        _lane(name, job, (r for r in runs.get(name, ()) if _touches(r, window)))
        for name, job, _schedule, _zone in drawn
    ]
    return Timeline(window, HISTORY, tuple(lanes), tuple(left))


def _touches(run: Run, window: Window) -> bool:
    """Whether a run starts in the window, or started before it and was still going."""
    if run.start >= window.end:
        return False
    end = run.end
    return run.start >= window.start or (end is not None and end > window.start)


def slot_count(window: Window, minutes: int) -> int:
    """How many slots of ``minutes`` cover the window (the last may be cut short)."""
    seconds = (window.end - window.start).total_seconds()
    return -int(-seconds // (minutes * 60))


def slot_start(window: Window, minutes: int, index: int) -> datetime:
    """The instant (UTC) slot ``index`` starts."""
    return window.start + timedelta(minutes=minutes * index)


def slot_of(window: Window, minutes: int, instant: datetime) -> int:
    """The slot ``instant`` falls in (may be outside 0..slot_count-1)."""
    return int((instant - window.start).total_seconds() // (minutes * 60))


def choose_slot_minutes(window: Window, columns: int) -> int:
    """The shortest slot of :data:`SLOT_MINUTES` whose slots fit in ``columns``; the
    longest when none fits."""
    for minutes in SLOT_MINUTES:
        if slot_count(window, minutes) <= columns:
            return minutes
    return SLOT_MINUTES[-1]


def lane_cells(lane: Lane, window: Window, minutes: int) -> Cells:
    """Cut one lane into the window's slots of ``minutes``."""
    count = slot_count(window, minutes)
    starts, busy, overlap = [0] * count, [False] * count, [False] * count
    clash = set(lane.overlaps)
    for index, run in enumerate(lane.runs):
        first = slot_of(window, minutes, run.start)
        if 0 <= first < count:
            starts[first] += 1
            overlap[first] = overlap[first] or index in clash
        end = run.end
        if end is not None and end > run.start:
            last = slot_of(window, minutes, end - timedelta(microseconds=1))
            for slot in range(max(first + 1, 0), min(last, count - 1) + 1):
                busy[slot] = True
    return Cells(tuple(starts), tuple(busy), tuple(overlap))


def load_per_slot(timeline: Timeline, minutes: int) -> tuple[tuple[str, ...], ...]:
    """For each slot, the jobs (by name) with a run starting in it."""
    window = timeline.window
    slots: list[list[str]] = [[] for _ in range(slot_count(window, minutes))]
    for lane in timeline.lanes:
        seen: set[int] = set()
        for run in lane.runs:
            slot = slot_of(window, minutes, run.start)
            if 0 <= slot < len(slots) and slot not in seen:
                seen.add(slot)
                slots[slot].append(lane.job)
    return tuple(tuple(names) for names in slots)


def busiest_slots(load: Sequence[Sequence[str]], count: int = 3) -> list[int]:
    """The ``count`` slots where the most jobs start (ties: the earliest), busiest first;
    only slots where two jobs or more start are named."""
    ranked = sorted(
        (i for i, names in enumerate(load) if len(names) > 1), key=lambda i: (-len(load[i]), i)
    )
    return ranked[:count]


def short_reason(reason: str) -> str:
    """A left-out job's reason in a word or two: ``disabled``, ``for other hosts``,
    ``@reboot``, else the reason itself."""
    if reason.startswith("disabled"):
        return "disabled"
    if reason.startswith("not targeted"):
        return "for other hosts"
    if reason == REBOOT_REASON:
        return "@reboot"
    return reason


def left_out_summary(left_out: Sequence[LeftOut]) -> str:
    """``N job(s) left out (disabled: a, b; for other hosts: c)``, or '' when none was."""
    if not left_out:
        return ""
    by_reason: dict[str, list[str]] = {}
    for item in left_out:
        by_reason.setdefault(short_reason(item.reason), []).append(item.job)
    reasons = "; ".join(f"{why}: {', '.join(names)}" for why, names in sorted(by_reason.items()))
    noun = "job" if len(left_out) == 1 else "jobs"
    return f"{len(left_out)} {noun} left out ({reasons})"


def same_clock(job_zone: str, host_zone: str, year: int) -> bool:
    """Whether two zones show the same time all around ``year`` (``UTC`` and
    ``Etc/UTC``): a job's zone is then not worth showing beside the host's."""
    try:
        return job_zone == host_zone or offset_deltas(job_zone, host_zone, year) == (0,)
    except ScheduleError:
        return False


def host_time(window: Window, instant: datetime) -> datetime:
    """``instant`` in the host's zone."""
    return instant.astimezone(window.zone)


def slot_label(window: Window, minutes: int, index: int) -> str:
    """``HH:MM-HH:MM`` of a slot in host time, with the date when the window spans days."""
    start = host_time(window, slot_start(window, minutes, index))
    end = host_time(window, min(slot_start(window, minutes, index + 1), window.end))
    day = f"{DAY_NAMES[start.weekday()]} {start:%Y-%m-%d} "  # not %a: no locale
    prefix = day if window.days > 1 else ""
    return f"{prefix}{start:%H:%M}-{end:%H:%M}"
