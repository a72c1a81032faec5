"""The timeline's pure layout: window, runs, slots, overlaps, load, and its three renderings
(text, SVG, JSON), compared with the schedule code's ``next_runs``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronsync.core.schedule import parse_schedule
from cronsync.core.timeline import (
    Run,
    busiest_slots,
    choose_slot_minutes,
    day_window,
    history_timeline,
    lane_cells,
    load_per_slot,
    runs_between,
    scheduled_timeline,
)
from cronsync.core.timelinejson import timeline_json
from cronsync.core.timelinesvg import AGGREGATE_ABOVE, render_svg
from cronsync.core.timelinetext import render_text
from cronsync.core.tzrender import next_runs

SVG = "{http://www.w3.org/2000/svg}"


def job(
    schedule: str, zone: str = "UTC", timeout: int | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "schedule": schedule,
        "timezone": zone,
        "timeout": timeout,
        "installed": True,
        "status": "installed",
        **extra,
    }


def expected_runs(schedule: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every run of ``schedule`` in [start, end), by the schedule code itself."""
    parsed = parse_schedule(schedule)
    most = len(parsed.hours) * len(parsed.minutes) * 10  # more than a few days can hold
    runs = next_runs(parsed, start - timedelta(seconds=1), most, ZoneInfo(zone))
    return [r.astimezone(timezone.utc) for r in runs if r < end]


# --- the window and the runs ----------------------------------------------------------


def test_a_day_is_host_midnight_to_midnight_even_on_a_dst_day() -> None:
    spring = day_window(date(2026, 3, 29), 1, "Europe/Berlin")
    assert spring.start == datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc)
    assert spring.end - spring.start == timedelta(hours=23)
    autumn = day_window(date(2026, 10, 25), 1, "Europe/Berlin")
    assert autumn.end - autumn.start == timedelta(hours=25)
    week = day_window(date(2026, 1, 5), 7, "UTC")
    assert week.end - week.start == timedelta(days=7)


@pytest.mark.parametrize("days", [0, 8, -1])
def test_days_outside_one_to_seven_are_refused(days: int) -> None:
    with pytest.raises(ValueError, match="1 to 7"):
        day_window(date(2026, 1, 5), days, "UTC")


@pytest.mark.parametrize(
    ("schedule", "zone", "host", "day"),
    [
        ("30 2 * * *", "Europe/Berlin", "Europe/Berlin", date(2026, 3, 29)),  # gap: skipped
        ("30 1 * * *", "America/New_York", "UTC", date(2026, 11, 1)),  # repeated: once
        ("0 * * * *", "Europe/Berlin", "Europe/Berlin", date(2026, 3, 29)),  # 23 hours
        ("*/20 8-9 * * 1-5", "Asia/Tokyo", "UTC", date(2026, 1, 5)),
        ("0 8 1 * *", "Asia/Tokyo", "UTC", date(2026, 1, 31)),  # the 1st in Tokyo
        ("* * * * *", "UTC", "UTC", date(2026, 1, 5)),
    ],
)
def test_runs_between_are_the_schedules_next_runs(
    schedule: str, zone: str, host: str, day: date
) -> None:
    window = day_window(day, 2, host)
    found = runs_between(parse_schedule(schedule), ZoneInfo(zone), window.start, window.end)
    assert found == expected_runs(schedule, zone, window.start, window.end)


def test_a_spring_forward_gap_run_is_not_drawn() -> None:
    window = day_window(date(2026, 3, 29), 1, "Europe/Berlin")
    timeline = scheduled_timeline({"gap": job("30 2 * * *", "Europe/Berlin")}, window)
    assert timeline.lanes[0].runs == ()
    hourly = scheduled_timeline({"h": job("0 * * * *", "Europe/Berlin")}, window)
    assert len(hourly.lanes[0].runs) == 23


def test_disabled_other_host_and_reboot_jobs_are_left_out_with_their_reason() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    jobs = {
        "a": job("0 3 * * *"),
        "off": job("0 3 * * *", installed=False, status="disabled: migrating"),
        "far": job("0 3 * * *", installed=False, status="not targeted at host web1"),
        "boot": job("@reboot"),
    }
    timeline = scheduled_timeline(jobs, window)
    assert [lane.job for lane in timeline.lanes] == ["a"]
    assert {(o.job, o.reason) for o in timeline.left_out} == {
        ("off", "disabled: migrating"),
        ("far", "not targeted at host web1"),
        ("boot", "@reboot: runs only when cron starts"),
    }


def test_a_timeout_longer_than_the_gap_is_an_overlap() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    slow = scheduled_timeline({"slow": job("0 */2 * * *", timeout=3 * 3600)}, window)
    assert slow.lanes[0].overlaps == tuple(range(1, 12))  # every run but the first
    quick = scheduled_timeline({"quick": job("0 */2 * * *", timeout=3600)}, window)
    assert quick.lanes[0].overlaps == ()
    unknown = scheduled_timeline({"unknown": job("* * * * *")}, window)
    assert unknown.lanes[0].overlaps == ()


def test_history_draws_recorded_runs_in_the_window_with_their_durations() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    at = window.start + timedelta(hours=3)
    runs = {
        "a": [
            Run(at, 7200.0, "succeeded"),
            Run(at + timedelta(hours=1), 60.0, "failed"),  # starts while the first runs
            Run(window.start - timedelta(hours=1), 5.0, "succeeded"),  # before the day
        ]
    }
    timeline = history_timeline({"a": job("0 3 * * *"), "b": job("0 4 * * *")}, runs, window)
    assert timeline.source == "history"
    lane = {lane.job: lane for lane in timeline.lanes}
    assert [r.start for r in lane["a"].runs] == [at, at + timedelta(hours=1)]
    assert lane["a"].overlaps == (1,)
    assert lane["b"].runs == ()


# --- slots and load ----------------------------------------------------------------------


def test_the_slot_is_the_smallest_that_fits_the_columns() -> None:
    day = day_window(date(2026, 1, 5), 1, "UTC")
    assert choose_slot_minutes(day, 200) == 10
    assert choose_slot_minutes(day, 100) == 15
    assert choose_slot_minutes(day, 60) == 30
    week = day_window(date(2026, 1, 5), 7, "UTC")
    assert choose_slot_minutes(week, 60) > 30
    assert choose_slot_minutes(week, 1) == 360  # nothing fits: the widest slot


def test_cells_count_starts_mark_running_and_overlapping_slots() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    timeline = scheduled_timeline({"s": job("0 1,2 * * *", timeout=5400)}, window)
    cells = lane_cells(timeline.lanes[0], window, 30)
    assert cells.starts[2] == 1 and cells.starts[4] == 1
    assert cells.busy[3] and cells.busy[4] and cells.busy[6] and not cells.busy[7]
    assert cells.overlap[4] and not cells.overlap[2]
    every = scheduled_timeline({"m": job("* * * * *")}, window)
    assert set(lane_cells(every.lanes[0], window, 10).starts) == {10}


def test_load_counts_jobs_starting_per_slot() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    jobs = {"a": job("0 3 * * *"), "b": job("5 3 * * *"), "c": job("*/5 * * * *")}
    timeline = scheduled_timeline(jobs, window)
    load = load_per_slot(timeline, 15)
    assert load[12] == ("a", "b", "c")  # 03:00-03:15
    assert load[13] == ("c",)
    assert len(load) == 96


# --- renderings ------------------------------------------------------------------------


def week_of_jobs() -> tuple[Any, dict[str, Any]]:
    jobs = {
        "backup": job("30 2 * * *", "Europe/Berlin", timeout=3600),
        "feed-tokyo": job("0 8 * * 1-5", "Asia/Tokyo"),
        "every-minute": job("* * * * *"),
        "slow": job("0 */2 * * *", timeout=3 * 3600),
        "off": job("0 3 * * *", installed=False, status="disabled: retired"),
    }
    return day_window(date(2026, 3, 27), 3, "Europe/Berlin"), jobs


def test_svg_parses_and_its_marks_are_the_next_runs() -> None:
    window, jobs = week_of_jobs()
    timeline = scheduled_timeline(jobs, window)
    svg = render_svg(timeline)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    lanes = {g.get("data-job"): g for g in root.iter(f"{SVG}g") if g.get("class") == "lane"}
    assert set(lanes) == {"backup", "feed-tokyo", "every-minute", "slow"}
    for name, lane in lanes.items():
        starts: list[datetime] = []
        counted = 0
        for mark in lane.iter(f"{SVG}rect"):
            if mark.get("class", "").split()[0] == "run":
                starts.append(datetime.fromisoformat(str(mark.get("data-start"))))
            elif mark.get("class") == "runs":
                assert int(str(mark.get("data-count"))) > AGGREGATE_ABOVE
                counted += int(str(mark.get("data-count")))
        expected = expected_runs(
            jobs[name]["schedule"], jobs[name]["timezone"], window.start, window.end
        )
        if name == "every-minute":
            assert starts == [] and counted == len(expected)
        else:
            assert starts == expected, name
        assert jobs[name]["timezone"] in "".join(lane.itertext())
    overlaps = [m for m in root.iter(f"{SVG}rect") if "overlap" in m.get("class", "").split()]
    assert {m.get("data-job") for m in overlaps} == {"slow"}
    busiest = [t for t in root.iter(f"{SVG}text") if t.get("class") == "busiest"]
    assert busiest and "every-minute" in "".join(busiest[0].itertext())
    assert "1 job left out" in svg
    assert render_svg(timeline) == svg  # deterministic


def test_svg_stays_bounded_for_a_job_running_every_minute_for_a_week() -> None:
    window = day_window(date(2026, 1, 5), 7, "UTC")
    timeline = scheduled_timeline({"m": job("* * * * *"), "n": job("*/2 * * * *")}, window)
    svg = render_svg(timeline)
    assert len(svg) < 600_000
    root = ET.fromstring(svg)
    assert (
        sum(
            int(str(m.get("data-count")))
            for m in root.iter(f"{SVG}rect")
            if m.get("class") == "runs"
        )
        == 7 * 1440 + 7 * 720
    )


def test_svg_escapes_names() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    svg = render_svg(scheduled_timeline({'a<&>"b': job("0 3 * * *")}, window))
    root = ET.fromstring(svg)
    assert any(g.get("data-job") == 'a<&>"b' for g in root.iter(f"{SVG}g"))


def test_text_has_a_row_per_job_fits_the_width_and_aggregates() -> None:
    window, jobs = week_of_jobs()
    timeline = scheduled_timeline(jobs, window)
    text = render_text(timeline, width=120, colour=False)
    lines = text.splitlines()
    assert all(len(line) <= 120 for line in lines)
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in jobs}
    assert set(rows) == {"backup", "feed-tokyo", "every-minute", "slow"}
    assert "Asia/Tokyo" in rows["feed-tokyo"]
    assert "#" in rows["every-minute"]  # ten or more starts in a column
    assert "!" in rows["slow"]
    assert any(line.startswith("load") for line in lines)
    assert any(line.startswith("busiest") for line in lines)
    assert "1 job left out (disabled: off)" in text
    assert "\x1b[" not in text
    assert "\x1b[" in render_text(timeline, width=120, colour=True)


def test_text_columns_match_the_runs() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    timeline = scheduled_timeline({"three": job("0 3 * * *"), "four": job("0 4,5 * * *")}, window)
    text = render_text(timeline, width=160, colour=False)  # 10-minute columns
    rows = {
        line.split()[0]: line for line in text.splitlines() if line[:5].strip() in ("three", "four")
    }
    first = text.splitlines()[1].index("|") + 1  # the hour ruler marks the first column
    assert rows["three"][first + 18] == "1"
    assert rows["three"][first:].replace(".", "").strip() == "1"
    assert rows["four"][first + 24] == "1" and rows["four"][first + 30] == "1"


def test_json_lists_runs_load_and_left_out() -> None:
    window, jobs = week_of_jobs()
    document = timeline_json(scheduled_timeline(jobs, window), 15)
    assert document["format"] == "cronsync.timeline/1"
    by_name = {j["name"]: j for j in document["jobs"]}
    expected = expected_runs("30 2 * * *", "Europe/Berlin", window.start, window.end)
    assert [r["start"] for r in by_name["backup"]["runs"]] == [
        r.astimezone(ZoneInfo("Europe/Berlin")).isoformat() for r in expected
    ]
    assert by_name["slow"]["overlaps"] > 0
    assert document["left_out"] == [{"job": "off", "reason": "disabled: retired"}]
    assert document["busiest"][0]["jobs"] >= document["busiest"][-1]["jobs"]


def test_busiest_slots_name_only_where_jobs_meet() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    jobs = {"a": job("0 3 * * *"), "b": job("5 3 * * *"), "c": job("0 * * * *")}
    load = load_per_slot(scheduled_timeline(jobs, window), 15)
    assert busiest_slots(load) == [12]  # 03:00: a, b and c; elsewhere c alone
    alone = load_per_slot(scheduled_timeline({"c": jobs["c"]}, window), 15)
    assert busiest_slots(alone) == []


def test_a_zone_with_the_hosts_clock_is_not_shown() -> None:
    window = day_window(date(2026, 1, 5), 1, "Etc/UTC")
    timeline = scheduled_timeline(
        {"a": job("0 3 * * *", "UTC"), "b": job("0 3 * * *", "Europe/London")}, window
    )
    text = render_text(timeline, width=120, colour=False)
    assert "a (UTC)" not in text
    assert "b (Europe/London)" in text  # the same in winter, not in summer


def test_a_recorded_run_going_at_midnight_is_drawn_from_the_left_edge() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    night = Run(window.start - timedelta(minutes=30), 5400.0, "succeeded")
    timeline = history_timeline({"a": job("30 23 * * *")}, {"a": [night]}, window)
    assert timeline.lanes[0].runs == (night,)
    cells = lane_cells(timeline.lanes[0], window, 30)
    assert cells.starts[0] == 0 and cells.busy[:3] == (True, True, False)
    assert load_per_slot(timeline, 30)[0] == ()
    ET.fromstring(render_svg(timeline))


def test_nothing_to_draw_still_renders() -> None:
    window = day_window(date(2026, 1, 5), 1, "UTC")
    timeline = scheduled_timeline({}, window)
    assert "no job to draw" in render_text(timeline, width=80, colour=False)
    assert ET.fromstring(render_svg(timeline)).tag == f"{SVG}svg"
    assert timeline_json(timeline, 10)["jobs"] == []
