"""Cron schedules as Kubernetes CronJob ``schedule`` strings, and where they differ (pure).

Kubernetes reads ``spec.schedule`` with robfig/cron v3 in ``spec.timeZone``. Its day rule
differs from Debian cron's in one place: a field counts as unrestricted only when it is
exactly ``*`` (``*/2`` restricts), so we write every field from the values cron runs
on, ``*`` only for "every day". Its clock-change behaviour comes from the library, not
a spec: a time in a skipped hour is skipped, as in cronsync, but a time in a repeated
hour runs twice (robfig walks the instants; cronsync runs the first occurrence only).
``clock_change_notes`` says when a job is affected; in zones that change at
midnight or by half an hour robfig's midnight correction misplaces more (see there).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from cronsync.core.schedule import format_field, matches, parse_schedule
from cronsync.core.tzrender import load_zone
from cronsync.export.days import DAY_OF_MONTH, DAY_OF_WEEK, EVERY_DAY, day_plan
from cronsync.export.refusal import Unexportable

_HOUR = timedelta(hours=1)
_STEP = timedelta(hours=6)  # no zone changes its clock twice within six hours
CYCLE_YEARS = 29


def kubernetes_schedule(text: str) -> str:
    """Translate a cron schedule (as cronsync reads it) into a CronJob ``schedule``.

    Args:
        text: a schedule that ``core.schedule.parse_schedule`` accepts.
    Returns:
        five fields robfig/cron reads with the same meaning as Debian cron.
    Raises:
        Unexportable: ``@reboot``, or cron's AND of two restricted day fields.
        ScheduleError: ``text`` is not a valid schedule.
    """
    schedule = parse_schedule(text)
    if schedule.reboot:
        raise Unexportable("@reboot runs when cron starts; a Kubernetes CronJob has none")
    plan = day_plan(schedule)
    dom, dow = "*", "*"
    if plan not in (EVERY_DAY, DAY_OF_WEEK):
        dom = format_field(schedule.days_of_month, 1, 31, star_when_full=False)
    if plan not in (EVERY_DAY, DAY_OF_MONTH):
        dow = format_field(schedule.days_of_week, 0, 6, star_when_full=False)
    minutes = format_field(schedule.minutes, 0, 59)
    hours = format_field(schedule.hours, 0, 23)
    return f"{minutes} {hours} {dom} {format_field(schedule.months, 1, 12)} {dow}"


def clock_change_notes(text: str, zone_name: str, year: int) -> tuple[str, ...]:
    """Say where Kubernetes would not run a job when cronsync would, around clock changes.

    Two cases, found by walking the zone's clock changes from ``year - 1`` over a
    full 28-year cycle of dates and weekdays: a repeated (fall-back) local time the
    schedule hits runs twice there; and on a day the clock changes at midnight or by
    other than one hour, robfig/cron's midnight correction can skip or move that day's
    runs (any schedule: said per zone).

    Args:
        text: a valid schedule (not ``@reboot``).
        zone_name: the job's IANA zone.
        year: the current year.
    Returns:
        one line per case that applies, empty when Kubernetes runs it exactly.
    Raises:
        ScheduleError: unknown zone or invalid schedule.
    """
    schedule = parse_schedule(text)
    notes = []
    odd = next((c for c in _changes(zone_name, year) if _irregular(*c)), None)
    if odd is not None:
        notes.append(
            f"{zone_name} changes its clock at midnight or by other than an hour (first "
            f"{odd[0]:%Y-%m-%d %H:%M}): on such days Kubernetes' cron library can skip or "
            "move runs, cronsync does not"
        )
    for wall, before, after in _changes(zone_name, year):
        local = wall - (before - after)
        while local < wall and after < before:
            if matches(schedule, local):
                notes.append(
                    f"{zone_name} repeats {local:%H:%M} on {local:%Y-%m-%d} (clocks go "
                    "back): Kubernetes runs this job at both, cronsync once"
                )
                return tuple(notes)
            local += timedelta(minutes=1)
    return tuple(notes)


def _irregular(wall: datetime, before: timedelta, after: timedelta) -> bool:
    """A change by other than an hour, or within an hour of local midnight."""
    landed = wall + (after - before)
    near_midnight = {wall.date(), landed.date()} != {wall.date()} or wall.hour == 0
    return abs(after - before) != _HOUR or near_midnight or landed.hour == 0


@functools.lru_cache(maxsize=256)
def _changes(zone_name: str, year: int) -> tuple[tuple[datetime, timedelta, timedelta], ...]:
    """Each clock change from ``year - 1`` for ``CYCLE_YEARS`` (dates and weekdays repeat
    after 28 years, so a rule's every fall-back day is seen): (local wall time it happens
    at, in the old offset, naive), the offset before, the offset after."""
    zone = load_zone(zone_name)
    changes = []
    instant = datetime(year - 1, 1, 1, tzinfo=timezone.utc)
    end = datetime(year - 1 + CYCLE_YEARS, 1, 1, tzinfo=timezone.utc)
    before = _offset(instant, zone)
    while instant < end:
        later = instant + _STEP
        after = _offset(later, zone)
        if after != before:
            change = _first_change(instant, later, zone, before)
            changes.append(((change + before).replace(tzinfo=None), before, after))
        before, instant = after, later
    return tuple(changes)


def _first_change(low: datetime, high: datetime, zone: ZoneInfo, before: timedelta) -> datetime:
    """The first whole minute in (low, high] whose offset is no longer ``before``."""
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) // 2
        middle -= timedelta(seconds=middle.second, microseconds=middle.microsecond)
        if middle <= low:
            middle = low + timedelta(minutes=1)
        if _offset(middle, zone) == before:
            low = middle
        else:
            high = middle
    return high


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    return offset if offset is not None else timedelta(0)
