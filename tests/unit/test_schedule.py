"""Cron schedules as Debian's vixie cron 3.0pl1 reads them: parse, match, next runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import CronSchedule, day_matches, format_field, matches, parse_schedule
from cronsync.core.tzrender import is_due, next_runs

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
KATHMANDU = ZoneInfo("Asia/Kathmandu")


def at(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[misc]


# --- parsing: every syntax form -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "index", "expected"),
    [
        ("*", 0, set(range(60))),
        ("5", 0, {5}),
        ("05", 0, {5}),
        ("0000000000005", 0, {5}),
        ("1-5", 0, {1, 2, 3, 4, 5}),
        ("*/15", 0, {0, 15, 30, 45}),
        ("10-50/20", 0, {10, 30, 50}),
        ("1,2,5-7", 0, {1, 2, 5, 6, 7}),
        ("*/100", 0, {0}),  # a step larger than the range is fine
        ("*,5", 0, set(range(60))),
        ("*/6", 1, {0, 6, 12, 18}),
        ("1-31/10", 2, {1, 11, 21, 31}),
        ("jan", 3, {1}),
        ("JAN-Mar", 3, {1, 2, 3}),
        ("jun,dec", 3, {6, 12}),
        ("feb-dec/3", 3, {2, 5, 8, 11}),
        ("mon-fri", 4, {1, 2, 3, 4, 5}),
        ("Sun", 4, {0}),
        ("7", 4, {0}),
        ("0-7", 4, set(range(7))),
        ("5-7", 4, {5, 6, 0}),
        ("fri-7", 4, {5, 6, 0}),
        ("mon-fri/2", 4, {1, 3, 5}),
        ("1-sat", 4, {1, 2, 3, 4, 5, 6}),
    ],
)
def test_field_forms(field: str, index: int, expected: set[int]) -> None:
    parts = ["0", "0", "*", "*", "*"]
    parts[index] = field
    schedule = parse_schedule(" ".join(parts))
    sets = [
        schedule.minutes,
        schedule.hours,
        schedule.days_of_month,
        schedule.months,
        schedule.days_of_week,
    ]
    assert sets[index] == expected


def test_parse_keeps_text_and_fields_as_written() -> None:
    schedule = parse_schedule("  30  3 * *   mon-fri ")
    assert schedule.text == "30  3 * *   mon-fri"
    assert schedule.fields() == ("30", "3", "*", "*", "mon-fri")
    assert (schedule.minutes, schedule.hours) == ({30}, {3})
    assert not schedule.reboot


@pytest.mark.parametrize(
    ("text", "dom_restricted", "dow_restricted"),
    [
        ("0 0 * * *", False, False),
        ("0 0 */2 * *", False, False),
        ("0 0 1 * *", True, False),
        ("0 0 * * mon", False, True),
        ("0 0 * * */2", False, False),
        ("0 0 1-31 * 0-7", True, True),
        ("0 0 1,* * *", True, False),
    ],
)
def test_restricted_flags_follow_the_first_character(
    text: str, dom_restricted: bool, dow_restricted: bool
) -> None:
    schedule = parse_schedule(text)
    assert (schedule.dom_restricted, schedule.dow_restricted) == (dom_restricted, dow_restricted)


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@yearly", ("0", "0", "1", "1", "*")),
        ("@annually", ("0", "0", "1", "1", "*")),
        ("@monthly", ("0", "0", "1", "*", "*")),
        ("@weekly", ("0", "0", "*", "*", "0")),
        ("@daily", ("0", "0", "*", "*", "*")),
        ("@midnight", ("0", "0", "*", "*", "*")),
        ("@hourly", ("0", "*", "*", "*", "*")),
    ],
)
def test_macros_expand(macro: str, fields: tuple[str, ...]) -> None:
    schedule = parse_schedule(f" {macro} ")
    assert schedule.text == macro
    assert schedule.fields() == fields
    assert replace(schedule, text=" ".join(fields)) == parse_schedule(" ".join(fields))


def test_reboot_has_no_time_fields_and_never_runs_on_the_clock() -> None:
    schedule = parse_schedule("@reboot")
    assert schedule.reboot
    assert not schedule.minutes and not schedule.days_of_week
    assert not matches(schedule, datetime(2024, 1, 1))
    assert next_runs(schedule, datetime(2024, 1, 1, tzinfo=UTC), 5, TOKYO) == []
    with pytest.raises(ScheduleError, match="@reboot"):
        schedule.fields()


# --- parsing: every error ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("* * * * * *", "got 6"),
        ("0 3 * * * root /bin/true", "a user, a command"),
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month: 32 is out of range 1-31"),
        ("* * * 0 *", "month: 0 is out of range 1-12"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
        ("0-60 * * * *", "minute: 60 is out of range"),
        ("*/0 * * * *", "minute: step 0"),
        ("* 1-5/0 * * *", "hour: step 0"),
        ("*/ * * * *", "minute: the step"),
        ("*/x * * * *", "minute: the step"),
        ("1,,2 * * * *", "minute: empty item"),
        (",1 * * * *", "minute: empty item"),
        ("* 1, * * *", "hour: empty item"),
        ("* 6-1 * * *", "hour: reversed range '6-1'"),
        ("* 22-2 * * *", "write 22-23,0-2"),
        ("* * * * mon-sun", "day-of-week: reversed range 'mon-sun'"),
        ("* * * * sat-mon", "day-of-week: reversed range"),
        ("* * * dec-jan *", "month: reversed range"),
        ("* * 20-10 * *", "day-of-month: reversed range"),
        ("* * * foo *", "month: unknown name 'foo'"),
        ("* * * january *", "month: unknown name"),
        ("* * * * funday", "day-of-week: unknown name"),
        ("* * * * mno", "did you mean 'mon'"),
        ("mon * * * *", "minute: 'mon' is not a number"),
        ("* * x * *", "day-of-month: 'x' is not a number"),
        ("@dialy", "did you mean @daily"),
        ("@often", "unknown macro '@often'"),
        ("@DAILY", "lower-case"),
        ("@daily 5", "stands alone"),
        ("@DAILY 5", "lower-case"),
        ("@foo bar", "unknown macro '@foo' (known: @reboot @yearly @annually @monthly"),
        ("@every 5m", "unknown macro '@every' (known: @reboot @yearly"),
        ("@every 5m", "; for every 5m write '*/5 * * * *'"),
        ("@EVERY 2h", "; for every 2h write '0 */2 * * *'"),
        ("* * L * *", "day-of-month: 'L'"),
        ("* * 15W * *", "day-of-month: '15W'"),
        ("* * LW * *", "day-of-month"),
        ("* * * * 5L", "day-of-week: '5L'"),
        ("* * * * 5#3", "day-of-week: '#'"),
        ("0 0 ? * *", "day-of-month: '?'"),
        ("5/10 * * * *", "minute: '5/10'"),
        ("* * * jan/2 *", "write 'jan-12/2'"),
        ("*-5 * * * *", "minute: cannot read '*-5'"),
        ("1-2-3 * * * *", "minute: cannot read"),
        ("-1 * * * *", "minute: cannot read"),
        ("1" + "0" * 5000 + " * * * *", "minute: 100000000... (5001 digits) is too large"),
        ("*/" + "9" * 5000 + " * * * *", "minute: "),
        ("0 0 * * *\n", "control character (a line break)"),
        ("0\t0 * * *", "control character (a tab)"),
        ("0 0 * * *\r", "control character"),
        ("0 0 * * *\x00", "U+0000"),
        ("0 0 * * *\x85", "control character"),
        ("\uff10 0 * * *", "non-ASCII"),
        ("0\u00a00 * * *", "non-ASCII"),
        ("0 0 31 2 *", "day-of-month: '31' never occurs in month '2'"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 30,31 feb *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 31 2 */2", "never fires"),  # dow starts with '*': the AND rule applies
    ],
)
def test_errors(text: str, expected: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "0 0 29 2 *",  # leap years
        "0 0 31 2 mon",  # restricted dom with restricted dow: OR, fires every Monday
        "0 0 31 * *",
        "0 0 31 1-3 *",
        "0 0 29 feb */2",
    ],
)
def test_rare_but_firing_schedules_are_accepted(text: str) -> None:
    assert next_runs(parse_schedule(text), at(UTC, 2024, 1, 1), 1, UTC)


def test_reversed_sunday_range_suggests_seven() -> None:
    with pytest.raises(ScheduleError, match=r"write 1-7 \(7 is Sunday too\)"):
        parse_schedule("0 0 * * mon-sun")


# --- matching: vixie's day rule ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day", "expected"),
    [
        ("0 0 1 * mon", date(2024, 1, 8), True),  # a Monday, not the 1st: OR
        ("0 0 1 * mon", date(2024, 2, 1), True),  # the 1st, a Thursday: OR
        ("0 0 1 * mon", date(2024, 1, 9), False),
        ("0 0 1 * *", date(2024, 1, 8), False),
        ("0 0 * * mon", date(2024, 2, 1), False),
        ("0 0 */2 * mon", date(2024, 1, 1), True),  # '*/2' dom: AND; odd day and Monday
        ("0 0 */2 * mon", date(2024, 1, 8), False),  # Monday but even
        ("0 0 */2 * mon", date(2024, 1, 3), False),  # odd but Wednesday
        ("0 0 1 * */7", date(2024, 1, 7), False),  # '*/7' dow = Sunday only, AND with dom 1
        ("0 0 1-31 * mon", date(2024, 1, 9), True),  # both restricted, dom full: every day
        ("0 0 * 2 *", date(2024, 3, 1), False),
    ],
)
def test_day_rule(text: str, day: date, expected: bool) -> None:
    schedule = parse_schedule(text)
    assert day_matches(schedule, day) is expected
    assert matches(schedule, datetime(day.year, day.month, day.day)) is expected


def test_matches_compares_wall_clock_fields_only() -> None:
    schedule = parse_schedule("30 9 * * 1-5")
    assert matches(schedule, datetime(2024, 1, 8, 9, 30, 59))
    assert matches(schedule, at(TOKYO, 2024, 1, 8, 9, 30))
    assert not matches(schedule, at(TOKYO, 2024, 1, 8, 9, 31))
    assert not matches(schedule, datetime(2024, 1, 7, 9, 30))  # Sunday


# --- next runs -----------------------------------------------------------------------


def test_next_runs_skips_months_without_the_day() -> None:
    runs = next_runs(parse_schedule("0 0 31 * *"), at(UTC, 2024, 1, 31), 4, UTC)
    assert [r.date() for r in runs] == [
        date(2024, 3, 31),
        date(2024, 5, 31),
        date(2024, 7, 31),
        date(2024, 8, 31),
    ]


def test_next_runs_across_month_and_year_end() -> None:
    runs = next_runs(parse_schedule("0 12 28-31,1 * *"), at(UTC, 2024, 2, 27), 4, UTC)
    assert [r.date() for r in runs] == [
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
        date(2024, 3, 28),
    ]
    runs = next_runs(parse_schedule("59 23 31 12 *"), at(UTC, 2024, 12, 31, 23, 59), 1, UTC)
    assert runs == [at(UTC, 2025, 12, 31, 23, 59)]


def test_next_runs_leap_years() -> None:
    leap = parse_schedule("0 12 29 2 *")
    runs = next_runs(leap, at(UTC, 2024, 3, 1), 2, UTC)
    assert runs == [at(UTC, 2028, 2, 29, 12), at(UTC, 2032, 2, 29, 12)]
    runs = next_runs(leap, at(UTC, 2097, 1, 1), 1, UTC)
    assert runs == [at(UTC, 2104, 2, 29, 12)]  # 2100 is not a leap year
    on_weekday = next_runs(parse_schedule("0 0 29 2 */2"), at(UTC, 2024, 3, 1), 3, UTC)
    assert all(
        (r.month, r.day) == (2, 29) and r.isoweekday() % 7 in {0, 2, 4, 6} for r in on_weekday
    )
    assert len(on_weekday) == 3


def test_next_runs_is_strictly_after_and_in_the_zone() -> None:
    schedule = parse_schedule("30 9 * * *")
    runs = next_runs(schedule, at(TOKYO, 2024, 5, 1, 9, 30), 2, TOKYO)
    assert runs == [at(TOKYO, 2024, 5, 2, 9, 30), at(TOKYO, 2024, 5, 3, 9, 30)]
    assert all(r.tzinfo is TOKYO for r in runs)
    just_before = at(TOKYO, 2024, 5, 1, 9, 29, 59)
    assert next_runs(schedule, just_before, 1, TOKYO) == [at(TOKYO, 2024, 5, 1, 9, 30)]
    from_utc = next_runs(schedule, at(UTC, 2024, 4, 30, 23), 1, TOKYO)  # 08:00 in Tokyo
    assert from_utc == [at(TOKYO, 2024, 5, 1, 9, 30)]


def test_next_runs_count_and_naive_after() -> None:
    schedule = parse_schedule("* * * * *")
    assert next_runs(schedule, at(UTC, 2024, 1, 1), 0, UTC) == []
    assert len(next_runs(schedule, at(UTC, 2024, 1, 1), 1500, UTC)) == 1500
    with pytest.raises(ValueError, match="aware"):
        next_runs(schedule, datetime(2024, 1, 1), 1, UTC)


def test_dst_spring_forward_skips_the_missing_time() -> None:
    daily = next_runs(parse_schedule("30 2 * * *"), at(NEW_YORK, 2024, 3, 9), 2, NEW_YORK)
    assert [r.date() for r in daily] == [date(2024, 3, 9), date(2024, 3, 11)]
    halfhourly = parse_schedule("*/30 * * * *")
    runs = next_runs(halfhourly, at(NEW_YORK, 2024, 3, 10, 1, 10), 3, NEW_YORK)
    assert [(r.hour, r.minute) for r in runs] == [(1, 30), (3, 0), (3, 30)]
    assert runs[1].astimezone(UTC) - runs[0].astimezone(UTC) == timedelta(minutes=30)


def test_dst_fall_back_fires_once_at_the_first_occurrence() -> None:
    runs = next_runs(parse_schedule("30 1 * * *"), at(NEW_YORK, 2024, 11, 2), 3, NEW_YORK)
    assert [r.date() for r in runs] == [date(2024, 11, 2), date(2024, 11, 3), date(2024, 11, 4)]
    assert runs[1].utcoffset() == timedelta(hours=-4)  # EDT: the first 01:30
    halfhourly = parse_schedule("*/30 * * * *")
    runs = next_runs(halfhourly, at(NEW_YORK, 2024, 11, 3, 0, 50), 3, NEW_YORK)
    gaps = [b.astimezone(UTC) - a.astimezone(UTC) for a, b in zip(runs, runs[1:])]
    assert [(r.hour, r.minute) for r in runs] == [(1, 0), (1, 30), (2, 0)]
    assert gaps == [timedelta(minutes=30), timedelta(minutes=90)]


def test_next_runs_after_a_second_occurrence_compares_instants() -> None:
    schedule = parse_schedule("45 1 * * *")
    after = at(NEW_YORK, 2024, 11, 3, 1, 40, fold=1)  # EST, after 01:45 EDT has passed
    assert next_runs(schedule, after, 1, NEW_YORK)[0].date() == date(2024, 11, 4)
    before = at(NEW_YORK, 2024, 11, 3, 1, 40)  # EDT
    assert next_runs(schedule, before, 1, NEW_YORK)[0].date() == date(2024, 11, 3)


def test_is_due_in_a_repeated_hour_only_the_first_time() -> None:
    schedule = parse_schedule("30 1 * * *")
    first = at(NEW_YORK, 2024, 11, 3, 1, 30)
    second = at(NEW_YORK, 2024, 11, 3, 1, 30, fold=1)
    assert is_due(schedule, first.astimezone(UTC), NEW_YORK)
    assert not is_due(schedule, second.astimezone(UTC), NEW_YORK)
    assert not is_due(schedule, first.astimezone(UTC) + timedelta(minutes=1), NEW_YORK)
    with pytest.raises(ValueError, match="aware"):
        is_due(schedule, datetime(2024, 1, 1), NEW_YORK)


def test_tokyo_first_of_the_month_is_the_previous_day_in_utc() -> None:
    runs = next_runs(parse_schedule("0 8 1 * *"), at(UTC, 2024, 2, 15), 2, TOKYO)
    assert [r.astimezone(UTC) for r in runs] == [
        at(UTC, 2024, 2, 29, 23),
        at(UTC, 2024, 3, 31, 23),
    ]


def test_quarter_hour_zone() -> None:
    runs = next_runs(parse_schedule("0 9 * * *"), at(UTC, 2024, 1, 1), 1, KATHMANDU)
    assert runs[0].astimezone(UTC) == at(UTC, 2024, 1, 1, 3, 15)


# --- format_field -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "low", "high", "full_star", "expected"),
    [
        (range(60), 0, 59, True, "*"),
        (range(1, 32), 1, 31, False, "1-31"),
        ({1, 2, 3, 4, 5}, 0, 6, True, "1-5"),
        ({0, 30}, 0, 59, True, "0,30"),
        ({1, 2}, 0, 59, True, "1,2"),
        ({0, 15, 30, 45}, 0, 59, True, "0,15,30,45"),
        (range(0, 60, 10), 0, 59, True, "0-50/10"),
        ({0, 1, 2, 5, 7, 8, 9, 23}, 0, 23, True, "0-2,5,7-9,23"),
    ],
)
def test_format_field(
    values: set[int], low: int, high: int, full_star: bool, expected: str
) -> None:
    assert format_field(values, low, high, star_when_full=full_star) == expected


def test_format_field_needs_a_value() -> None:
    with pytest.raises(ValueError, match="at least one"):
        format_field([], 0, 59)


# --- properties ----------------------------------------------------------------------


def _item(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    pair = st.tuples(value, value).map(sorted)
    return st.one_of(
        st.just("*"),
        value.map(str),
        pair.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        st.integers(1, high - low + 2).map(lambda s: f"*/{s}"),
        st.tuples(pair, st.integers(1, 12)).map(lambda p: f"{p[0][0]}-{p[0][1]}/{p[1]}"),
    )


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    return st.lists(_item(low, high), min_size=1, max_size=3).map(",".join)


def schedules() -> st.SearchStrategy[CronSchedule]:
    """Random valid 5-field schedules; day fields are often '*' to keep runs frequent."""
    star_or = lambda s: st.one_of(st.just("*"), st.just("*"), s)  # noqa: E731
    texts = st.tuples(
        _field(0, 59),
        _field(0, 23),
        star_or(_field(1, 31)),
        star_or(_field(1, 12)),
        star_or(_field(0, 7)),
    ).map(" ".join)

    def parse_or_reject(text: str) -> CronSchedule | None:
        try:
            return parse_schedule(text)
        except ScheduleError:
            return None

    return texts.map(parse_or_reject).filter(lambda s: s is not None)  # type: ignore[return-value]


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(schedules())
def test_fields_round_trip(schedule: CronSchedule) -> None:
    again = parse_schedule(" ".join(schedule.fields()))
    assert again == schedule


@FAST
@given(st.sets(st.integers(0, 59), min_size=1), st.booleans())
def test_format_field_round_trips(values: set[int], full_star: bool) -> None:
    text = format_field(values, 0, 59, star_when_full=full_star)
    assert parse_schedule(f"{text} * * * *").minutes == values


ZONES = [NEW_YORK, ZoneInfo("Europe/London"), ZoneInfo("Australia/Lord_Howe"), KATHMANDU, UTC]
DST_EDGES = [
    at(UTC, 2024, 3, 10, 7),  # New York spring forward
    at(UTC, 2024, 11, 3, 6),  # New York fall back
    at(UTC, 2024, 3, 31, 1),  # London
    at(UTC, 2024, 10, 27, 1),
    at(UTC, 2024, 4, 6, 15),  # Lord Howe (30 minutes)
    at(UTC, 2024, 10, 5, 15, 30),
    at(UTC, 2024, 2, 28, 12),  # leap day
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedules(),
    st.sampled_from(ZONES),
    st.sampled_from(DST_EDGES),
    st.integers(-24 * 60, 12 * 60),
)
def test_next_runs_agrees_with_a_minute_by_minute_scan(
    schedule: CronSchedule, zone: ZoneInfo, edge: datetime, shift: int
) -> None:
    start = edge + timedelta(minutes=shift)
    end = start + timedelta(hours=30)
    runs = next_runs(schedule, start, 200, zone)
    expected = []
    moment = start + timedelta(minutes=1)
    while moment <= end:
        if is_due(schedule, moment, zone):
            expected.append(moment)
        moment += timedelta(minutes=1)
    in_window = [r.astimezone(UTC) for r in runs if r <= end]  # UTC: see PEP 495 on folds
    assume(len(in_window) < 200)
    assert in_window == expected
    assert all(matches(schedule, r) and r.tzinfo is zone for r in runs)
