"""The agent's side of the fleet view without AWS: what it says its interval is, which
fetch it reports, its one-host jobs, and a summary it cannot compute (said once, never
raised, nothing written). The writer's own failures are tested against moto
(tests/integration/test_fleet.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from cronsync.agent.fleetstatus import (
    FleetStatus,
    FleetWriter,
    due_within,
    last_fetch,
    one_host_jobs,
)
from cronsync.core.state import AgentState, SyncRecord
from cronsync.host.config import AgentSettings, parse_config
from helpers.sandbox import agent_toml


def record(started: str, result: str, commit: Optional[str]) -> SyncRecord:
    return SyncRecord(started, started, result, commit, "")


def test_the_interval_grows_as_the_agent_backs_off() -> None:
    pace = AgentSettings(interval=60, splay=10, max_backoff=900)
    assert due_within(pace, 0) == 70
    assert due_within(pace, 2) == 250  # 60 s doubled twice, and the splay
    assert due_within(pace, 12) == 910  # never more than max_backoff, and the splay


def test_the_fetch_reported_is_the_newest_that_saw_a_commit() -> None:
    state = AgentState()
    assert last_fetch(state) == (None, None)
    state.record(record("2026-12-07T10:00:00+00:00", "installed", "a" * 40))
    state.record(record("2026-12-07T10:01:00+00:00", "refused", "b" * 40))
    state.record(record("2026-12-07T10:02:00+00:00", "failed", None))  # remote down
    assert last_fetch(state) == ("b" * 40, "2026-12-07T10:01:00+00:00")


def test_one_host_jobs_are_the_installed_ones() -> None:
    jobs: dict[str, Any] = {
        "jobs": {
            "report": {"installed": True, "run_on": "one-host"},
            "elsewhere": {"installed": False, "run_on": "one-host"},
            "everywhere": {"installed": True, "run_on": "every-host"},
            "older-release": {"installed": True},
            "audit": {"installed": True, "run_on": "one-host"},
        }
    }
    assert one_host_jobs(jobs) == ("audit", "report")
    assert one_host_jobs(None) == ()


def test_a_summary_that_cannot_be_computed_is_said_once_and_nothing_is_written() -> None:
    lines: list[str] = []
    made: list[Any] = []

    def broken_jobs(_config: Any) -> Any:
        raise ValueError("bad jobs.json")

    writer = FleetWriter(lines.append, make_client=made.append)
    status = FleetStatus(lines.append, broken_jobs, writer)
    extra = '[fleet]\ntable = "cronsync-fleet"\n'
    config = parse_config(
        Path("/srv/agent.toml"), agent_toml("/srv/jobs.git", Path("/srv/host"), extra)
    )
    status.cycle(config, 0)
    status.cycle(config, 1)
    assert lines == ["fleet: status not computed: ValueError: bad jobs.json"]
    status.stop(1)
    assert (writer.written, writer.failed, made) == (0, 0, [])


def test_without_a_table_nothing_is_computed() -> None:
    def never(_config: Any) -> Any:
        raise AssertionError("computed without a [fleet] table")

    status = FleetStatus(lambda line: None, never)
    config = parse_config(Path("/srv/agent.toml"), agent_toml("/srv/jobs.git", Path("/srv/host")))
    status.cycle(config, 0)
