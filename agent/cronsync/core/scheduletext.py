"""Cron schedules in English for people: descriptions.

Pure. ``describe`` names the times, then the days (by cron's day rule: when both day
fields are restricted, a day matching either one runs), then the months, e.g.
"every 15 minutes from 09:00 to 17:45 on Monday through Friday". The advice for a macro
cron does not know is :mod:`cronsync.core.macros`'.
"""

from __future__ import annotations

from collections.abc import Sequence

from cronsync.core.schedule import (
    FULL_DAYS_OF_MONTH,
    FULL_DAYS_OF_WEEK,
    FULL_HOURS,
    FULL_MONTHS,
    CronSchedule,
    day_rule,
)

_MONTH_WORDS: tuple[str, ...] = ("January", "February", "March", "April", "May", "June")
_MONTH_WORDS += ("July", "August", "September", "October", "November", "December")
_DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_LISTED_TIMES = 4  # up to this many times of day are listed even when they have a pattern
_LISTED_HOURS = 8  # ... and up to this many hours at one minute when they have none
_MAX_WINDOWS = 3  # "every minute from 09:00 to 09:59 and from 17:00 to 17:59"


def describe(schedule: CronSchedule) -> str:
    """Describe a schedule in short English, best effort (for reports).

    Args:
        schedule: a parsed schedule (every field set non-empty unless ``reboot``).
    Returns:
        e.g. "at 03:30 every day", "every 15 minutes", "at 09:00 on Monday through
        Friday", "at 00:00 on January 1", "at boot" for ``@reboot``. Never raises.
    """
    if schedule.reboot:
        return "at boot"
    time_text, daily = _describe_time(schedule)
    rule = day_rule(schedule)
    restricted_months = schedule.months != FULL_MONTHS
    if rule == "and" and schedule.days_of_week == FULL_DAYS_OF_WEEK and restricted_months:
        return f"{time_text} {_dates(schedule)}"  # "on day 1 of January and July"
    day_text = _describe_days(schedule, rule) or ("every day" if daily else "")
    month_text = "in " + _month_names(schedule.months) if restricted_months else ""
    return " ".join(part for part in (time_text, day_text, month_text) if part)


def _describe_time(schedule: CronSchedule) -> tuple[str, bool]:
    """Return the times of day and whether "every day" reads well after them."""
    minutes, hours = sorted(schedule.minutes), sorted(schedule.hours)
    if schedule.hours == FULL_HOURS:
        return _every_hour(minutes), False
    times = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
    if len(times) <= _LISTED_TIMES:
        return "at " + _join(times), True
    hour_step = _step_from_zero(hours, 24)
    if hour_step and len(minutes) == 1:
        at = f" at minute {minutes[0]}" if minutes[0] else ""
        return f"every {hour_step} hours{at}", False
    stepped = _step(hours)
    if stepped and len(minutes) == 1:
        first, last = f"{hours[0]:02d}:{minutes[0]:02d}", f"{hours[-1]:02d}:{minutes[0]:02d}"
        return f"every {stepped} hours from {first} to {last}", True
    windows = _windows(minutes, hours)
    if windows:
        return windows, True
    if len(minutes) == 1 and len(hours) <= _LISTED_HOURS:
        return "at " + _join(times), True
    return f"{_minutes_in_hour(minutes)} {_field_phrase(hours, 'hour')}", True


def _every_hour(minutes: list[int]) -> str:
    """Minutes that run in every hour: "every minute", "every 15 minutes", ..."""
    if len(minutes) == 60:
        return "every minute"
    step = _step_from_zero(minutes, 60)
    if step:
        return f"every {step} minutes"
    if minutes == [0]:
        return "every hour"
    return f"every hour at {_field_phrase(minutes, 'minute')}"


def _minutes_in_hour(minutes: list[int]) -> str:
    """Minutes before a list of hours: "every minute during", "at minutes 5–10 past"."""
    if len(minutes) == 60:
        return "every minute during"
    step = _step_from_zero(minutes, 60)
    if step:
        return f"every {step} minutes during"
    return f"at {_field_phrase(minutes, 'minute')} past"


def _windows(minutes: list[int], hours: list[int]) -> str | None:
    """Runs of consecutive hours as time windows, or None when that reads badly.

    "every minute from 04:00 to 04:59", "every 15 minutes from 09:00 to 17:45",
    "every hour from 09:30 to 17:30 and from 20:30 to 22:30".
    """
    runs = _consecutive(hours)
    if len(runs) > _MAX_WINDOWS:
        return None
    step = 1 if len(minutes) == 60 else _step_from_zero(minutes, 60)
    if step:
        lead, first, last = ("every minute" if step == 1 else f"every {step} minutes"), 0, 60 - step
    elif len(minutes) == 1 and all(len(run) > 1 for run in runs):
        lead, first, last = "every hour", minutes[0], minutes[0]
    else:
        return None
    spans = [f"from {run[0]:02d}:{first:02d} to {run[-1]:02d}:{last:02d}" for run in runs]
    return f"{lead} {_join(spans)}"


def _describe_days(schedule: CronSchedule, rule: str) -> str:
    """The days of the month and week, by cron's day rule ("" for every day)."""
    doms = f"on {_field_phrase(sorted(schedule.days_of_month), 'day')} of the month"
    weekdays = _weekday_names(schedule.days_of_week)
    if rule == "all":
        return ""
    if rule == "or":  # cron runs on a day that matches either field
        return f"{doms} and on every {_join(weekdays)}"
    if schedule.days_of_week == FULL_DAYS_OF_WEEK:
        return doms
    if schedule.days_of_month == FULL_DAYS_OF_MONTH:
        return "on " + _join(weekdays)
    falls = f"a {weekdays[0]}" if len(schedule.days_of_week) == 1 else _join(weekdays, "or")
    return f"{doms} when it falls on {falls}"


def _dates(schedule: CronSchedule) -> str:
    """Days of the month in some months: "on January 1", "on days 1–7 of March"."""
    days, months = sorted(schedule.days_of_month), sorted(schedule.months)
    if len(days) == 1 and len(months) == 1:
        return f"on {_MONTH_WORDS[months[0] - 1]} {days[0]}"
    return f"on {_field_phrase(days, 'day')} of {_month_names(schedule.months)}"


def _month_names(months: frozenset[int]) -> str:
    return _join(_word_runs(sorted(months), _MONTH_WORDS, 1))


def _weekday_names(days: frozenset[int]) -> list[str]:
    return _word_runs(sorted(days, key=lambda d: (d - 1) % 7), _DAY_WORDS, 0)  # Monday first


def _field_phrase(values: list[int], unit: str) -> str:
    """Name field values: "hour 4", "minutes 5–10", "days 1, 3, 5, …, 31"."""
    if len(values) == 1:
        return f"{unit} {values[0]}"
    return f"{unit}s {_numbers(values)}"


def _numbers(values: list[int]) -> str:
    """List ascending numbers: "0 and 30", "1–5, 10 and 20–25", "0, 7, 14, …, 56"."""
    if len(values) >= 5 and _step(values):
        return ", ".join(str(v) for v in values[:3]) + f", …, {values[-1]}"
    return _join([str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in _runs(values)])


def _runs(values: list[int]) -> list[list[int]]:
    """Split into runs of 3+ consecutive values and single values."""
    out: list[list[int]] = []
    for run in _consecutive(values):
        out.extend([run] if len(run) >= 3 else [[v] for v in run])
    return out


def _consecutive(values: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][-1] + 1 == value:
            runs[-1].append(value)
        else:
            runs.append([value])
    return runs


def _step(values: list[int]) -> int | None:
    """The common difference of 3+ evenly spaced values, when over 1."""
    steps = {b - a for a, b in zip(values, values[1:])}
    return steps.pop() if len(values) >= 3 and len(steps) == 1 and min(steps) > 1 else None


def _step_from_zero(values: list[int], size: int) -> int | None:
    """The step of ``*/step`` when the values are exactly that and it divides ``size``."""
    if len(values) < 2 or size % values[1] or values != list(range(0, size, values[1])):
        return None
    return values[1]


def _word_runs(values: list[int], words: tuple[str, ...], first: int) -> list[str]:
    """Name the values; 3+ consecutive ones (in the given order) become 'X through Y'."""
    groups: list[list[int]] = []
    for value in values:
        if groups and (groups[-1][-1] + 1 - first) % len(words) == value - first:
            groups[-1].append(value)
        else:
            groups.append([value])
    out: list[str] = []
    for group in groups:
        names = [words[v - first] for v in group]
        out.extend([f"{names[0]} through {names[-1]}"] if len(names) >= 3 else names)
    return out


def _join(items: Sequence[str], last: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {last} " + items[-1]
