"""The export's exactness judge: for the template's jobs and generated valid schedules in
zones with and without clock changes, the exported schedules fire when cronsync's own
``next_runs`` says, as read by independent evaluators of EventBridge's and Kubernetes'
semantics (tests/helpers/targetcron.py). Default: 150 schedules x 60 fire times (plus
the template's jobs x 500); ``--long``: 1,000 x 500.

Kubernetes differs in known ways, which the export must announce (``clock_change_notes``):
a time in a repeated (fall-back) hour runs twice there -- those second runs are set aside
only when a note named the job --; and in zones that change their clock at midnight or by
half an hour robfig's midnight correction skips or moves runs -- such a job is only
checked to carry the note.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronsync.core.errors import ScheduleError
from cronsync.core.manifest import parse_repo
from cronsync.core.schedule import parse_schedule
from cronsync.core.tzrender import next_runs
from cronsync.export.eventbridge import eventbridge_crons
from cronsync.export.kubeschedule import clock_change_notes, kubernetes_schedule
from cronsync.export.refusal import Unexportable
from cronsync.repo.files import read_repo
from helpers.targetcron import eventbridge_fires, parse_eventbridge, parse_robfig, robfig_fires

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"
ZONES = (
    "UTC",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute changes
    "America/Santiago",  # changes at midnight
)
# just before clock changes (spring and autumn, both hemispheres), and one quiet day
STARTS = tuple(
    datetime(*fields, tzinfo=timezone.utc)
    for fields in (
        (2026, 3, 7, 12),
        (2026, 3, 28, 12),
        (2026, 10, 24, 12),
        (2026, 10, 31, 12),
        (2026, 4, 4, 6),
        (2026, 10, 3, 6),
        (2026, 6, 15, 0),
    )
)
HORIZON = timedelta(days=366 * 25)  # robfig gives up after 5 years without a fire; none here


class Announced(Exception):
    """The export says Kubernetes runs this job differently (the note is the message)."""


def _item(rng: random.Random, low: int, high: int, names: tuple[str, ...]) -> str:
    kind = rng.randrange(7)
    a = rng.randint(low, high)
    b = rng.randint(a, high)

    def name(value: int) -> str:
        return names[value - low] if names and rng.random() < 0.5 else str(value)

    if kind == 0:
        return "*"
    if kind == 1:
        return f"*/{rng.randint(2, max(2, (high - low) // 2))}"
    if kind == 2:
        return f"{name(a)}-{name(b)}"
    if kind == 3:
        return f"{a}-{b}/{rng.randint(1, 9)}"
    return name(a)


def _field(rng: random.Random, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    items = [_item(rng, low, high, names) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
    if len(items) > 1 and "*" in items:
        return items[0]
    return ",".join(items)


def generated_schedules(count: int) -> Iterator[tuple[str, str]]:
    """``count`` valid (schedule, zone) pairs: names, ranges, steps, lists, both day fields."""
    rng = random.Random(20261207)
    months = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    days = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
    made = 0
    while made < count:
        minute = _field(rng, 0, 59) if rng.random() < 0.8 else str(rng.randint(0, 59))
        hour = (
            _field(rng, 0, 23)
            if rng.random() < 0.7
            else str(rng.choice((1, 2, 3, rng.randint(0, 23))))
        )
        dom = _field(rng, 1, 31) if rng.random() < 0.5 else "*"
        month = _field(rng, 1, 12, months) if rng.random() < 0.3 else "*"
        dow = _field(rng, 0, 6, days) if rng.random() < 0.5 else "*"
        text = f"{minute} {hour} {dom} {month} {dow}"
        try:
            parse_schedule(text)
        except ScheduleError:
            continue
        made += 1
        yield text, rng.choice(ZONES)


def _cases(long: bool) -> Iterator[tuple[str, str, datetime, int]]:
    config, files, _ = read_repo(TEMPLATE)
    repo, _ = parse_repo(config, files)
    for number, job in enumerate(sorted(repo.jobs, key=lambda j: j.name)):
        assert job.timezone is not None
        yield job.schedule, job.timezone, STARTS[number % len(STARTS)], 500
    count, fires = (1000, 500) if long else (150, 60)
    for number, (text, zone) in enumerate(generated_schedules(count)):
        yield text, zone, STARTS[number % len(STARTS)], fires


def _cronsync(text: str, zone: str, start: datetime, count: int) -> list[datetime]:
    runs = next_runs(parse_schedule(text), start, count, ZoneInfo(zone))
    return [run.astimezone(timezone.utc) for run in runs if run - start < HORIZON]


def _eventbridge(text: str, zone: str, start: datetime, count: int) -> list[datetime]:
    fires: list[datetime] = []
    for cron in eventbridge_crons(text):
        spec = parse_eventbridge(cron.expression)
        these = eventbridge_fires(spec, ZoneInfo(zone), start, start + HORIZON, cron.skip_days)
        for number, fire in enumerate(these):
            if number == count:
                break
            fires.append(fire)
    fires.sort()
    assert len(fires) == len(set(fires)), f"{text}: the two schedules fire at one time"
    return fires[:count]


def _kubernetes(text: str, zone: str, start: datetime, count: int) -> list[datetime]:
    spec = parse_robfig(kubernetes_schedule(text))
    notes = clock_change_notes(text, zone, start.year)
    if any("midnight" in note for note in notes):
        raise Announced(notes[0])
    fires: list[datetime] = []
    for fire in robfig_fires(spec, ZoneInfo(zone), start, start + HORIZON):
        if fire.astimezone(ZoneInfo(zone)).fold == 1:  # the second of a repeated hour
            assert notes, f"{text} in {zone}: a repeated-hour run nobody announced"
            continue
        fires.append(fire)
        if len(fires) == count:
            break
    return fires


def test_generated_schedules_cover_what_they_should() -> None:
    texts = [text for text, _ in generated_schedules(150)]
    assert len(set(texts)) > 140
    for needle in ("/", ",", "-", "mon", "jan"):
        assert any(needle in text for text in texts), needle
    both = [
        t for t in texts if not t.split()[2].startswith("*") and not t.split()[4].startswith("*")
    ]
    assert len(both) > 10  # cron's either-day-field rule gets exercised


@pytest.mark.parametrize("target", ["eventbridge", "kubernetes"])
def test_exported_schedules_fire_when_cronsync_would(
    target: str, request: pytest.FixtureRequest
) -> None:
    evaluate = _eventbridge if target == "eventbridge" else _kubernetes
    checked = refused = announced = 0
    for text, zone, start, count in _cases(bool(request.config.getoption("--long"))):
        try:
            got = evaluate(text, zone, start, count)
        except Announced:
            assert zone in ("Australia/Lord_Howe", "America/Santiago"), (text, zone)
            announced += 1
            continue
        except Unexportable as exc:
            refused += 1
            schedule = parse_schedule(text)
            # the only refusal for a valid timed schedule: cron ANDs two restricting day fields
            assert "BOTH" in exc.message or "characters" in exc.message, (text, exc.message)
            if "BOTH" in exc.message:  # cron's AND rule, with both fields really restricting
                assert not (schedule.dom_restricted and schedule.dow_restricted), text
                assert len(schedule.days_of_month) < 31 and len(schedule.days_of_week) < 7, text
            continue
        want = _cronsync(text, zone, start, count)
        assert got == want[: len(got)] and len(got) == len(want), (
            f"{target}: {text!r} in {zone} from {start:%Y-%m-%d}: "
            f"first difference {next(((g, w) for g, w in zip(got, want) if g != w), None)}"
        )
        checked += 1
    assert checked > 100 and refused < checked // 4 and announced < checked // 3, (
        checked,
        refused,
        announced,
    )


def test_the_midnight_note_is_needed() -> None:
    """Where the note is given, robfig really misplaces a run (so it is no idle warning)."""
    text, zone, start = (
        "0 8 1 * *",
        "Australia/Lord_Howe",
        datetime(2028, 6, 1, tzinfo=timezone.utc),
    )
    assert any("midnight" in note for note in clock_change_notes(text, zone, 2028))
    spec = parse_robfig(kubernetes_schedule(text))
    got = list(robfig_fires(spec, ZoneInfo(zone), start, start + timedelta(days=400)))
    assert got[:12] != _cronsync(text, zone, start, 12)
