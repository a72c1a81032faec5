"""Which scheduled occurrence of a job a start belongs to (pure, clock injected).

Hosts of a fleet race for a lease per occurrence (``run_on = "one-host"``), so they must
name the occurrence alike although their clocks differ by up to 30 s and cron starts the
shim a moment after the minute. The occurrence is therefore taken from the schedule, not
from the wall clock: the latest minute at or before ``now`` at which cron, in the job's
zone, fires the schedule, with the DST rule of :func:`cronsync.core.tzrender.is_due`
(a wall time in a spring-forward gap does not exist, a repeated one fires at its first
instant). As epoch seconds it is the same number on every host.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from cronsync.core.schedule import CronSchedule, day_matches
from cronsync.core.tzrender import wall_time

# The sparsest valid schedule (29 February on a given weekday, say) fires at least once
# in 28 years; a wider look finds nothing more.
SEARCH_DAYS = 29 * 366


def latest_occurrence(schedule: CronSchedule, now: datetime, zone: ZoneInfo) -> Optional[datetime]:
    """Return the latest instant at or before ``now`` at which the schedule fires in
    ``zone`` (seconds dropped: a start at 03:30:59 belongs to 03:30).

    Args:
        schedule: a parsed schedule.
        now: an aware datetime (the host's clock).
        zone: the zone the schedule is written in.
    Returns:
        The occurrence, aware, in ``zone``; None for ``@reboot`` (no occurrences to
        share) or when none fired in :data:`SEARCH_DAYS` days.
    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    if schedule.reboot:
        return None
    now_utc = now.astimezone(timezone.utc)
    times = sorted(((h, m) for h in schedule.hours for m in schedule.minutes), reverse=True)
    for day in _days_back(schedule, now.astimezone(zone).date()):
        for hour, minute in times:
            candidate = wall_time(day, hour, minute, zone)
            if candidate is not None and candidate <= now_utc:
                return candidate
    return None


def _days_back(schedule: CronSchedule, first: date) -> Iterator[date]:
    """The days on which the schedule matches, from the day after ``first`` (a zone's
    date can run ahead of the instant's around a DST change) backwards."""
    day = first + timedelta(days=1)
    for _ in range(SEARCH_DAYS):
        if day_matches(schedule, day):
            yield day
        day -= timedelta(days=1)


def occurrence_seconds(occurrence: datetime) -> int:
    """Return an occurrence as whole epoch seconds (what the lease item stores)."""
    return int(occurrence.timestamp())
