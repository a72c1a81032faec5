"""Time zones: when a schedule fires in a zone, and how to say it in the host's zone.

``next_runs``/``is_due`` evaluate a schedule in its own zone. DST: a wall-clock time that
does not exist that day (spring forward) is skipped; one that occurs twice (fall back)
fires once, at its first occurrence.

Debian cron ignores ``CRON_TZ`` and reads every line in host time. A job's schedule in
its own zone is shifted by the difference between the two zones' UTC offsets:

* the same offset all the time (same zone, ``UTC`` vs ``Etc/UTC``): the job's own fields;
* one constant difference: an exact shift, unless it moves some times across a day
  boundary that cron fields cannot follow (a restricted day-of-month or month: 08:00 on
  the 1st in Tokyo is 23:00 on the last day of the previous month in UTC) or needs more
  than ``MAX_LINES`` lines;
* otherwise (DST on either side, or no exact shift): a covering -- lines that fire at
  every host minute at which the job can be due, and more; the shim gates with
  ``tzrender.is_due`` in the job's zone.

Offsets are sampled from a window of whole years around ``now`` (the year before to two
years after), so the result depends on ``now``'s year only and is cached.

Known limit: when the *host* zone has DST, Debian cron runs fixed-time lines once in the
repeated hour, so a job due at the second occurrence of a host wall time can be missed.
Hosts should run in UTC.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import (
    FULL_DAYS_OF_MONTH,
    FULL_MONTHS,
    CronSchedule,
    HostRendering,
    day_matches,
    day_rule,
    format_field,
    matches,
)

MAX_LINES = 4
_SEARCH_YEARS = 400  # the Gregorian calendar repeats after 400 years
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# host hour -> host minutes, for one day offset (host date minus job date)
HourMinutes = dict[int, set[int]]


def render_in_host_time(
    schedule: CronSchedule, job_zone: str, host_zone: str, now: datetime
) -> HostRendering:
    """Render ``schedule``, written for ``job_zone``, as cron lines in ``host_zone`` time.

    Args:
        schedule: a parsed schedule.
        job_zone: IANA name of the zone the schedule is written for.
        host_zone: IANA name of the zone the host's cron runs in.
        now: the current time (naive is taken as UTC); only its year is used.
    Returns:
        the lines (5-field time specs, or ``@reboot``) and whether they are exact.
    Raises:
        ScheduleError: a zone name is unknown.
    """
    if schedule.reboot:
        return HostRendering(("@reboot",), exact=True)
    year = (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).year
    deltas = offset_deltas(job_zone, host_zone, year)
    if deltas == (0,):
        return HostRendering((" ".join(schedule.fields()),), exact=True)
    if len(deltas) == 1:
        lines = _exact_lines(schedule, deltas[0])
        if lines is not None:
            return HostRendering(lines, exact=True)
    return HostRendering(_covering_lines(schedule, deltas), exact=False)


def is_due(schedule: CronSchedule, when: datetime, zone: ZoneInfo) -> bool:
    """Tell whether cron in ``zone`` fires the schedule in the minute of instant ``when``.

    Unlike ``matches`` this applies the DST rule: in a repeated hour only the first
    occurrence of a wall-clock time fires.

    Args:
        schedule: a parsed schedule.
        when: an aware datetime.
        zone: the zone the schedule is written for.
    Returns:
        True when the job is due.
    Raises:
        ValueError: ``when`` is naive.
    """
    _require_aware(when, "when")
    local = when.astimezone(zone)
    return local.fold == 0 and matches(schedule, local)


def next_runs(
    schedule: CronSchedule, after: datetime, count: int, zone: ZoneInfo
) -> list[datetime]:
    """List the next times cron in ``zone`` fires the schedule, strictly after ``after``.

    Walks matching days and only their listed hours and minutes, so sparse schedules are
    cheap. DST: wall-clock times that do not exist are skipped, repeated ones fire once
    (first occurrence).

    Args:
        schedule: a parsed schedule.
        after: an aware datetime.
        count: how many runs to return (0 or less gives ``[]``).
        zone: the zone the schedule is written for.
    Returns:
        up to ``count`` aware datetimes in ``zone``, ascending; ``[]`` for ``@reboot``.
    Raises:
        ValueError: ``after`` is naive.
    """
    _require_aware(after, "after")
    runs: list[datetime] = []
    if schedule.reboot or count <= 0:
        return runs
    # compare instants in UTC: datetimes sharing a tzinfo compare by wall time, folds ignored
    after_utc = after.astimezone(timezone.utc)
    times = sorted((h, m) for h in schedule.hours for m in schedule.minutes)
    for day in _matching_days(schedule, after.astimezone(zone).date()):
        for hour, minute in times:
            candidate = wall_time(day, hour, minute, zone)
            if candidate is not None and candidate > after_utc:
                runs.append(candidate)
                if len(runs) == count:
                    return runs
    return runs


def _require_aware(when: datetime, name: str) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def _matching_days(schedule: CronSchedule, first: date) -> Iterator[date]:
    day, end = first, first.replace(year=min(first.year + _SEARCH_YEARS, 9999), day=1)
    while day < end:
        if day.month not in schedule.months:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            continue
        if day_matches(schedule, day):
            yield day
        day += timedelta(days=1)


def wall_time(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime | None:
    """The first instant showing this wall-clock time in ``zone``; None in a DST gap."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    back = local.astimezone(timezone.utc).astimezone(zone)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return local


def load_zone(name: str) -> ZoneInfo:
    """Look up an IANA time zone.

    Args:
        name: e.g. ``"Asia/Tokyo"``.
    Returns:
        the zone.
    Raises:
        ScheduleError: no such zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(f"timezone: unknown time zone {name!r}") from exc


@functools.lru_cache(maxsize=1024)
def offset_deltas(job_zone: str, host_zone: str, year: int) -> tuple[int, ...]:
    """Every difference (host UTC offset - job UTC offset, in minutes) around ``year``.

    Args:
        job_zone: IANA zone name of the job. host_zone: that of the host.
        year: the window is January 1 of ``year - 1`` up to January 1 of ``year + 3``.
    Returns:
        the distinct differences, ascending.
    Raises:
        ScheduleError: a zone name is unknown.
    """
    job, host = load_zone(job_zone), load_zone(host_zone)
    instants = {_minutes_since_epoch(year - 1)}
    for each in range(year - 1, year + 3):
        instants.update(_offset_changes(job_zone, each))
        instants.update(_offset_changes(host_zone, each))
    return tuple(sorted({zone_offset(host, t) - zone_offset(job, t) for t in instants}))


@functools.lru_cache(maxsize=512)
def _offset_changes(zone_name: str, year: int) -> tuple[int, ...]:
    """Minutes since the epoch at which the zone's UTC offset changes during ``year``."""
    zone = load_zone(zone_name)
    start, end = _minutes_since_epoch(year), _minutes_since_epoch(year + 1)
    changes: list[int] = []
    before, offset = start, zone_offset(zone, start)
    for at in range(start + 60, end + 1, 60):  # hourly; then bisect to the minute
        if zone_offset(zone, at) != offset:
            changes.append(first_offset_change(zone, before, at, offset))
            offset = zone_offset(zone, at)
        before = at
    return tuple(changes)


def first_offset_change(zone: ZoneInfo, low: int, high: int, offset: int) -> int:
    """The first minute since the epoch in (low, high] at which ``zone``'s UTC offset is
    no longer ``offset`` (minutes); ``high`` when the change is there or not found."""
    while high - low > 1:
        middle = (low + high) // 2
        if zone_offset(zone, middle) == offset:
            low = middle
        else:
            high = middle
    return high


def _minutes_since_epoch(year: int) -> int:
    return int((datetime(year, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()) // 60


def zone_offset(zone: ZoneInfo, minute: int) -> int:
    """``zone``'s UTC offset in minutes at a UTC minute since the epoch."""
    offset = datetime.fromtimestamp(minute * 60, zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return int(offset.total_seconds()) // 60


def _shift(schedule: CronSchedule, deltas: Iterable[int]) -> dict[int, HourMinutes]:
    """Host times of the job's times: day offset -> host hour -> host minutes."""
    grid: dict[int, HourMinutes] = {}
    for delta in deltas:
        hour_shift, minute_shift = divmod(delta, 60)
        by_carry: dict[int, set[int]] = {}
        for minute in schedule.minutes:
            carry, shifted = divmod(minute + minute_shift, 60)
            by_carry.setdefault(carry, set()).add(shifted)
        for carry, minutes in by_carry.items():
            for hour in schedule.hours:
                day, host_hour = divmod(hour + hour_shift + carry, 24)
                grid.setdefault(day, {}).setdefault(host_hour, set()).update(minutes)
    return grid


def _merge(grids: Iterable[HourMinutes]) -> HourMinutes:
    merged: HourMinutes = {}
    for grid in grids:
        for hour, minutes in grid.items():
            merged.setdefault(hour, set()).update(minutes)
    return merged


def _products(grid: HourMinutes) -> list[tuple[frozenset[int], frozenset[int]]]:
    """Split the (hour, minute) pairs into few disjoint (hours x minutes) products."""
    by_minutes: dict[frozenset[int], set[int]] = {}
    by_hours: dict[frozenset[int], set[int]] = {}
    hours_of: dict[int, set[int]] = {}
    for hour, minutes in grid.items():
        by_minutes.setdefault(frozenset(minutes), set()).add(hour)
        for minute in minutes:
            hours_of.setdefault(minute, set()).add(hour)
    for minute, hours in hours_of.items():
        by_hours.setdefault(frozenset(hours), set()).add(minute)
    per_hour = [(frozenset(hours), minutes) for minutes, hours in by_minutes.items()]
    per_minute = [(hours, frozenset(minutes)) for hours, minutes in by_hours.items()]
    best = per_minute if len(per_minute) < len(per_hour) else per_hour
    return sorted(best, key=lambda product: (sorted(product[0]), sorted(product[1])))


def _lines(grid: HourMinutes, days: str) -> list[str]:
    return [_line(hours, minutes, days) for hours, minutes in _products(grid)]


def _line(hours: Iterable[int], minutes: Iterable[int], days: str) -> str:
    return f"{format_field(minutes, 0, 59)} {format_field(hours, 0, 23)} {days}"


def _own_days(schedule: CronSchedule) -> str:
    return " ".join(schedule.fields()[2:])


def _exact_lines(schedule: CronSchedule, delta: int) -> tuple[str, ...] | None:
    """Lines firing exactly at the shifted times, or None when cron cannot say it."""
    grid = _shift(schedule, (delta,))
    if set(grid) == {0}:
        lines = _lines(grid[0], _own_days(schedule))
    elif schedule.months != FULL_MONTHS:
        return None
    elif day_rule(schedule) == "all":
        lines = _lines(_merge(grid.values()), "* * *")
    elif day_rule(schedule) == "and" and schedule.days_of_month == FULL_DAYS_OF_MONTH:
        lines = []
        for day in sorted(grid):
            weekdays = {(weekday + day) % 7 for weekday in schedule.days_of_week}
            lines += _lines(grid[day], f"* * {format_field(weekdays, 0, 6)}")
    else:
        return None
    return tuple(lines) if len(lines) <= MAX_LINES else None


def _covering_lines(schedule: CronSchedule, deltas: Iterable[int]) -> tuple[str, ...]:
    grid = _shift(schedule, deltas)
    offsets = set(grid)
    days = _own_days(schedule) if offsets == {0} else _covering_days(schedule, offsets)
    merged = _merge(grid.values())
    lines = _lines(merged, days)
    if len(lines) > MAX_LINES:
        minutes = {minute for hour_minutes in merged.values() for minute in hour_minutes}
        lines = [_line(set(merged), minutes, days)]
    return tuple(lines)


def _covering_days(schedule: CronSchedule, offsets: set[int]) -> str:
    """Day fields matching every host day on which the job can be due (and more)."""
    rule = day_rule(schedule)
    doms, wraps = _shift_days_of_month(schedule.days_of_month, offsets)
    months = set(schedule.months)
    if rule != "and" or wraps:
        steps = {(day > 0) - (day < 0) for day in offsets}  # a day or two moves a month at most
        months.update((month - 1 + step) % 12 + 1 for month in schedule.months for step in steps)
    month_text = format_field(months, 1, 12)
    weekdays = {(weekday + day) % 7 for weekday in schedule.days_of_week for day in offsets}
    if rule == "all" or (rule == "or" and (doms == FULL_DAYS_OF_MONTH or len(weekdays) == 7)):
        return f"* {month_text} *"
    # "and" stays "and" when a side is '*'; two restricted covers turn it into "or",
    # which matches more days and so still covers
    return f"{format_field(doms, 1, 31)} {month_text} {format_field(weekdays, 0, 6)}"


def _shift_days_of_month(days: Iterable[int], offsets: set[int]) -> tuple[set[int], bool]:
    """Host days of month for job days moved by ``offsets``; True if a month can change."""
    shifted: set[int] = set()
    wraps = False
    for day in days:
        for offset in offsets:
            for length in range(max(day, 28), 32):  # every length of the job's month
                moved = day + offset
                if moved > length:
                    shifted.add(moved - length)
                elif moved >= 1:
                    shifted.add(moved)
                else:  # into the previous month, of any length
                    shifted.update(moved + previous for previous in range(28, 32))
                wraps = wraps or not 1 <= moved <= length
    return shifted, wraps
