"""The occurrence a start belongs to: ``cronsync.core.occurrence`` (zones, DST, skew)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cronsync.core.occurrence import latest_occurrence, occurrence_seconds
from cronsync.core.schedule import parse_schedule
from cronsync.core.tzrender import is_due, next_runs

UTC = timezone.utc
TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=zone, fold=fold)  # type: ignore[misc]


def occ(schedule: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    return latest_occurrence(parse_schedule(schedule), now, zone)


def test_the_minute_itself_and_seconds_after_it() -> None:
    for second in (0, 1, 59):
        now = at(TOKYO, 2026, 12, 7, 3, 30, second)
        assert occ("30 3 * * *", now, TOKYO) == at(TOKYO, 2026, 12, 7, 3, 30)


def test_before_today_s_minute_it_is_yesterday_s() -> None:
    now = at(TOKYO, 2026, 12, 7, 3, 29, 59)
    assert occ("30 3 * * *", now, TOKYO) == at(TOKYO, 2026, 12, 6, 3, 30)


def test_the_zone_decides_not_the_host_clock_s_zone() -> None:
    # 18:30 UTC is 03:30 the next day in Tokyo
    now = datetime(2026, 12, 6, 18, 30, 5, tzinfo=UTC)
    assert occ("30 3 * * *", now, TOKYO) == at(TOKYO, 2026, 12, 7, 3, 30)
    assert occ("30 3 * * *", now, BERLIN) == at(BERLIN, 2026, 12, 6, 3, 30)


@pytest.mark.parametrize("skew", [-30, -1, 0, 1, 29])
def test_hosts_30_seconds_apart_agree(skew: int) -> None:
    """Cron on each host starts the shim when its own clock shows the minute: each
    host's reading is the minute plus its start-up delay, and it names the same one."""
    schedule = "*/5 * * * *"
    true_minute = at(BERLIN, 2026, 3, 1, 12, 5)
    readings = [true_minute + timedelta(seconds=delay) for delay in (0, 0.2, 2, 30)]
    names = {occurrence_seconds(occ(schedule, r, BERLIN)) for r in readings}  # type: ignore[arg-type]
    assert names == {int(true_minute.timestamp())}
    # a host 30 s ahead that claims early, and one behind that claims late, still agree
    if skew >= 0:
        assert occ(schedule, true_minute + timedelta(seconds=skew), BERLIN) == true_minute


def test_spring_forward_gap_is_skipped_like_the_gate() -> None:
    # Berlin, 2026-03-29: 02:00-02:59 does not exist; "30 2 * * *" does not fire that day
    now = at(BERLIN, 2026, 3, 29, 12, 0)
    assert occ("30 2 * * *", now, BERLIN) == at(BERLIN, 2026, 3, 28, 2, 30)


def test_fall_back_repeated_hour_is_the_first_instant_only() -> None:
    # New York, 2026-11-01: 01:00-01:59 happens twice; cron fires at the first 01:30
    first = at(NEW_YORK, 2026, 11, 1, 1, 30)
    second = at(NEW_YORK, 2026, 11, 1, 1, 30, fold=1)
    assert occ("30 1 * * *", second + timedelta(seconds=10), NEW_YORK) == first
    assert occurrence_seconds(first) + 3600 == int(second.timestamp())
    assert occ("30 1 * * *", first + timedelta(minutes=10), NEW_YORK) == first


def test_reboot_has_no_occurrence() -> None:
    assert occ("@reboot", datetime(2026, 1, 1, tzinfo=UTC), UTC) is None


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        occ("* * * * *", datetime(2026, 1, 1), UTC)


def test_sparse_schedule_years_back() -> None:
    now = at(UTC, 2027, 3, 1, 0, 0)
    assert occ("0 0 29 2 *", now, ZoneInfo("UTC")) == at(ZoneInfo("UTC"), 2024, 2, 29, 0, 0)


@pytest.mark.parametrize(
    ("schedule", "zone"),
    [
        ("*/7 1-3 * * *", BERLIN),
        ("15,45 0-4 * * sun", NEW_YORK),
        ("0 2 1,15 * mon", BERLIN),
        ("30 1 * * *", NEW_YORK),
        ("0 */6 * * *", TOKYO),
    ],
)
def test_agrees_with_the_gate_and_next_runs_over_dst_days(schedule: str, zone: ZoneInfo) -> None:
    """Every fire time of ``next_runs`` across both of the year's DST changes is its own
    occurrence, and every minute in between belongs to the one before it."""
    parsed = parse_schedule(schedule)
    start = datetime(2026, 3, 28, tzinfo=UTC)
    runs = next_runs(parsed, start, 120, zone)
    runs += next_runs(parsed, datetime(2026, 10, 24, tzinfo=UTC), 120, zone)
    for run in runs:
        assert is_due(parsed, run, zone)
        assert latest_occurrence(parsed, run, zone) == run
        assert latest_occurrence(parsed, run + timedelta(seconds=59), zone) == run
        assert latest_occurrence(parsed, run - timedelta(seconds=1), zone) != run
