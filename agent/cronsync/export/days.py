"""Which day fields a cron schedule really restricts, in the terms other schedulers use.

Debian cron's rule (``core.schedule.day_rule``): when both day fields are written
restricted (neither starts with ``*``) a day matches if EITHER does; otherwise both must
match. Other schedulers match one day field, or either; a schedule whose two day fields
both restrict under cron's AND rule (``*/2`` day-of-month with ``mon``) has no exact
translation there.
"""

from __future__ import annotations

from cronsync.core.schedule import (
    FULL_DAYS_OF_MONTH,
    FULL_DAYS_OF_WEEK,
    CronSchedule,
    day_rule,
)
from cronsync.export.refusal import Unexportable

EVERY_DAY = "every-day"
DAY_OF_MONTH = "day-of-month"
DAY_OF_WEEK = "day-of-week"
EITHER = "either"


def day_plan(schedule: CronSchedule) -> str:
    """Classify the days a schedule runs on (months aside).

    Args:
        schedule: a parsed schedule, not ``@reboot``.
    Returns:
        ``EVERY_DAY``; ``DAY_OF_MONTH`` or ``DAY_OF_WEEK`` when only that field
        restricts; ``EITHER`` when a day matches if either field does.
    Raises:
        Unexportable: both fields restrict and cron requires both to match.
    """
    rule = day_rule(schedule)
    if rule == "all":
        return EVERY_DAY
    if rule == "or":
        return EITHER
    dom_full = schedule.days_of_month == FULL_DAYS_OF_MONTH
    dow_full = schedule.days_of_week == FULL_DAYS_OF_WEEK
    if dow_full:
        return DAY_OF_MONTH
    if dom_full:
        return DAY_OF_WEEK
    fields = schedule.fields()
    raise Unexportable(
        f"cron runs this schedule only on days matching BOTH day-of-month {fields[2]!r} "
        f"and day-of-week {fields[4]!r} (at least one starts with '*'); the target "
        "matches one day field or either, never both"
    )
