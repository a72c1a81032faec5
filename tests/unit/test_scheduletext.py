"""Schedules in English: ``describe`` for reports, advice for macros cron does not know."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core.errors import ScheduleError
from cronsync.core.macros import unknown_macro_message
from cronsync.core.schedule import parse_schedule
from cronsync.core.scheduletext import describe

# --- describe: times of day ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("*/20 * * * 1-5", "every 20 minutes on Monday through Friday"),
        ("0 * * * *", "every hour"),
        ("17 * * * *", "every hour at minute 17"),
        ("15,45 * * * *", "every hour at minutes 15 and 45"),
        ("1-59 * * * *", "every hour at minutes 1–59"),
        ("0-29 * * * *", "every hour at minutes 0–29"),
        ("0,1,2,30 * * * *", "every hour at minutes 0–2 and 30"),
        ("5-59/15 * * * *", "every hour at minutes 5, 20, 35 and 50"),
        ("*/7 * * * *", "every hour at minutes 0, 7, 14, …, 56"),  # 56 -> 0 is 4 minutes
        ("*/45 * * * *", "every hour at minutes 0 and 45"),
        ("30 3 * * *", "at 03:30 every day"),
        ("0 9,17 * * *", "at 09:00 and 17:00 every day"),
        ("0 */6 * * *", "at 00:00, 06:00, 12:00 and 18:00 every day"),
        ("0 */2 * * *", "every 2 hours"),
        ("0 */4 * * *", "every 4 hours"),
        ("30 */3 * * *", "every 3 hours at minute 30"),
        ("0 1-23/2 * * *", "every 2 hours from 01:00 to 23:00 every day"),
        ("23 0-20/2 * * *", "every 2 hours from 00:23 to 20:23 every day"),
        ("* 4 * * *", "every minute from 04:00 to 04:59 every day"),
        ("* 9,17 * * *", "every minute from 09:00 to 09:59 and from 17:00 to 17:59 every day"),
        ("* */2 * * *", "every minute during hours 0, 2, 4, …, 22 every day"),
        ("*/5 4 * * *", "every 5 minutes from 04:00 to 04:55 every day"),
        ("0,30 9-17 * * *", "every 30 minutes from 09:00 to 17:30 every day"),
        ("*/15 9-17 * * 1-5", "every 15 minutes from 09:00 to 17:45 on Monday through Friday"),
        ("0,30 */2 * * *", "every 30 minutes during hours 0, 2, 4, …, 22 every day"),
        ("0 9-17 * * mon-fri", "every hour from 09:00 to 17:00 on Monday through Friday"),
        ("30 8-11,13-17 * * *", "every hour from 08:30 to 11:30 and from 13:30 to 17:30 every day"),
        ("5-10 4 * * *", "at minutes 5–10 past hour 4 every day"),
        ("15,45 9-17 * * *", "at minutes 15 and 45 past hours 9–17 every day"),
        ("10,20 1,3,5 * * *", "at minutes 10 and 20 past hours 1, 3 and 5 every day"),
        ("0 1,3,5,8,20 * * *", "at 01:00, 03:00, 05:00, 08:00 and 20:00 every day"),
        (
            "0 1,3,5,6,8,12,20,22,23 * * *",
            "at minute 0 past hours 1, 3, 5, 6, 8, 12, 20, 22 and 23 every day",
        ),
    ],
)
def test_describe_times(text: str, expected: str) -> None:
    assert describe(parse_schedule(text)) == expected


# --- describe: days and months (cron's OR rule when both day fields are set) ------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 9 * * 1-5", "at 09:00 on Monday through Friday"),
        ("0 0 * * sat,sun", "at 00:00 on Saturday and Sunday"),
        ("0 0 * * 0", "at 00:00 on Sunday"),
        ("0 0 * * 7", "at 00:00 on Sunday"),
        ("0 0 * * 5-7", "at 00:00 on Friday through Sunday"),
        ("0 0 * * 1,3,5", "at 00:00 on Monday, Wednesday and Friday"),
        ("0 0 * * */2", "at 00:00 on Tuesday, Thursday, Saturday and Sunday"),
        ("0 9 * * 1-5,0", "at 09:00 on Monday through Friday and Sunday"),
        ("0 0 * * 0-6", "at 00:00 every day"),
        ("0 0 1 * *", "at 00:00 on day 1 of the month"),
        ("0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month"),
        ("0 0 1-7 * *", "at 00:00 on days 1–7 of the month"),
        ("0 0 */2 * *", "at 00:00 on days 1, 3, 5, …, 31 of the month"),
        ("0 * 1 * *", "every hour on day 1 of the month"),
        # both day fields restricted: a day matching either one runs
        ("0 0 1 * mon", "at 00:00 on day 1 of the month and on every Monday"),
        ("0 0 1-7 * 1", "at 00:00 on days 1–7 of the month and on every Monday"),
        ("0 0 1 * mon,fri", "at 00:00 on day 1 of the month and on every Monday and Friday"),
        ("0 0 1-31 * mon", "at 00:00 every day"),
        ("0 0 1 * 0-6", "at 00:00 every day"),
        # day-of-month written with '*': both fields must match
        ("0 0 */2 * mon", "at 00:00 on days 1, 3, 5, …, 31 of the month when it falls on a Monday"),
        (
            "0 0 */2 * 1,5",
            "at 00:00 on days 1, 3, 5, …, 31 of the month when it falls on Monday or Friday",
        ),
        ("0 0 * 3-5 *", "at 00:00 every day in March through May"),
        ("59 23 * 12 *", "at 23:59 every day in December"),
        ("*/15 * * 6-8 *", "every 15 minutes in June through August"),
        ("0 12 * 1,7 1", "at 12:00 on Monday in January and July"),
        ("0 0 1 1 *", "at 00:00 on January 1"),
        ("0 0 29 2 *", "at 00:00 on February 29"),
        ("0 0 1 */3 *", "at 00:00 on day 1 of January, April, July and October"),
        ("0 0 1,15 6 *", "at 00:00 on days 1 and 15 of June"),
        ("0 0 1-7 3-5 *", "at 00:00 on days 1–7 of March through May"),
        ("0 0 1 6 mon", "at 00:00 on day 1 of the month and on every Monday in June"),
    ],
)
def test_describe_days_and_months(text: str, expected: str) -> None:
    assert describe(parse_schedule(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@reboot", "at boot"),
        ("@yearly", "at 00:00 on January 1"),
        ("@annually", "at 00:00 on January 1"),
        ("@monthly", "at 00:00 on day 1 of the month"),
        ("@weekly", "at 00:00 on Sunday"),
        ("@daily", "at 00:00 every day"),
        ("@midnight", "at 00:00 every day"),
        ("@hourly", "every hour"),
    ],
)
def test_describe_macros(text: str, expected: str) -> None:
    assert describe(parse_schedule(text)) == expected


FIELDS = (
    ["*", "0", "30", "*/15", "*/7", "5-10", "0,30", "1-59", "15,45", "5-59/15"],
    ["*", "4", "*/2", "*/6", "9-17", "9,17", "1-23/2", "8-11,13-17", "0,3,5,8,20,22,23"],
    ["*", "1", "1,15", "1-7", "*/2", "13", "31"],
    ["*", "1", "3-5", "*/3", "12", "jan,jul"],
    ["*", "0", "1-5", "mon,fri", "sat,sun", "*/2", "7", "0-6"],
)


@settings(max_examples=200, deadline=None)
@given(st.tuples(*(st.sampled_from(options) for options in FIELDS)).map(" ".join))
def test_describe_reads_as_english(text: str) -> None:
    try:
        schedule = parse_schedule(text)
    except ScheduleError:  # e.g. day 31 in February only
        return
    words = describe(schedule)
    assert not re.search(r"[*/]|\d-\d|  | $|^ ", words), words  # no cron syntax left over
    assert not re.search(r"\b(minute|hour|day)s \d+(?![0-9]| and|,|–)", words), (
        words
    )  # 1 is singular
    if len(schedule.hours) == 1:
        hour = min(schedule.hours)
        assert f"{hour:02d}:" in words or f"past hour {hour} " in words, words
    dom, dow = text.split()[2], text.split()[4]
    if not dom.startswith("*") and not dow.startswith("*") and dow != "0-6":
        assert " and on every " in words, words  # cron's OR rule


# --- unknown macros -------------------------------------------------------------------

KNOWN = "known: @reboot @yearly @annually @monthly @weekly @daily @midnight @hourly"
STEPS = "cron's steps start again each hour and day, so use minutes that divide 60 or hours"
INSTEAD = "write 5 fields instead, e.g. '*/5 * * * *' for every 5 minutes"


@pytest.mark.parametrize(
    ("name", "rest", "advice"),
    [
        ("@every", ["5m"], "for every 5m write '*/5 * * * *'"),
        ("@every", ["1h"], "for every 1h write '0 * * * *'"),
        ("@every", ["2h"], "for every 2h write '0 */2 * * *'"),
        ("@EVERY", ["5m"], "for every 5m write '*/5 * * * *'"),
        ("@Every", ["5M"], "for every 5M write '*/5 * * * *'"),
        ("@every", ["5", "m"], "for every 5m write '*/5 * * * *'"),
        ("@every", ["1m"], "for every 1m write '* * * * *'"),
        ("@every", ["60m"], "for every 60m write '0 * * * *'"),
        ("@every", ["120s"], "for every 120s write '*/2 * * * *'"),
        ("@every", ["24h"], "for every 24h write '0 0 * * *'"),
        ("@every", ["7m"], f"no 5 fields run every 7m: {STEPS} that divide 24"),
        ("@every", ["1h30m"], f"no 5 fields run every 1h30m: {STEPS} that divide 24"),
        ("@every", ["5h"], f"no 5 fields run every 5h: {STEPS} that divide 24"),
        ("@every", ["30s"], "cron cannot run every 30s: it runs at most once a minute"),
        ("@every", [], INSTEAD),
        ("@every", ["soon"], INSTEAD),
    ],
)
def test_every_gets_the_five_fields(name: str, rest: list[str], advice: str) -> None:
    assert unknown_macro_message(name, rest) == f"unknown macro {name!r} ({KNOWN}); {advice}"


@pytest.mark.parametrize(
    ("name", "rest", "expected"),
    [
        ("@foo", ["bar"], f"unknown macro '@foo' ({KNOWN})"),
        ("@dialy", [], f"unknown macro '@dialy' (did you mean @daily? {KNOWN})"),
        ("@DAILY", ["5"], "unknown macro '@DAILY': cron macros are lower-case (@daily)"),
    ],
)
def test_unknown_macro_message(name: str, rest: list[str], expected: str) -> None:
    assert unknown_macro_message(name, rest) == expected


@pytest.mark.parametrize(
    ("text", "fields"),
    [("@every 5m", "*/5 * * * *"), ("@every 1h", "0 * * * *"), ("@EVERY 2h", "0 */2 * * *")],
)
def test_every_suggestion_runs_at_that_interval(text: str, fields: str) -> None:
    with pytest.raises(ScheduleError, match="unknown macro") as info:
        parse_schedule(text)
    assert f"write '{fields}'" in info.value.message
    interval = int(text.split()[1][:-1]) * (60 if text.endswith("h") else 1)
    suggested = parse_schedule(fields)
    times = sorted(h * 60 + m for h in suggested.hours for m in suggested.minutes)
    assert {b - a for a, b in zip(times, [*times[1:], times[0] + 1440])} == {interval}
