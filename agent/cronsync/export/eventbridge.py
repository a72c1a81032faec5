"""Cron schedules as EventBridge Scheduler ``cron()`` expressions (pure).

EventBridge's grammar: six fields ``minutes hours day-of-month month day-of-week year``;
one of the day fields must be ``?``; day-of-week 1-7 is SUN-SAT (written here as names);
``a/s`` steps from ``a`` to the end of the field. We write only what its documentation
shows (``*``, one value, one ``a-b`` range, ``a/s`` to the end of the field, or a list
of single values), so the meaning cannot drift; the expression may be 256 characters.

A schedule whose days match when EITHER day field does (cron's rule when both are
restricted) becomes two expressions: one on the days of the month, one on the days of
the week that skips, at run time, the days the first already ran (``skip_days``),
so a day matching both runs once, as in cron.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cronsync.core.schedule import CronSchedule, parse_schedule
from cronsync.export.days import DAY_OF_MONTH, DAY_OF_WEEK, EITHER, day_plan
from cronsync.export.refusal import Unexportable

MAX_EXPRESSION = 256
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class EventBridgeCron:
    """One EventBridge schedule expression for a job.

    Attributes:
        expression: ``cron(...)``, six fields.
        part: ``""`` for a job's only schedule; ``"day-of-month"`` or ``"day-of-week"``
            for the two halves of an either-day-field schedule.
        skip_days: days of the month (in the job's zone) on which this schedule's
            target must not run the job, because the day-of-month half ran it.
    """

    expression: str
    part: str = ""
    skip_days: tuple[int, ...] = ()


def eventbridge_crons(text: str) -> tuple[EventBridgeCron, ...]:
    """Translate a cron schedule (as cronsync reads it) into EventBridge expressions.

    Args:
        text: a schedule that ``core.schedule.parse_schedule`` accepts.
    Returns:
        one expression, or two for an either-day-field schedule.
    Raises:
        Unexportable: ``@reboot``; cron's AND of two restricted day fields; an
            expression longer than EventBridge allows.
        ScheduleError: ``text`` is not a valid schedule.
    """
    schedule = parse_schedule(text)
    if schedule.reboot:
        raise Unexportable(
            "@reboot runs when cron starts; EventBridge Scheduler has no start-up event"
        )
    plan = day_plan(schedule)
    dom = _numbers(schedule.days_of_month, 1, 31)
    dow = _weekdays(schedule.days_of_week)
    if plan == EITHER:
        skip = tuple(sorted(schedule.days_of_month))
        return (
            EventBridgeCron(_expression(schedule, dom, "?"), DAY_OF_MONTH),
            EventBridgeCron(_expression(schedule, "?", dow), DAY_OF_WEEK, skip),
        )
    if plan == DAY_OF_MONTH:
        return (EventBridgeCron(_expression(schedule, dom, "?")),)
    if plan == DAY_OF_WEEK:
        return (EventBridgeCron(_expression(schedule, "?", dow)),)
    return (EventBridgeCron(_expression(schedule, "*", "?")),)


def _expression(schedule: CronSchedule, dom: str, dow: str) -> str:
    minutes = _numbers(schedule.minutes, 0, 59)
    hours = _numbers(schedule.hours, 0, 23)
    months = _numbers(schedule.months, 1, 12)
    expression = f"cron({minutes} {hours} {dom} {months} {dow} *)"
    if len(expression) > MAX_EXPRESSION:
        raise Unexportable(
            f"the EventBridge expression would be {len(expression)} characters "
            f"({expression[:60]}...); EventBridge allows {MAX_EXPRESSION}: "
            "simplify the minute or hour lists"
        )
    return expression


def _numbers(values: Iterable[int], low: int, high: int) -> str:
    """``*``, ``v``, ``a-b``, ``a/s`` (from a to the end of the field) or ``v,w,...``."""
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) == 1:
        return str(ordered[0])
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    step = ordered[1] - ordered[0]
    if ordered == list(range(ordered[0], high + 1, step)):
        return f"{ordered[0]}/{step}"
    return ",".join(str(value) for value in ordered)


def _weekdays(values: Iterable[int]) -> str:
    """Cron's 0-6 (Sunday 0) as EventBridge day names: ``MON``, ``MON-FRI``, ``MON,WED``."""
    ordered = sorted(values)
    if len(ordered) == 7:
        return "*"
    if len(ordered) > 1 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{WEEKDAYS[ordered[0]]}-{WEEKDAYS[ordered[-1]]}"
    return ",".join(WEEKDAYS[value] for value in ordered)
