"""How long a job may go without a success before it is stale (pure).

A job's ``success.within`` says it. Without one, the window comes from the schedule
(worked out when a sync compiles ``jobs.json``, stored there as ``stale_window``):

    longest gap between two runs + timeout + jitter + margin

* the longest gap: between two consecutive runs in the job's zone, over the calendar
  year of the sync and the next (so the next twelve months from any day of that year,
  DST days included: :mod:`cronsync.core.schedulegap`);
* the timeout: a run may end that much after it starts (none: nothing added, and a run
  that outlasts the margin makes the job stale, which a hanging job is);
* the jitter: a run may start that much late;
* the margin: 10 % of the gap, at least ``MARGIN_MIN`` (cron starts a job a few seconds
  into its minute, the run's record is written after it, and the alarm looks every 5
  minutes: a per-minute job must not flap) and at most ``MARGIN_MAX`` (beyond the start,
  the timeout and the jitter nothing makes a run later, so a monthly job need not wait
  3 more days before it is called stale).

``@reboot`` jobs have no schedule window (they run when the host starts, never again).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional

from cronsync.core.schedule import parse_schedule
from cronsync.core.schedulegap import longest_gap_minutes

MARGIN_SHARE = 10  # per cent of the gap
MARGIN_MIN = 300  # seconds
MARGIN_MAX = 3600  # seconds
WITHIN = "within"
SCHEDULE = "schedule"


def window_years(now: datetime) -> tuple[date, date]:
    """The days the gap is looked for: 1 January of ``now``'s year (UTC) to 1 January two
    years later (excluded). A release built in one year keeps the same windows."""
    year = (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).year
    return date(year, 1, 1), date(year + 2, 1, 1)


def schedule_window(
    schedule: str, zone: str, timeout: Optional[int], jitter: int, now: datetime
) -> Optional[dict[str, Any]]:
    """The window a schedule gives (``stale_window`` with source ``schedule``).

    Args:
        schedule: the job's schedule text (already validated). zone: its IANA zone.
        timeout: the job's timeout in seconds, or None. jitter: its jitter in seconds.
        now: the sync's moment (only its year counts, see ``window_years``).
    Returns:
        {seconds, source, gap, timeout, jitter, margin} in seconds; None for ``@reboot``
        or a schedule that never runs in the zone.
    Raises:
        ScheduleError: the schedule or the zone is not valid.
    """
    first, end = window_years(now)
    gap = longest_gap_minutes(parse_schedule(schedule), zone, first, end)
    if gap is None:
        return None
    gap_seconds = gap * 60
    margin = min(max(gap_seconds * MARGIN_SHARE // 100, MARGIN_MIN), MARGIN_MAX)
    extra = (timeout or 0) + jitter
    return {
        "seconds": gap_seconds + extra + margin,
        "source": SCHEDULE,
        "gap": gap_seconds,
        "timeout": timeout or 0,
        "jitter": jitter,
        "margin": margin,
    }


def derived_window(
    schedule: str,
    zone: str,
    timeout: Optional[int],
    jitter: int,
    within: Optional[int],
    now: Optional[datetime],
) -> Optional[dict[str, Any]]:
    """A job's ``stale_window``: ``success.within`` when set, else the schedule's.

    Returns:
        {seconds, source: "within"} or what ``schedule_window`` returns (None without
        ``now``).
    Raises:
        ScheduleError: the schedule or the zone is not valid (only without ``within``).
    """
    if within:
        return {"seconds": within, "source": WITHIN}
    if now is None:
        return None
    return schedule_window(schedule, zone, timeout, jitter, now)


def describe_window(window: Any) -> str:
    """A ``stale_window`` for people: ``26h (success.within)`` or ``1d 1h 6m (schedule:
    gap 1d + timeout 1h + margin 6m)``; ``-`` for none."""
    if not isinstance(window, dict) or not isinstance(window.get("seconds"), int):
        return "-"
    total = human_seconds(window["seconds"])
    if window.get("source") != SCHEDULE:
        return f"{total} (success.within)"
    parts = [f"gap {human_seconds(int(window.get('gap') or 0))}"]
    for key in ("timeout", "jitter", "margin"):
        if window.get(key):
            parts.append(f"{key} {human_seconds(int(window[key]))}")
    return f"{total} (schedule: {' + '.join(parts)})"


def human_seconds(seconds: int) -> str:
    """``90061`` -> ``1d 1h 1m 1s`` (zero parts left out; ``0s`` for 0)."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"
