"""A job's time zone honoured on Debian cron: schedules rendered in host time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import CronSchedule, HostRendering, matches, parse_schedule
from cronsync.core.tzrender import MAX_LINES, is_due, next_runs, offset_deltas, render_in_host_time

UTC = timezone.utc
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
WINDOW_END = datetime(2027, 6, 1, tzinfo=UTC)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    pair = st.tuples(value, value).map(sorted)
    item = st.one_of(
        st.just("*"),
        value.map(str),
        pair.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        st.integers(1, high - low + 2).map(lambda s: f"*/{s}"),
        st.tuples(pair, st.integers(1, 12)).map(lambda p: f"{p[0][0]}-{p[0][1]}/{p[1]}"),
    )
    return st.lists(item, min_size=1, max_size=3).map(",".join)


def _parse_or_none(text: str) -> CronSchedule | None:
    try:
        return parse_schedule(text)
    except ScheduleError:  # never fires
        return None


def _day_field(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), st.integers(low, high).map(str), _field(low, high))


schedules = (
    st.tuples(_field(0, 59), _field(0, 23), _day_field(1, 31), _day_field(1, 12), _day_field(0, 7))
    .map(" ".join)
    .map(_parse_or_none)
    .filter(lambda schedule: schedule is not None)
)


def render(text: str, job: str, host: str) -> HostRendering:
    return render_in_host_time(parse_schedule(text), job, host, NOW)


@pytest.mark.parametrize(
    ("text", "job", "host", "lines", "exact"),
    [
        ("30 3 * * *", "Asia/Tokyo", "Asia/Tokyo", ("30 3 * * *",), True),
        ("0 0 * * mon-fri", "UTC", "Etc/UTC", ("0 0 * * mon-fri",), True),
        ("@daily", "Europe/Paris", "Europe/Paris", ("0 0 * * *",), True),
        ("@reboot", "Asia/Tokyo", "UTC", ("@reboot",), True),
        ("30 3 * * *", "Asia/Tokyo", "UTC", ("30 18 * * *",), True),
        ("0 12 * 1 *", "Asia/Tokyo", "UTC", ("0 3 * 1 *",), True),
        ("0 8 * * 1", "Asia/Tokyo", "UTC", ("0 23 * * 0",), True),
        ("0 7,8,9 * * 1-5", "Asia/Tokyo", "UTC", ("0 22,23 * * 0-4", "0 0 * * 1-5"), True),
        ("30 23 * * 1-5", "UTC", "Asia/Kolkata", ("0 5 * * 2-6",), True),
        ("*/30 * * * *", "Asia/Kathmandu", "UTC", ("15,45 * * * *",), True),
        ("0 9 * * *", "Asia/Kathmandu", "UTC", ("15 3 * * *",), True),
        ("0 9 * * *", "Asia/Kathmandu", "Asia/Kolkata", ("45 8 * * *",), True),
        ("0 2 * * *", "Europe/Paris", "Europe/London", ("0 1 * * *",), True),
        # day boundary under a restricted day-of-month: covered, the shim gates
        ("0 8 1 * *", "Asia/Tokyo", "UTC", ("0 23 28-31 * *",), False),
        ("0 8 * 1 *", "Asia/Tokyo", "UTC", ("0 23 * 1,12 *",), False),
        ("0 8 1 * mon", "Asia/Tokyo", "UTC", ("0 23 28-31 * 0",), False),
        # DST on one side
        ("0 9 * * *", "America/New_York", "UTC", ("0 13,14 * * *",), False),
        ("0 22 * * 5", "America/New_York", "UTC", ("0 2,3 * * 6",), False),
        ("0 0 1 1 *", "America/New_York", "UTC", ("0 4,5 1 1 *",), False),
        ("0 12 * * *", "Australia/Lord_Howe", "UTC", ("0,30 1 * * *",), False),
        ("30 9 * * *", "Pacific/Chatham", "UTC", ("45 19,20 * * *",), False),
        ("0 9 * * *", "UTC", "Europe/London", ("0 9,10 * * *",), False),
    ],
)
def test_examples(text: str, job: str, host: str, lines: tuple[str, ...], exact: bool) -> None:
    assert render(text, job, host) == HostRendering(lines, exact)


def test_too_many_lines_fall_back_to_one_covering_line() -> None:
    rendering = render(
        "2,4,12,15,34,38,43,45,52 3,4,9,16,19,23 * * *", "Pacific/Chatham", "Australia/Lord_Howe"
    )
    assert rendering == HostRendering(
        ("0,7,17,19,23,27,28,30,37,47,49,53,57,58 0-3,5-8,12-23 * * *",), exact=False
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime"])
def test_unknown_zones_are_schedule_errors(zone: str) -> None:
    with pytest.raises(ScheduleError, match="timezone: unknown time zone"):
        render("0 0 * * *", zone, "UTC")
    with pytest.raises(ScheduleError, match="timezone"):
        render("0 0 * * *", "UTC", zone)


def test_depends_on_the_year_of_now_only() -> None:
    schedule = parse_schedule("0 9 * * *")
    naive = render_in_host_time(schedule, "America/New_York", "UTC", datetime(2025, 1, 1))
    late = render_in_host_time(
        schedule, "America/New_York", "UTC", datetime(2025, 12, 31, 23, tzinfo=UTC)
    )
    assert naive == late == render("0 9 * * *", "America/New_York", "UTC")


@pytest.mark.parametrize(
    ("job", "host", "deltas"),
    [
        ("UTC", "Etc/UTC", (0,)),
        ("Europe/Paris", "Europe/Berlin", (0,)),
        ("America/New_York", "UTC", (240, 300)),
        ("Asia/Tokyo", "UTC", (-540,)),
        ("Asia/Kathmandu", "Asia/Kolkata", (-15,)),
        ("Australia/Lord_Howe", "UTC", (-660, -630)),
        ("Pacific/Chatham", "Australia/Lord_Howe", (-195, -165, -135, -105)),
    ],
)
def test_offset_deltas(job: str, host: str, deltas: tuple[int, ...]) -> None:
    assert offset_deltas(job, host, 2025) == deltas


ZONES = [
    "Asia/Tokyo",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "UTC",
]
HOST_ZONES = [*ZONES, "Etc/UTC", "Europe/Paris"]
# near DST changes of the zones above, a month end and a leap day
EDGES = [
    datetime(2025, 3, 9, 7, tzinfo=UTC),
    datetime(2025, 11, 2, 6, tzinfo=UTC),
    datetime(2025, 3, 30, 1, tzinfo=UTC),
    datetime(2025, 10, 26, 1, tzinfo=UTC),
    datetime(2025, 4, 5, 15, tzinfo=UTC),
    datetime(2025, 10, 4, 15, 30, tzinfo=UTC),
    datetime(2025, 4, 5, 14, tzinfo=UTC),
    datetime(2025, 9, 27, 14, tzinfo=UTC),
    datetime(2025, 12, 31, 12, tzinfo=UTC),
    datetime(2028, 2, 28, 12, tzinfo=UTC) - timedelta(days=365),
]
starts = st.one_of(
    st.tuples(st.sampled_from(EDGES), st.integers(-3 * 24 * 60, 24 * 60)).map(
        lambda edge: edge[0] + timedelta(minutes=edge[1])
    ),
    st.integers(0, 2 * 365 * 24 * 60).map(
        lambda m: datetime(2024, 7, 1, tzinfo=UTC) + timedelta(minutes=m)
    ),
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_cover(schedule: CronSchedule, job: str, host: str, start: datetime) -> HostRendering:
    """Every due time is matched by exactly one line; exact lines fire only when due."""
    rendering = render_in_host_time(schedule, job, host, NOW)
    assert 1 <= len(rendering.lines) <= MAX_LINES
    assert rendering == render_in_host_time(schedule, job, host, NOW)  # deterministic
    lines = [parse_schedule(line) for line in rendering.lines]
    for due in next_runs(schedule, start, 6, ZoneInfo(job)):
        if due > WINDOW_END:
            break
        host_wall = due.astimezone(ZoneInfo(host))
        assert sum(matches(line, host_wall) for line in lines) == 1, (due, host_wall)
    if rendering.exact:
        for line in lines:
            for fire in next_runs(line, start, 4, ZoneInfo(host)):
                if fire <= WINDOW_END:
                    assert is_due(schedule, fire, ZoneInfo(job)), fire
    return rendering


@PROPERTY
@given(schedules, st.sampled_from(ZONES), st.sampled_from(HOST_ZONES), starts)
def test_lines_cover_every_due_time_once_and_exact_means_exact(
    schedule: CronSchedule, job: str, host: str, start: datetime
) -> None:
    _check_cover(schedule, job, host, start)


CONSTANT = ["Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "UTC", "Pacific/Kiritimati"]


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(_field(0, 59), _field(0, 23), st.just("*"), st.just("*"), _field(0, 6)),
    st.sampled_from(CONSTANT),
    st.sampled_from([*CONSTANT, "Etc/GMT+12"]),
    starts,
)
def test_weekday_schedules_shift_exactly_between_fixed_offsets(
    fields: tuple[str, ...], job: str, host: str, start: datetime
) -> None:
    rendering = _check_cover(parse_schedule(" ".join(fields)), job, host, start)
    assert rendering.exact


MONTH_ENDS = [datetime(y, m, 1, tzinfo=UTC) for y in (2025, 2026) for m in (1, 3, 5, 7, 12)]


@settings(max_examples=60, deadline=None)
@given(
    _field(0, 59),
    _field(0, 23),
    st.sampled_from(["1", "2", "1,15", "28", "29", "30", "31", "28-31", "*/10"]),
    st.sampled_from(["*", "*", "3", "1-2", "*", "*"]),
    st.sampled_from(["*", "mon", "sat,sun"]),
    st.sampled_from(ZONES),
    st.sampled_from(HOST_ZONES),
    st.sampled_from(MONTH_ENDS),
    st.integers(-4 * 24 * 60, 0),
)
def test_month_ends_are_covered(
    minute: str,
    hour: str,
    dom: str,
    month: str,
    dow: str,
    job: str,
    host: str,
    month_start: datetime,
    shift: int,
) -> None:
    schedule = _parse_or_none(f"{minute} {hour} {dom} {month} {dow}")
    if schedule is not None:
        _check_cover(schedule, job, host, month_start + timedelta(minutes=shift))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(ZONES), st.sampled_from(HOST_ZONES))
def test_reboot_never_needs_conversion(job: str, host: str) -> None:
    assert render("@reboot", job, host) == HostRendering(("@reboot",), True)
