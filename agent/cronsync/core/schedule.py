"""Cron schedule expressions exactly as Debian's cron (vixie cron 3.0pl1) reads them.

Pure: parse, validate, match a wall-clock minute, write field values back as cron text.
What Debian cron accepts silently but never runs (reversed ranges, ``0 0 31 2 *``) is an
error here, so a broken schedule fails in review instead of never running.

Elsewhere: when a schedule fires in a time zone (``next_runs``, ``is_due``) and how to
write it in host time live in ``cronsync.core.tzrender``; English in ``cronsync.core.scheduletext``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import NamedTuple

from cronsync.core.errors import ScheduleError
from cronsync.core.macros import MACROS, REBOOT, unknown_macro_message

FULL_HOURS = frozenset(range(24))
FULL_DAYS_OF_MONTH = frozenset(range(1, 32))
FULL_MONTHS = frozenset(range(1, 13))
FULL_DAYS_OF_WEEK = frozenset(range(7))

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years count


_ITEM = re.compile(
    r"(?P<base>\*|(?P<first>[0-9]+|[A-Za-z]+)(?:-(?P<last>[0-9]+|[A-Za-z]+))?)(?:/(?P<step>.*))?"
)
_QUARTZ = re.compile(r"[0-9]*L|[0-9]+W|LW|L-[0-9]+", re.IGNORECASE)


class _Field(NamedTuple):
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    names_hint: str


_FIELDS = (
    _Field("minute", 0, 59, {}, ""),
    _Field("hour", 0, 23, {}, ""),
    _Field("day-of-month", 1, 31, {}, ""),
    _Field("month", 1, 12, {n: i for i, n in enumerate(_MONTHS, 1)}, "jan-dec or 1-12"),
    _Field("day-of-week", 0, 7, {n: i for i, n in enumerate(_DAYS)}, "sun-sat or 0-7"),
)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron schedule: the sets of values each field matches.

    ``dom_restricted``/``dow_restricted`` are False when the field text starts with ``*``
    (cron's DOM_STAR/DOW_STAR flags); they decide the day rule, see ``day_rule``.
    """

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool
    reboot: bool = False

    def fields(self) -> tuple[str, str, str, str, str]:
        """Return the 5 field texts as written to a crontab (macros expanded).

        Raises:
            ScheduleError: for ``@reboot``, which has no time fields.
        """
        if self.reboot:
            raise ScheduleError("@reboot has no time fields")
        parts = MACROS.get(self.text, self.text).split()
        return (parts[0], parts[1], parts[2], parts[3], parts[4])


@dataclass(frozen=True)
class HostRendering:
    """Cron time specs in host time for a job scheduled in another zone.

    ``exact`` False means the lines fire at least whenever the job is due and the shim
    must gate with ``is_due``/``matches`` in the job's zone.
    """

    lines: tuple[str, ...]
    exact: bool


def parse_schedule(text: str) -> CronSchedule:
    """Parse a 5-field cron schedule or a macro (``@daily``, ``@reboot``, ...).

    Args:
        text: the schedule as written; surrounding blanks are ignored.
    Returns:
        the parsed schedule (``text`` holds the stripped input).
    Raises:
        ScheduleError: the schedule is malformed, out of range, uses syntax Debian cron
            does not know, or can never fire; the message names the field.
    """
    _check_characters(text)
    stripped = text.strip()
    if not stripped:
        raise ScheduleError("schedule is empty: write 5 fields like '30 3 * * *' or '@daily'")
    if stripped.startswith("@"):
        return _parse_macro(stripped)
    parts = stripped.split()
    if len(parts) != 5:
        raise ScheduleError(_field_count_message(len(parts)))
    sets = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS)]
    schedule = CronSchedule(
        text=stripped,
        minutes=sets[0],
        hours=sets[1],
        days_of_month=sets[2],
        months=sets[3],
        days_of_week=frozenset(d % 7 for d in sets[4]),
        dom_restricted=not parts[2].startswith("*"),
        dow_restricted=not parts[4].startswith("*"),
    )
    _check_fires(schedule, parts)
    return schedule


def _check_characters(text: str) -> None:
    for char in text:
        code = ord(char)
        if code < 32 or 127 <= code < 160:
            what = {9: "a tab", 10: "a line break", 13: "a carriage return"}.get(code, "")
            raise ScheduleError(
                f"schedule contains a control character ({what or f'U+{code:04X}'}); "
                "write it on one line with plain spaces between the fields"
            )
        if code > 126:
            raise ScheduleError(
                f"schedule contains the non-ASCII character {char!r} (U+{code:04X}); "
                "use plain digits, names and spaces"
            )


def _parse_macro(text: str) -> CronSchedule:
    name, *rest = text.split()
    if name != REBOOT and name not in MACROS:
        raise ScheduleError(unknown_macro_message(name, rest))
    if rest:
        raise ScheduleError(f"{name} stands alone in a schedule; remove {' '.join(rest)!r}")
    if name == REBOOT:
        empty: frozenset[int] = frozenset()
        return CronSchedule(name, empty, empty, empty, empty, empty, False, False, reboot=True)
    return replace(parse_schedule(MACROS[name]), text=name)


def _field_count_message(count: int) -> str:
    message = f"expected 5 fields (minute hour day-of-month month day-of-week), got {count}"
    if count > 5:
        message += "; a user, a command, seconds or years do not belong in the schedule"
    return message


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"{spec.name}: empty item in the list {text!r}")
        values.update(_parse_item(item, spec))
    return frozenset(values)


def _parse_item(item: str, spec: _Field) -> range:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise ScheduleError(_bad_item_message(item, spec))
    raw_step = match.group("step")
    step = 1 if raw_step is None else _parse_step(raw_step, item, spec)
    if match.group("base") == "*":
        return range(spec.low, spec.high + 1, step)
    low = _parse_value(match.group("first"), spec)
    if match.group("last") is None:
        if raw_step is not None:
            raise ScheduleError(
                f"{spec.name}: {item!r} (a step after a single value) is not valid in Debian "
                f"cron; write '{match.group('first')}-{spec.high}/{raw_step}'"
            )
        return range(low, low + 1)
    high = _parse_value(match.group("last"), spec)
    if high < low:
        raise ScheduleError(_reversed_message(item, low, high, spec))
    return range(low, high + 1, step)


def _bad_item_message(item: str, spec: _Field) -> str:
    if "#" in item:
        return f"{spec.name}: '#' (nth weekday) in {item!r} is not supported by Debian cron"
    if "?" in item:
        return f"{spec.name}: '?' is not supported by Debian cron; write '*'"
    if _QUARTZ.fullmatch(item):
        return (
            f"{spec.name}: {item!r} uses 'L'/'W' (last day, nearest weekday), which Debian "
            "cron does not support"
        )
    names = f" or names ({spec.names_hint})" if spec.names else ""
    return f"{spec.name}: cannot read {item!r}; use *, N, N-M, */S, N-M/S or a list{names}"


def _parse_step(raw: str, item: str, spec: _Field) -> int:
    if not raw.isdigit() or not raw.isascii():
        raise ScheduleError(f"{spec.name}: the step in {item!r} must be a positive number")
    step = _small_int(raw, spec)
    if step == 0:
        raise ScheduleError(f"{spec.name}: step 0 in {item!r} is not allowed (cron rejects it)")
    return step


def _small_int(digits: str, spec: _Field) -> int:
    """int() of ASCII digits; int() refuses over 4300 digits, no field needs over 9."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > 9:
        raise ScheduleError(
            f"{spec.name}: {significant[:9]}... ({len(significant)} digits) is too large"
        )
    return int(significant)


def _parse_value(token: str, spec: _Field) -> int:
    if token.isdigit():
        value = _small_int(token, spec)
    elif not spec.names:
        raise ScheduleError(f"{spec.name}: {token!r} is not a number")
    elif token.lower() in spec.names:
        return spec.names[token.lower()]
    else:
        close = difflib.get_close_matches(token.lower(), list(spec.names), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ScheduleError(f"{spec.name}: unknown name {token!r} ({hint}use {spec.names_hint})")
    if not spec.low <= value <= spec.high:
        raise ScheduleError(f"{spec.name}: {value} is out of range {spec.low}-{spec.high}")
    return value


def _reversed_message(item: str, low: int, high: int, spec: _Field) -> str:
    if spec.name == "day-of-week" and high == 0:
        fix = f"{low}-7 (7 is Sunday too)"
    else:
        top = 6 if spec.name == "day-of-week" else spec.high
        fix = ",".join(f"{a}-{b}" if a < b else str(a) for a, b in ((low, top), (spec.low, high)))
    return (
        f"{spec.name}: reversed range {item!r} ({low}-{high}) never matches in cron "
        f"(it is accepted and silently never runs); write {fix}"
    )


def _check_fires(schedule: CronSchedule, parts: list[str]) -> None:
    if day_rule(schedule) == "or":
        return  # any restricted day of the week occurs in every month
    if any(day <= _MAX_DAYS[m - 1] for m in schedule.months for day in schedule.days_of_month):
        return  # every valid date falls on each weekday in some year
    raise ScheduleError(
        f"day-of-month: {parts[2]!r} never occurs in month {parts[3]!r}, so the schedule "
        "never fires"
    )


def day_rule(schedule: CronSchedule) -> str:
    """Classify how cron matches the day of a schedule.

    Args:
        schedule: a parsed schedule.
    Returns:
        ``"all"`` when every day matches (months aside), ``"or"`` when day-of-month OR
        day-of-week must match (both fields restricted, vixie's rule), else ``"and"``.
    """
    dom_full = schedule.days_of_month == FULL_DAYS_OF_MONTH
    dow_full = schedule.days_of_week == FULL_DAYS_OF_WEEK
    if schedule.dom_restricted and schedule.dow_restricted:
        return "all" if dom_full or dow_full else "or"
    return "all" if dom_full and dow_full else "and"


def day_matches(schedule: CronSchedule, day: date) -> bool:
    """Tell whether cron runs the schedule on ``day`` (month and vixie's dom/dow rule).

    Args:
        schedule: a parsed schedule. day: a calendar date.
    Returns:
        True when the month matches and the day does.
    """
    if day.month not in schedule.months:
        return False
    dom_ok = day.day in schedule.days_of_month
    dow_ok = day.isoweekday() % 7 in schedule.days_of_week
    if schedule.dom_restricted and schedule.dow_restricted:
        return dom_ok or dow_ok
    return dom_ok and dow_ok


def matches(schedule: CronSchedule, when: datetime) -> bool:
    """Tell whether the schedule matches the wall-clock minute of ``when``.

    Args:
        schedule: a parsed schedule.
        when: naive or aware; only its wall-clock fields are compared (no conversion).
    Returns:
        True when minute, hour, month and day (vixie's dom/dow rule) all match;
        always False for ``@reboot``.
    """
    if schedule.reboot:
        return False
    return (
        when.minute in schedule.minutes
        and when.hour in schedule.hours
        and day_matches(schedule, when.date())
    )


def format_field(values: Iterable[int], low: int, high: int, *, star_when_full: bool = True) -> str:
    """Write a set of field values as compact canonical cron text.

    Args:
        values: the values (not empty).
        low: the field's lowest value. high: its highest value.
        star_when_full: write ``*`` when every value from low to high is present.
    Returns:
        ``*``, a stepped range ``a-b/s`` for 5+ evenly spaced values, or a comma list of
        numbers and ``a-b`` runs (3+ consecutive values), ascending.
    Raises:
        ValueError: ``values`` is empty.
    """
    ordered = sorted(set(values))
    if not ordered:
        raise ValueError("a cron field needs at least one value")
    if star_when_full and ordered == list(range(low, high + 1)):
        return "*"
    steps = {b - a for a, b in zip(ordered, ordered[1:])}
    if len(ordered) >= 5 and len(steps) == 1 and min(steps) > 1:
        return f"{ordered[0]}-{ordered[-1]}/{min(steps)}"
    return ",".join(_runs(ordered))


def _runs(ordered: list[int]) -> Iterator[str]:
    start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        if prev - start >= 2:
            yield f"{start}-{prev}"
        else:
            yield from (str(v) for v in range(start, prev + 1))
        if value is not None:
            start = prev = value
