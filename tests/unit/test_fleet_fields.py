"""A job's fleet fields (``run_on``, ``fleet_unreachable``): parsed, checked, compiled."""

from __future__ import annotations

from typing import Optional

import pytest

from cronsync.core.compiled import compile_job
from cronsync.core.manifest import SourceFile, parse_job
from cronsync.core.model import ERROR, WARNING, Defaults, HostContext, Job, Problem
from cronsync.core.validate import validate_job

PATH = "jobs/report.toml"
BASE = (
    'description = "Daily report"\n'
    'owner = "data-team@example.com"\n'
    'schedule = "30 3 * * *"\n'
    'user = "batch"\n'
    'command = ["scripts/report.sh"]\n'
    'timezone = "Asia/Tokyo"\n'
)


def parse(extra: str, base: str = BASE) -> tuple[Optional[Job], list[Problem]]:
    return parse_job(SourceFile(PATH, base + extra), Defaults())


def parsed(extra: str, base: str = BASE) -> Job:
    job, problems = parse(extra, base)
    assert problems == [], [p.format() for p in problems]
    assert job is not None
    return job


def test_defaults_are_every_host_and_skip() -> None:
    job = parsed("")
    assert (job.run_on, job.fleet_unreachable) == ("every-host", "skip")
    assert validate_job(job) == []


def test_one_host_and_run_are_read() -> None:
    job = parsed('run_on = "one-host"\nfleet_unreachable = "run"\n')
    assert (job.run_on, job.fleet_unreachable) == ("one-host", "run")
    assert validate_job(job) == []


@pytest.mark.parametrize(
    ("extra", "field", "line"),
    [
        ('run_on = "all-hosts"\n', "run_on", 7),
        ('fleet_unreachable = "retry"\n', "fleet_unreachable", 7),
    ],
)
def test_unknown_choice_is_one_located_problem(extra: str, field: str, line: int) -> None:
    job, problems = parse(extra)
    assert job is None
    assert [(p.field, p.line) for p in problems] == [(field, line)]


def test_one_host_with_replace_is_refused_with_the_reason() -> None:
    job = parsed('run_on = "one-host"\nconcurrency = "replace"\n')
    [problem] = validate_job(job)
    assert (problem.field, problem.line, problem.severity) == ("concurrency", 8, ERROR)
    assert "another host" in problem.message and "forbid" in problem.message


def test_one_host_at_reboot_is_refused() -> None:
    base = BASE.replace('"30 3 * * *"', '"@reboot"')
    job = parsed('run_on = "one-host"\n', base)
    [problem] = validate_job(job)
    assert (problem.field, problem.line) == ("run_on", 7)
    assert "@reboot" in problem.message


def test_one_host_in_the_hosts_zone_is_refused() -> None:
    """Hosts in different zones would name different occurrences of "30 3 * * *"."""
    job = parsed('run_on = "one-host"\n', BASE.replace('timezone = "Asia/Tokyo"\n', ""))
    [problem] = validate_job(job)
    assert (problem.field, problem.line, problem.severity) == ("run_on", 6, ERROR)
    assert "zone" in problem.message
    with_default = parse_job(
        SourceFile(PATH, BASE.replace('timezone = "Asia/Tokyo"\n', "") + 'run_on = "one-host"\n'),
        Defaults(timezone="Europe/Berlin"),
    )[0]
    assert with_default is not None and validate_job(with_default) == []


def test_fleet_unreachable_without_one_host_is_a_warning() -> None:
    job = parsed('fleet_unreachable = "run"\n')
    [problem] = validate_job(job)
    assert (problem.field, problem.severity) == ("fleet_unreachable", WARNING)
    assert "one-host" in problem.message


def test_jobs_json_carries_both_fields() -> None:
    job = parsed('run_on = "one-host"\nfleet_unreachable = "run"\n')
    record = compile_job(job, HostContext("batch-1"), None)
    assert (record["run_on"], record["fleet_unreachable"]) == ("one-host", "run")
    assert compile_job(parsed(""), HostContext("batch-1"), None)["run_on"] == "every-host"


def test_a_one_host_job_in_a_fleet_is_not_stale_on_a_host_that_never_runs_it() -> None:
    from datetime import datetime, timezone

    from cronsync.core.health import stale_jobs

    job = {"installed": True, "stale_window": {"seconds": 3600, "source": "schedule"}}
    long_ago, now = "2026-01-01T00:00:00Z", datetime(2026, 12, 7, tzinfo=timezone.utc)
    fleet = {"settings": {"fleet": {"table": "cronsync-fleet"}}}
    alone = {"settings": {"fleet": {"table": None}}}
    one_host = {"report": {**job, "run_on": "one-host"}, "plain": job}
    assert set(stale_jobs({**fleet, "jobs": one_host}, {}, long_ago, now)) == {"plain"}
    assert set(stale_jobs({**alone, "jobs": one_host}, {}, long_ago, now)) == {"report", "plain"}
