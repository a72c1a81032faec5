"""The longest wait between two consecutive runs of a schedule in its zone (pure).

Computed from the schedule's fields, never by listing every minute: the matching
minutes of a day (``T``) times the matching days (months, and vixie's day-of-month OR
day-of-week rule). On a day whose UTC offset is constant ("plain") every time of ``T``
runs, so between two plain days ``a`` < ``b`` with nothing matching in between the wait
is ``(b - a) days - (T[-1] - T[0]) - (offset(b) - offset(a))``, and the longest wait
inside a day is the longest step of ``T``. Only the few days holding a UTC offset change
(DST) are worked out time by time, with the rule of :mod:`cronsync.core.tzrender`: a
wall time the change skips does not run that day (a 02:30 job waits two days across a
spring-forward at 02:00), one it repeats runs once, at its first occurrence (a fall-back
lengthens a wait by the hour it repeats). The result is exact, not a bound; the test
compares it with :func:`cronsync.core.tzrender.next_runs` minute for minute.

What depends on the schedule's days only (which days match, their offsets) is cached per
day pattern, zone and window, so 10,000 jobs with a handful of day patterns cost a
handful of calendar walks.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Optional

from cronsync.core.schedule import CronSchedule, day_matches
from cronsync.core.tzrender import first_offset_change, load_zone, zone_offset

DAY = 1440  # minutes
# Offsets are probed every 6 hours, then each change is found to the minute: this
# assumes no zone changes its offset twice within 6 hours (tzdata's closest changes are
# weeks apart); the brute-force test covers zones with 30-minute, midnight and whole-day
# changes.
SCAN_STEP = 360  # minutes
SEARCH_YEARS = 40  # how far before and after the window a run is looked for
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# (UTC minute of the change, offset before, offset after), offsets in minutes east of UTC
Transition = tuple[int, int, int]
Slice = tuple[int, int, int]  # times[first..last] (indexes) run at this offset
DayKey = tuple[frozenset[int], frozenset[int], frozenset[int], bool, bool]


@dataclass(frozen=True)
class _DayPlan:
    """The matching days around a window and what does not depend on the times of day.

    ``days``: (day ordinal, its UTC offset in minutes, or None when the offset changes
    that day), ascending, from the last plain matching day before the window (or as far
    as the search went) to the first plain one at or after its end. ``plain_most``: the
    longest ``(b - a) * DAY - (offset(b) - offset(a))`` over neighbouring plain days that
    count (``b`` on ``first`` or after, ``a`` before ``end``), None when there is none.
    ``clusters``: (first, last) indexes into ``days`` of each stretch of changing days
    with the plain day on either side, when there is one.
    """

    days: tuple[tuple[int, Optional[int]], ...]
    plain_most: Optional[int]
    plain_in_window: bool
    plain_before: bool
    plain_after: bool
    clusters: tuple[tuple[int, int], ...]
    first: int
    end: int
    transitions: tuple[Transition, ...]


def longest_gap_minutes(
    schedule: CronSchedule, zone_name: str, first: date, end: date
) -> Optional[int]:
    """The longest time between two consecutive runs of ``schedule`` in ``zone_name``,
    over the pairs of runs that touch the days ``first`` (included) to ``end`` (excluded):
    the later run on ``first`` or after, the earlier one before ``end`` (local dates).

    Args:
        schedule: a parsed schedule. zone_name: the IANA zone it runs in.
        first, end: the window, local dates of the zone, ``first`` < ``end``.
    Returns:
        Minutes of real (UTC) time; None for ``@reboot``, or when no run is found within
        ``SEARCH_YEARS`` before the window or after it (the job does not run in this zone).
    Raises:
        ScheduleError: the zone is unknown.
    """
    if schedule.reboot:
        return None
    times = tuple(sorted(h * 60 + m for h in schedule.hours for m in schedule.minutes))
    plan = _day_plan(_day_key(schedule), zone_name, first.toordinal(), end.toordinal())
    best = [plan.plain_most - (times[-1] - times[0])] if plan.plain_most is not None else []
    if plan.plain_in_window and len(times) > 1:
        best.append(max(b - a for a, b in zip(times, times[1:])))
    before, after = plan.plain_before, plan.plain_after
    for low, high in plan.clusters:
        run_days = _cluster_runs(plan, low, high, times, best)
        before = before or any(day < plan.first for day, _f, _l in run_days)
        after = after or any(day >= plan.end for day, _f, _l in run_days)
        for (a, _fa, last), (b, next_first, _lb) in zip(run_days, run_days[1:]):
            if b >= plan.first and a < plan.end:
                best.append(next_first - last)
    if not (before and after) or not best:
        return None
    return max(best)


def _cluster_runs(
    plan: _DayPlan, low: int, high: int, times: tuple[int, ...], best: list[int]
) -> list[tuple[int, int, int]]:
    """(day, first run, last run) of the days of one cluster that run (UTC minutes); the
    waits inside a changing day of the window are added to ``best`` (the steps of
    ``times`` inside a stretch only when no plain day of the window counted them)."""
    found = []
    for day, offset in plan.days[low : high + 1]:
        start = (day - _EPOCH_DAY) * DAY
        if offset is not None:
            found.append((day, start + times[0] - offset, start + times[-1] - offset))
            continue
        slices = _affected_runs(start, times, plan.transitions)
        if not slices:
            continue  # every time of the day falls in the hour a spring-forward skips
        if plan.first <= day < plan.end:
            for (_i, j, off_a), (i, _j, off_b) in zip(slices, slices[1:]):
                best.append((times[i] - off_b) - (times[j] - off_a))
            if not plan.plain_in_window:
                best += [times[k + 1] - times[k] for i, j, _o in slices for k in range(i, j)]
        first_i, _j, first_off = slices[0]
        _i, last_j, last_off = slices[-1]
        found.append((day, start + times[first_i] - first_off, start + times[last_j] - last_off))
    return found


def _affected_runs(
    start: int, times: tuple[int, ...], transitions: tuple[Transition, ...]
) -> list[Slice]:
    """How a day holding an offset change runs ``times``: stretches of ``times`` (index
    ranges) each with the offset it runs at, in time order.

    Between two changes the offset ``o`` is fixed, and the wall times it shows are
    ``[change + o, next change + o)``; a wall time shown twice runs at its first showing,
    one never shown does not run.
    """
    ats = [t[0] for t in transitions]
    near = transitions[
        bisect.bisect_left(ats, start - 2 * DAY) : bisect.bisect_right(ats, start + 3 * DAY)
    ]
    if not near:
        return []
    regimes: list[tuple[Optional[int], Optional[int], int]] = [(None, near[0][0], near[0][1])]
    regimes += [
        (t[0], near[i + 1][0] if i + 1 < len(near) else None, t[2]) for i, t in enumerate(near)
    ]
    slices: list[Slice] = []
    shown = start  # wall times below this have run already (their first showing)
    for begin, stop, offset in regimes:
        low_wall = shown if begin is None else max(shown, begin + offset)
        high_wall = start + DAY if stop is None else min(start + DAY, stop + offset)
        if high_wall <= low_wall:
            continue
        i = bisect.bisect_left(times, low_wall - start)
        j = bisect.bisect_left(times, high_wall - start)
        if i < j:
            slices.append((i, j - 1, offset))
        shown = high_wall
    return slices


def _day_key(schedule: CronSchedule) -> DayKey:
    return (
        schedule.months,
        schedule.days_of_month,
        schedule.days_of_week,
        schedule.dom_restricted,
        schedule.dow_restricted,
    )


@functools.lru_cache(maxsize=4096)
def _day_plan(key: DayKey, zone_name: str, first: int, end: int) -> _DayPlan:
    """The matching days of ``key`` from the last plain one before ``first`` to the first
    plain one at or after ``end`` (day ordinals), with their offsets."""
    probe = _probe(key)
    offsets = _window_offsets(zone_name, first, end)
    inside = [(o, offsets[o - first]) for o in _window_matches(key, first, end)]
    before = [(o, _plain_offset(zone_name, o)) for o in _search(probe, zone_name, first - 1, -1)]
    after = [(o, _plain_offset(zone_name, o)) for o in _search(probe, zone_name, end, 1)]
    days = (*reversed(before), *inside, *after)
    most: Optional[int] = None
    for (a, off_a), (b, off_b) in zip(days, days[1:]):
        if off_a is not None and off_b is not None and b >= first and a < end:
            wait = (b - a) * DAY - (off_b - off_a)
            most = wait if most is None else max(most, wait)
    years = range(0)
    if days:
        years = range(date.fromordinal(days[0][0]).year - 1, date.fromordinal(days[-1][0]).year + 2)
    return _DayPlan(
        days=days,
        plain_most=most,
        plain_in_window=any(first <= o < end and off is not None for o, off in days),
        plain_before=any(o < first and off is not None for o, off in days),
        plain_after=any(o >= end and off is not None for o, off in days),
        clusters=_clusters(days),
        first=first,
        end=end,
        transitions=tuple(t for year in years for t in _transitions(zone_name, year)),
    )


def _window_matches(key: DayKey, first: int, end: int) -> list[int]:
    """The ordinals of the days from ``first`` to ``end`` that ``key`` matches (vixie's
    rule, as ``schedule.day_matches``), from the cached calendar of the window."""
    months, doms, dows, dom_restricted, dow_restricted = key
    calendar = _calendar(first, end)
    if dom_restricted and dow_restricted:
        return [o for o, m, d, w in calendar if m in months and (d in doms or w in dows)]
    return [o for o, m, d, w in calendar if m in months and d in doms and w in dows]


@functools.lru_cache(maxsize=16)
def _calendar(first: int, end: int) -> tuple[tuple[int, int, int, int], ...]:
    """(ordinal, month, day of month, day of week with Sunday 0) of each day."""
    found = []
    for ordinal in range(first, end):
        day = date.fromordinal(ordinal)
        found.append((ordinal, day.month, day.day, day.isoweekday() % 7))
    return tuple(found)


@functools.lru_cache(maxsize=64)
def _window_offsets(zone_name: str, first: int, end: int) -> tuple[Optional[int], ...]:
    """``_plain_offset`` of each day from ``first`` to ``end``, once per zone."""
    return tuple(_plain_offset(zone_name, ordinal) for ordinal in range(first, end))


def _clusters(days: tuple[tuple[int, Optional[int]], ...]) -> tuple[tuple[int, int], ...]:
    """Index ranges of each stretch of changing days, widened by a plain day each side."""
    found = []
    index = 0
    while index < len(days):
        if days[index][1] is not None:
            index += 1
            continue
        stop = index
        while stop + 1 < len(days) and days[stop + 1][1] is None:
            stop += 1
        found.append((max(index - 1, 0), min(stop + 1, len(days) - 1)))
        index = stop + 1
    return tuple(found)


def _probe(key: DayKey) -> CronSchedule:
    """A schedule with the days of ``key`` (for ``day_matches``)."""
    months, doms, dows, dom_restricted, dow_restricted = key
    empty: frozenset[int] = frozenset()
    return CronSchedule("", empty, empty, doms, months, dows, dom_restricted, dow_restricted)


def _search(probe: CronSchedule, zone_name: str, start: int, step: int) -> list[int]:
    """Matching days from ``start`` going by ``step`` up to and including the first
    plain one (at most ``SEARCH_YEARS`` away)."""
    found = []
    for ordinal in range(start, start + step * 366 * SEARCH_YEARS, step):
        day = date.fromordinal(ordinal)
        if day.month in probe.months and day_matches(probe, day):
            found.append(ordinal)
            if _plain_offset(zone_name, ordinal) is not None:
                break
    return found


def _plain_offset(zone_name: str, ordinal: int) -> Optional[int]:
    """The UTC offset of a day (minutes), or None when the offset changes on it."""
    day = date.fromordinal(ordinal)
    if ordinal in _affected_days(zone_name, day.year):
        return None
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=load_zone(zone_name))
    return _minutes(noon.utcoffset())


@functools.lru_cache(maxsize=1024)
def _affected_days(zone_name: str, year: int) -> frozenset[int]:
    """Day ordinals (local) on which the zone's offset changes, around ``year``."""
    days: set[int] = set()
    for each in (year - 1, year, year + 1):
        for at, before, after in _transitions(zone_name, each):
            for wall in (at + before, at + after):
                days.add(_EPOCH_DAY + wall // DAY)
    return frozenset(days)


@functools.lru_cache(maxsize=1024)
def _transitions(zone_name: str, year: int) -> tuple[Transition, ...]:
    """The zone's offset changes during ``year`` (UTC), each with the offsets around it."""
    zone = load_zone(zone_name)
    start = _minute_of(datetime(year, 1, 1, tzinfo=timezone.utc))
    stop = _minute_of(datetime(year + 1, 1, 1, tzinfo=timezone.utc))
    found = []
    low, offset = start, zone_offset(zone, start)
    for step_end in range(start + SCAN_STEP, stop + SCAN_STEP, SCAN_STEP):
        high = min(step_end, stop)
        after = zone_offset(zone, high)
        if after != offset:
            at = first_offset_change(zone, low, high, offset)
            found.append((at, offset, zone_offset(zone, at)))
            offset = after
        low = high
    return tuple(found)


def _minute_of(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds()) // 60


def _minutes(offset: Optional[timedelta]) -> int:
    assert offset is not None  # a ZoneInfo always knows its offset
    return int(offset.total_seconds()) // 60
