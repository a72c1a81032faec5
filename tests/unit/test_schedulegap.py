"""The longest gap between runs, from the schedule's fields, against brute force.

The brute force is cronsync's own ``next_runs`` (what the shim's gate and ``status``
use), listing every run of the window; the fast path must agree to the minute, DST
days included (skipped and repeated wall times, 30-minute and midnight changes, a
whole day skipped).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import pytest
import tomllib
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cronsync.core.schedule import CronSchedule, parse_schedule
from cronsync.core.schedulegap import longest_gap_minutes
from cronsync.core.staleness import (
    MARGIN_MAX,
    MARGIN_MIN,
    derived_window,
    schedule_window,
    window_years,
)
from cronsync.core.tzrender import next_runs

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"
ZONES = (
    "UTC",
    "Europe/Berlin",  # 02:00 -> 03:00 in March, 03:00 -> 02:00 in October
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute change
    "America/Santiago",  # changes at midnight: 00:00 does not exist some days
    "America/Havana",  # changes at 00:00 / 01:00
    "Pacific/Apia",  # skipped 30 December 2011 entirely
    "Asia/Kolkata",
)


def brute_gap(schedule: CronSchedule, zone_name: str, first: date, end: date) -> Optional[int]:
    """The same quantity by listing runs with ``next_runs``: the longest wait between two
    consecutive runs where the later is on ``first`` or after and the earlier before
    ``end`` (local dates)."""
    zone = ZoneInfo(zone_name)
    lookback = 8
    while lookback < 366 * 40:
        start = datetime.combine(first - timedelta(days=lookback), time(), zone)
        runs = _runs_until(schedule, start.astimezone(timezone.utc), end, zone)
        if runs and runs[0].date() < first:
            break
        lookback *= 4
    else:
        return None
    if not runs or runs[-1].date() < end:
        return None
    # aware datetimes sharing a tzinfo subtract by wall time: subtract in UTC
    waits = [
        int((b.astimezone(timezone.utc) - a.astimezone(timezone.utc)).total_seconds()) // 60
        for a, b in zip(runs, runs[1:])
        if b.date() >= first and a.date() < end
    ]
    return max(waits) if waits else None


def _runs_until(
    schedule: CronSchedule, after: datetime, end: date, zone: ZoneInfo
) -> list[datetime]:
    """Every run after ``after`` up to and including the first on ``end`` or later."""
    runs: list[datetime] = []
    while True:
        batch = next_runs(schedule, after, 2000, zone)
        for run in batch:
            runs.append(run)
            if run.date() >= end:
                return runs
        if len(batch) < 2000:
            return runs
        after = batch[-1]


def _field(values: list[int], star: bool) -> str:
    return "*" if star else ",".join(str(v) for v in sorted(set(values)))


@st.composite
def schedules(draw: st.DrawFn) -> str:
    minute = draw(
        st.one_of(
            st.just("*/20"),
            st.lists(st.integers(0, 59), min_size=1, max_size=3).map(lambda v: _field(v, False)),
        )
    )
    hour = draw(
        st.one_of(
            st.just("*"),
            st.just("*/7"),
            st.lists(st.integers(0, 23), min_size=1, max_size=4).map(lambda v: _field(v, False)),
            st.lists(st.sampled_from([0, 1, 2, 3, 23]), min_size=1, max_size=2).map(
                lambda v: _field(v, False)
            ),
        )
    )
    dom = draw(
        st.one_of(
            st.just("*"),
            st.just("*/3"),
            st.lists(st.integers(1, 31), min_size=1, max_size=3).map(lambda v: _field(v, False)),
        )
    )
    month = draw(
        st.one_of(
            st.just("*"),
            st.lists(st.integers(1, 12), min_size=1, max_size=3).map(lambda v: _field(v, False)),
        )
    )
    dow = draw(
        st.one_of(
            st.just("*"),
            st.just("1-5"),
            st.lists(st.integers(0, 6), min_size=1, max_size=2).map(lambda v: _field(v, False)),
        )
    )
    return f"{minute} {hour} {dom} {month} {dow}"


def _parse_or_none(text: str) -> Optional[CronSchedule]:
    from cronsync.core.errors import ScheduleError

    try:
        return parse_schedule(text)
    except ScheduleError:  # e.g. 30 2: never occurs
        return None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=schedules(),
    zone=st.sampled_from(ZONES),
    first=st.dates(date(2010, 1, 1), date(2032, 12, 1)),
    near_change=st.sampled_from([None, (3, 20), (10, 20), (9, 1), (4, 1), (12, 25)]),
    days=st.integers(1, 50),
)
@example(
    text="30 2 * * *", zone="Europe/Berlin", first=date(2026, 3, 20), near_change=None, days=20
)
@example(
    text="30 2 * * *", zone="Europe/Berlin", first=date(2026, 10, 20), near_change=None, days=20
)
@example(
    text="0 0 * * *", zone="America/Santiago", first=date(2026, 8, 30), near_change=None, days=20
)
@example(
    text="0 12 * * *", zone="Pacific/Apia", first=date(2011, 12, 25), near_change=None, days=14
)
@example(
    text="15 2 * * *",
    zone="Australia/Lord_Howe",
    first=date(2026, 3, 28),
    near_change=None,
    days=14,
)
@example(text="0 0 29 2 *", zone="UTC", first=date(2026, 1, 1), near_change=None, days=40)
def test_fast_gap_equals_brute_force(
    text: str,
    zone: str,
    first: date,
    near_change: Optional[tuple[int, int]],
    days: int,
) -> None:
    schedule = _parse_or_none(text)
    if schedule is None:
        return
    if near_change is not None:  # most examples around a DST change
        first = date(first.year, *near_change)
    end = first + timedelta(days=days)
    assert longest_gap_minutes(schedule, zone, first, end) == brute_gap(
        schedule, zone, first, end
    ), text


def test_a_skipped_wall_time_makes_a_two_day_gap() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026: that day's run is skipped
    gap = longest_gap_minutes(
        parse_schedule("30 2 * * *"), "Europe/Berlin", date(2026, 3, 20), date(2026, 4, 5)
    )
    assert gap == 2 * 1440 - 60
    # a fall-back day lengthens the gap by the repeated hour
    gap = longest_gap_minutes(
        parse_schedule("0 12 * * *"), "Europe/Berlin", date(2026, 10, 20), date(2026, 11, 5)
    )
    assert gap == 1440 + 60


def test_the_or_rule_and_february_29() -> None:
    # day 1 OR Monday: the longest wait is between Mondays or a 1st and a Monday
    gap = longest_gap_minutes(
        parse_schedule("0 0 1 * 1"), "UTC", date(2026, 1, 1), date(2028, 1, 1)
    )
    assert gap == 7 * 1440
    # 29 February: no run in 2026-2027, the wait around them is 2024 -> 2028
    gap = longest_gap_minutes(
        parse_schedule("0 0 29 2 *"), "UTC", date(2026, 1, 1), date(2028, 1, 1)
    )
    assert gap == (date(2028, 2, 29) - date(2024, 2, 29)).days * 1440


def test_reboot_has_no_gap() -> None:
    assert (
        longest_gap_minutes(parse_schedule("@reboot"), "UTC", date(2026, 1, 1), date(2027, 1, 1))
        is None
    )


def _template_jobs() -> list[tuple[str, str, str]]:
    config = tomllib.loads((TEMPLATE / "cronsync.toml").read_text(encoding="utf-8"))
    default_zone = config.get("defaults", {}).get("timezone", "UTC")
    found = []
    for path in sorted((TEMPLATE / "jobs").glob("*.toml")):
        job = tomllib.loads(path.read_text(encoding="utf-8"))
        found.append((path.stem, job["schedule"], job.get("timezone", default_zone)))
    return found


@pytest.mark.parametrize(("name", "text", "zone"), _template_jobs())
def test_template_jobs_against_brute_force(name: str, text: str, zone: str) -> None:
    first, end = window_years(datetime(2026, 12, 7, tzinfo=timezone.utc))
    schedule = parse_schedule(text)
    assert longest_gap_minutes(schedule, zone, first, end) == brute_gap(schedule, zone, first, end)


def test_window_is_gap_plus_timeout_jitter_and_a_bounded_margin() -> None:
    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    daily = schedule_window("30 3 * * *", "UTC", 3600, 120, now)
    assert daily is not None
    assert daily == {
        "seconds": 86400 + 3600 + 120 + MARGIN_MAX,  # 10% of a day is over the cap
        "source": "schedule",
        "gap": 86400,
        "timeout": 3600,
        "jitter": 120,
        "margin": MARGIN_MAX,
    }
    minutely = schedule_window("* * * * *", "UTC", None, 0, now)
    assert minutely is not None
    assert minutely["seconds"] == 60 + MARGIN_MIN and minutely["timeout"] == 0
    hourly = schedule_window("@hourly", "UTC", None, 0, now)
    assert hourly is not None and hourly["margin"] == 360  # 10 % of the hour
    assert schedule_window("@reboot", "UTC", None, 0, now) is None


def test_success_within_wins_over_the_schedule() -> None:
    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert derived_window("30 3 * * *", "UTC", 3600, 0, 26 * 3600, now) == {
        "seconds": 26 * 3600,
        "source": "within",
    }
    assert derived_window("@reboot", "UTC", None, 0, 600, now) == {
        "seconds": 600,
        "source": "within",
    }
    assert derived_window("@reboot", "UTC", None, 0, None, now) is None
