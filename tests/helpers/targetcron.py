"""Independent evaluators of other schedulers' cron semantics, for the export's
exactness tests. They share no code with cronsync's schedule modules: each reads the
exported text the way its scheduler documents (EventBridge) or implements
(Kubernetes: robfig/cron v3's ``SpecSchedule.Next`` with Go's ``time.Date``) it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
_EB_DAYS = {n: i for i, n in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_EB_MONTHS = {
    n: i
    for i, n in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}


# ------------------------------------------------------------------ EventBridge


@dataclass(frozen=True)
class EventBridgeSpec:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: frozenset[int] | None  # None: '?'
    months: frozenset[int]
    dow: frozenset[int] | None  # 1-7 = SUN-SAT; None: '?'


def _eb_value(token: str, names: dict[str, int]) -> int:
    return names[token] if token in names else int(token)


def _eb_field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int] | None:
    if text == "?":
        return None
    values: set[int] = set()
    for item in text.split(","):
        if item == "*":
            values.update(range(low, high + 1))
        elif "/" in item:
            start, step = item.split("/")
            first = low if start == "*" else _eb_value(start, names)
            values.update(range(first, high + 1, int(step)))
        elif "-" in item:
            a, b = item.split("-")
            assert _eb_value(a, names) <= _eb_value(b, names), item  # no wrap-around written
            values.update(range(_eb_value(a, names), _eb_value(b, names) + 1))
        else:
            values.add(_eb_value(item, names))
    assert values and min(values) >= low and max(values) <= high, text
    return frozenset(values)


def parse_eventbridge(expression: str) -> EventBridgeSpec:
    """Read ``cron(min hour dom month dow year)`` as EventBridge documents it."""
    assert expression.startswith("cron(") and expression.endswith(")"), expression
    assert len(expression) <= 256
    fields = expression[5:-1].split(" ")
    assert len(fields) == 6 and fields[5] == "*", expression
    dom = _eb_field(fields[2], 1, 31, {})
    dow = _eb_field(fields[4], 1, 7, _EB_DAYS)
    assert (dom is None) != (dow is None), "exactly one day field must be '?'"
    minutes, hours = _eb_field(fields[0], 0, 59, {}), _eb_field(fields[1], 0, 23, {})
    months = _eb_field(fields[3], 1, 12, _EB_MONTHS)
    assert minutes is not None and hours is not None and months is not None
    return EventBridgeSpec(minutes, hours, dom, months, dow)


def _first_instant(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime | None:
    """The earliest UTC instant showing this wall time in ``zone``; None if it never does
    (AWS: a time skipped by a clock change does not run; one that repeats runs once)."""
    wall = datetime(day.year, day.month, day.day, hour, minute)
    found = []
    for fold in (0, 1):
        offset = wall.replace(tzinfo=zone, fold=fold).utcoffset()
        assert offset is not None
        instant = (wall - offset).replace(tzinfo=UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            found.append(instant)
    return min(found) if found else None


def eventbridge_fires(
    spec: EventBridgeSpec,
    zone: ZoneInfo,
    after: datetime,
    until: datetime,
    skip_days: tuple[int, ...] = (),
) -> Iterator[datetime]:
    """Fire instants (UTC) strictly after ``after`` and before ``until``, ascending;
    a day of the month in ``skip_days`` is dropped (the target's guard)."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    end = until.astimezone(zone).date() + timedelta(days=1)
    while day <= end:
        iso = day.isoweekday() % 7 + 1  # SUN=1 ... SAT=7
        if (
            day.month in spec.months
            and (spec.dom is None or day.day in spec.dom)
            and (spec.dow is None or iso in spec.dow)
            and day.day not in skip_days
        ):
            for hour in sorted(spec.hours):
                for minute in sorted(spec.minutes):
                    instant = _first_instant(day, hour, minute, zone)
                    if instant is not None and after < instant < until:
                        yield instant
        day += timedelta(days=1)


# ------------------------------------------------------------------ Kubernetes (robfig/cron v3)


@dataclass(frozen=True)
class RobfigSpec:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: frozenset[int]
    months: frozenset[int]
    dow: frozenset[int]
    dom_star: bool
    dow_star: bool


def _robfig_field(text: str, low: int, high: int) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for item in text.split(","):
        range_part, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if range_part in ("*", "?"):
            first, last, star_here = low, high, step == 1  # robfig: a step > 1 clears the star bit
        elif "-" in range_part:
            a, b = range_part.split("-")
            first, last, star_here = int(a), int(b), False
        else:
            first = int(range_part)
            last, star_here = (high if step_text else first), False
        assert low <= first <= last <= high, text
        values.update(range(first, last + 1, step))
        star = star or star_here
    return frozenset(values), star


def parse_robfig(schedule: str) -> RobfigSpec:
    """Read a CronJob ``schedule`` (five numeric fields) as robfig/cron's ParseStandard."""
    fields = schedule.split(" ")
    assert len(fields) == 5, schedule
    minutes, _ = _robfig_field(fields[0], 0, 59)
    hours, _ = _robfig_field(fields[1], 0, 23)
    dom, dom_star = _robfig_field(fields[2], 1, 31)
    months, _ = _robfig_field(fields[3], 1, 12)
    dow, dow_star = _robfig_field(fields[4], 0, 6)
    return RobfigSpec(minutes, hours, dom, months, dow, dom_star, dow_star)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def go_date(year: int, month: int, day: int, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """Go's ``time.Date`` (fields may overflow; a skipped or repeated wall time gets the
    offset Go's algorithm picks: the offset in force at the wall time read as UTC, then
    the one at the instant that gives)."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    wall = datetime(year, month, 1, tzinfo=UTC) + timedelta(
        days=day - 1, hours=hour, minutes=minute
    )
    offset = _offset(wall, zone)
    second = _offset(wall - offset, zone)
    return wall - (offset if second == offset else second)


def _day_matches(spec: RobfigSpec, local: datetime) -> bool:
    dom = local.day in spec.dom
    dow = (local.isoweekday() % 7) in spec.dow
    if spec.dom_star or spec.dow_star:
        return dom and dow
    return dom or dow


def robfig_next(spec: RobfigSpec, after: datetime, zone: ZoneInfo) -> datetime | None:
    """robfig/cron v3 ``SpecSchedule.Next`` (seconds field 0), instants in UTC."""
    t = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    added = False
    year_limit = t.astimezone(zone).year + 5
    while True:  # WRAP
        local = t.astimezone(zone)
        if local.year > year_limit:
            return None
        wrapped = False
        while local.month not in spec.months:
            if not added:
                added = True
                t = go_date(local.year, local.month, 1, 0, 0, zone)
                local = t.astimezone(zone)
            t = go_date(local.year, local.month + 1, local.day, local.hour, local.minute, zone)
            local = t.astimezone(zone)
            if local.month == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not _day_matches(spec, local):
            if not added:
                added = True
                t = go_date(local.year, local.month, local.day, 0, 0, zone)
                local = t.astimezone(zone)
            t = go_date(local.year, local.month, local.day + 1, local.hour, local.minute, zone)
            local = t.astimezone(zone)
            if local.hour != 0:  # robfig: "notice if the hour is no longer midnight due to DST"
                if local.hour > 12:
                    t += timedelta(hours=24 - local.hour)
                else:
                    t -= timedelta(hours=local.hour)
                local = t.astimezone(zone)
            if local.day == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while local.hour not in spec.hours:
            if not added:
                added = True
                t = go_date(local.year, local.month, local.day, local.hour, 0, zone)
            t += timedelta(hours=1)
            local = t.astimezone(zone)
            if local.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while local.minute not in spec.minutes:
            if not added:
                added = True
                t = t.replace(second=0)
            t += timedelta(minutes=1)
            local = t.astimezone(zone)
            if local.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue
        if local.second != 0:  # robfig adds seconds one by one until :00, then wraps
            added = True
            t += timedelta(seconds=60 - local.second)
            continue
        return t


def robfig_fires(
    spec: RobfigSpec, zone: ZoneInfo, after: datetime, until: datetime
) -> Iterator[datetime]:
    """What the CronJob controller starts, one ``Next`` after another, before ``until``."""
    t = after
    while True:
        found = robfig_next(spec, t, zone)
        if found is None or found >= until:
            return
        yield found
        t = found
