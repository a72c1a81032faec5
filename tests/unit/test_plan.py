"""What a sync would change, drift, durations, the agent's memory and its views.

Covers ``cronsync.core.plan``, ``cronsync.core.drift``, ``cronsync.core.durations``,
``cronsync.core.state.AgentState`` and ``cronsync.core.views``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronsync.core.compiled import compile_jobs
from cronsync.core.drift import CRON_FILE, CURRENT, RELEASE, DriftFinding, Observed, find_drift
from cronsync.core.durations import MAX_SECONDS, format_duration, parse_duration
from cronsync.core.model import Defaults, HostContext, Job, JobRepo
from cronsync.core.plan import (
    ADDED,
    CHANGED,
    REMOVED,
    FieldChange,
    JobChange,
    cron_diff,
    diff_jobs,
    upcoming_runs,
)
from cronsync.core.render import SourceInfo, plan_entries
from cronsync.core.state import (
    FAILED,
    HISTORY_LENGTH,
    INSTALLED,
    REFUSED,
    UNCHANGED,
    AgentState,
    Installed,
    SyncRecord,
)
from cronsync.core.views import change_json, health, plan_text, status_document, status_text
from cronsync.host.statefile import load_state, save_state

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)
HOST = HostContext("batch-1", timezone="UTC")
SOURCE = SourceInfo("https://git.example.com/jobs.git", "main", "a" * 40)


def make_job(name: str, **changes: Any) -> Job:
    job = Job(
        name=name,
        file=f"jobs/{name}.toml",
        description=f"the {name} job",
        owner="ops",
        schedule="30 3 * * *",
        user="batch",
        command=(f"scripts/{name}.sh",),
    )
    return dataclasses.replace(job, **changes)


def compiled(*jobs: Job, host: HostContext = HOST) -> dict[str, Any]:
    repo = JobRepo(Defaults(), tuple(jobs))
    entries, problems = plan_entries(repo, host, NOW)
    assert problems == []
    return compile_jobs(repo, host, SOURCE, entries, {})


# --- diff_jobs ----------------------------------------------------------------------


def test_everything_added_when_nothing_is_installed() -> None:
    new = compiled(make_job("b"), make_job("a"))
    assert diff_jobs(None, new) == [JobChange("a", ADDED), JobChange("b", ADDED)]
    assert diff_jobs({}, new) == [JobChange("a", ADDED), JobChange("b", ADDED)]


@pytest.mark.parametrize("old", [{"format": 1}, {"jobs": []}, {"jobs": "x"}, {"jobs": None}])
def test_foreign_old_document_counts_as_nothing_installed(old: dict[str, Any]) -> None:
    assert diff_jobs(old, compiled(make_job("a"))) == [JobChange("a", ADDED)]


def test_identical_documents_have_no_changes() -> None:
    assert diff_jobs(compiled(make_job("a")), compiled(make_job("a"))) == []


def test_removed_and_added_and_changed_sorted_by_name() -> None:
    old = compiled(make_job("keep"), make_job("gone"), make_job("edit"))
    new = compiled(
        make_job("keep"), make_job("edit", schedule="45 4 * * *", owner="data"), make_job("fresh")
    )
    changes = diff_jobs(old, new)
    assert [(c.name, c.kind) for c in changes] == [
        ("edit", CHANGED),
        ("fresh", ADDED),
        ("gone", REMOVED),
    ]
    assert changes[0].fields == (
        FieldChange("cron", ["30 3 * * *"], ["45 4 * * *"]),
        FieldChange("owner", "ops", "data"),
        FieldChange("schedule", "30 3 * * *", "45 4 * * *"),
    )


def test_disabling_a_job_is_a_change_of_installed_and_status() -> None:
    old = compiled(make_job("a"))
    new = compiled(make_job("a", enabled=False, reason="retired"))
    (change,) = diff_jobs(old, new)
    fields = {item.field: (item.old, item.new) for item in change.fields}
    assert fields["installed"] == (True, False)
    assert fields["enabled"] == (True, False)
    assert fields["status"] == ("installed", "disabled: retired")
    assert fields["cron"] == (["30 3 * * *"], [])


def test_a_field_present_on_one_side_only_is_a_change() -> None:
    old = {"jobs": {"a": {"name": "a", "schedule": "x"}}}
    new = {"jobs": {"a": {"name": "a", "schedule": "x", "timeout": 60}}}
    assert diff_jobs(old, new) == [JobChange("a", CHANGED, (FieldChange("timeout", None, 60),))]


def test_the_name_field_is_ignored() -> None:
    old = {"jobs": {"a": {"name": "a"}}}
    new = {"jobs": {"a": {"name": "renamed"}}}
    assert diff_jobs(old, new) == []


# --- cron_diff ----------------------------------------------------------------------

OLD_CRON = "# head\nSHELL=/bin/sh\n30 3 * * * batch /shim a\n"
NEW_CRON = "# head\nSHELL=/bin/sh\n45 4 * * * batch /shim a\n"


def test_cron_diff_empty_when_same() -> None:
    assert cron_diff(OLD_CRON, OLD_CRON, "/etc/cron.d/cronsync") == ""
    assert cron_diff(None, "", "/etc/cron.d/cronsync") == ""


def test_cron_diff_is_a_unified_diff() -> None:
    diff = cron_diff(OLD_CRON, NEW_CRON, "/etc/cron.d/cronsync")
    lines = diff.splitlines()
    assert lines[0] == "--- /etc/cron.d/cronsync (installed)"
    assert lines[1] == "+++ /etc/cron.d/cronsync (after sync)"
    assert "-30 3 * * * batch /shim a" in lines
    assert "+45 4 * * * batch /shim a" in lines
    assert " SHELL=/bin/sh" in lines


def test_cron_diff_from_nothing_adds_every_line() -> None:
    diff = cron_diff(None, NEW_CRON, "/etc/cron.d/cronsync")
    added = [
        line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")
    ]
    assert added == ["+" + line for line in NEW_CRON.splitlines()]


# --- upcoming_runs ------------------------------------------------------------------


def test_upcoming_runs_in_job_zone_and_host_time() -> None:
    doc = compiled(make_job("tokyo", timezone="Asia/Tokyo"))
    runs = upcoming_runs(doc["jobs"]["tokyo"], "UTC", NOW, count=3)
    assert [run.job_time.isoformat() for run in runs] == [
        "2025-06-16T03:30:00+09:00",
        "2025-06-17T03:30:00+09:00",
        "2025-06-18T03:30:00+09:00",
    ]
    assert [run.host_time.isoformat() for run in runs] == [
        "2025-06-15T18:30:00+00:00",
        "2025-06-16T18:30:00+00:00",
        "2025-06-17T18:30:00+00:00",
    ]
    assert all(run.job_time == run.host_time for run in runs)


def test_upcoming_runs_default_count_and_strictly_after_now() -> None:
    doc = compiled(make_job("m", schedule="0 12 * * *"))
    runs = upcoming_runs(doc["jobs"]["m"], "Europe/Paris", NOW)
    assert len(runs) == 3
    assert runs[0].job_time == NOW + timedelta(days=1)
    assert runs[0].host_time.isoformat() == "2025-06-16T14:00:00+02:00"


@pytest.mark.parametrize(
    "record",
    [
        {"installed": False, "schedule": "* * * * *", "timezone": "UTC"},
        {"schedule": "* * * * *", "timezone": "UTC"},
        {"installed": True, "schedule": "@reboot", "timezone": "UTC"},
        {"installed": True, "schedule": "61 * * * *", "timezone": "UTC"},
        {"installed": True, "schedule": "* * * * *", "timezone": "Nowhere/City"},
        {"installed": True, "schedule": "* * * * *", "timezone": None},
        {"installed": True, "timezone": "UTC"},
        {"installed": True, "schedule": "* * * * *"},
    ],
)
def test_no_upcoming_runs(record: dict[str, Any]) -> None:
    assert upcoming_runs(record, "UTC", NOW) == []


def test_upcoming_runs_with_unknown_host_zone() -> None:
    record = {"installed": True, "schedule": "* * * * *", "timezone": "UTC"}
    assert upcoming_runs(record, "Nowhere/City", NOW) == []


# --- drift --------------------------------------------------------------------------

INSTALLED_RECORD = Installed(
    commit="c" * 40,
    release="c" * 40 + "-1",
    at="2025-06-15T12:00Z",
    cron_sha256="f" * 64,
    config_digest="d" * 16,
)
CLEAN = Observed(
    cron_sha256="f" * 64, current_target=f"releases/{'c' * 40}-1", release_complete=True
)


def test_no_drift_when_the_host_is_as_left() -> None:
    assert find_drift(INSTALLED_RECORD, CLEAN) == []


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (
            dataclasses.replace(CLEAN, cron_sha256=None),
            [(CRON_FILE, "the managed cron file was deleted")],
        ),
        (
            dataclasses.replace(CLEAN, cron_sha256="0" * 64),
            [(CRON_FILE, "the managed cron file was edited by hand")],
        ),
        (
            dataclasses.replace(CLEAN, current_target=None),
            [(CURRENT, "the 'current' link is missing")],
        ),
        (
            dataclasses.replace(CLEAN, current_target="releases/other"),
            [(CURRENT, f"'current' points to releases/other, not releases/{'c' * 40}-1")],
        ),
        (
            dataclasses.replace(CLEAN, release_complete=False),
            [(RELEASE, f"release {'c' * 40}-1 is missing or incomplete")],
        ),
        (
            Observed(None, None, False),
            [
                (CRON_FILE, "the managed cron file was deleted"),
                (CURRENT, "the 'current' link is missing"),
            ],
        ),
        (
            Observed("0" * 64, "releases/other", False),
            [
                (CRON_FILE, "the managed cron file was edited by hand"),
                (CURRENT, f"'current' points to releases/other, not releases/{'c' * 40}-1"),
            ],
        ),
    ],
)
def test_drift_findings(observed: Observed, expected: list[tuple[str, str]]) -> None:
    findings = find_drift(INSTALLED_RECORD, observed)
    assert [(f.what, f.message) for f in findings] == expected
    assert [f.as_dict() for f in findings] == [{"what": w, "message": m} for w, m in expected]


# --- durations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("0s", 0),
        ("90s", 90),
        ("45m", 2700),
        ("26h", 93600),
        ("2d", 172800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1H30M", 5400),
        (" 1h 30m ", 5400),
        ("1w2d3h4m5s", 788645),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", " ", "45", "45 minutes", "m", "-5m", "1.5h", "1h30", "h1", "1y", "1hh", "0x10s", "∞"],
)
def test_bad_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration(text)
    assert '"45m"' in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-5, "0s"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (5400, "1h30m"),
        (86400, "1d"),
        (93600, "1d2h"),
        (604800, "7d"),
        (90061, "1d1h1m1s"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=MAX_SECONDS))
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["3661d", "99999999999999w", "٣m"])
def test_durations_beyond_ten_years_or_with_foreign_digits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|ten years"):
        parse_duration(text)


# --- AgentState.record --------------------------------------------------------------


def record(result: str, at: int, commit: Optional[str] = "c" * 40) -> SyncRecord:
    stamp = f"2025-06-15T12:{at // 60:02d}:{at % 60:02d}Z"
    return SyncRecord(
        started=stamp, finished=stamp, result=result, commit=commit, message=f"{result} #{at}"
    )


def test_record_remembers_last_sync_and_last_success() -> None:
    state = AgentState()
    state.record(record(INSTALLED, 1))
    assert state.last_sync == record(INSTALLED, 1)
    assert state.last_success == record(INSTALLED, 1).finished
    state.record(record(FAILED, 2))
    assert state.last_sync == record(FAILED, 2)
    assert state.last_success == record(INSTALLED, 1).finished  # a failure is not a success
    state.record(record(REFUSED, 3))
    assert state.last_success == record(INSTALLED, 1).finished
    state.record(record(UNCHANGED, 4))
    assert state.last_success == record(UNCHANGED, 4).finished


def test_unchanged_cycles_collapse_into_one_history_entry() -> None:
    state = AgentState()
    state.record(record(INSTALLED, 1))
    for at in range(2, 30):
        state.record(record(UNCHANGED, at))
    assert [item.result for item in state.history] == [INSTALLED, UNCHANGED]
    assert state.history[-1] == record(UNCHANGED, 29)  # the newest no-op is kept
    state.record(record(FAILED, 30))
    state.record(record(UNCHANGED, 31))
    state.record(record(UNCHANGED, 32))
    assert [item.result for item in state.history] == [INSTALLED, UNCHANGED, FAILED, UNCHANGED]
    assert state.history[-1].message == "unchanged #32"


def test_failures_do_not_collapse() -> None:
    state = AgentState()
    for at in range(5):
        state.record(record(FAILED, at))
    assert len(state.history) == 5


def test_history_is_bounded_and_keeps_the_newest() -> None:
    state = AgentState()
    total = HISTORY_LENGTH * 2 + 7
    for at in range(total):
        state.record(record(INSTALLED if at % 2 else FAILED, at))
    assert len(state.history) == HISTORY_LENGTH
    assert state.history[-1] == record(INSTALLED if (total - 1) % 2 else FAILED, total - 1)
    assert state.history[0].message.endswith(f"#{total - HISTORY_LENGTH}")


def test_sync_record_ok() -> None:
    assert record(INSTALLED, 1).ok and record(UNCHANGED, 1).ok
    assert not record(FAILED, 1).ok and not record(REFUSED, 1).ok


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    state = AgentState(installed=INSTALLED_RECORD, drift=[{"what": "cron-file", "message": "m"}])
    failed = dataclasses.replace(
        record(FAILED, 2),
        errors=({"file": "jobs/a.toml", "line": 3, "field": "schedule", "message": "bad"},),
        notes=("retrying",),
    )
    state.record(record(INSTALLED, 1))
    state.record(failed)
    path = tmp_path / "state.json"
    save_state(path, state)
    assert path.read_text().endswith("}\n")
    assert load_state(path) == state
    assert json.loads(path.read_text())["format"] == 1


@pytest.mark.parametrize(
    "content",
    [None, "", "not json", "[]", '{"format": 99}', '{"format": 1, "history": "x", "installed": 5}'],
)
def test_missing_or_foreign_state_file_is_an_empty_state(
    tmp_path: Path, content: Optional[str]
) -> None:
    path = tmp_path / "state.json"
    if content is not None:
        path.write_text(content)
    loaded = load_state(path)
    assert loaded.installed is None
    assert loaded.last_sync is None
    assert loaded.drift == []


# --- views --------------------------------------------------------------------------


def healthy_state() -> AgentState:
    state = AgentState(installed=INSTALLED_RECORD)
    state.record(record(INSTALLED, 1))
    return state


def test_health() -> None:
    assert health(AgentState()) == "failed"
    state = healthy_state()
    assert health(state) == "ok"
    state.record(record(UNCHANGED, 2))
    assert health(state) == "ok"
    state.record(record(FAILED, 3))
    assert health(state) == "degraded"
    state.record(record(UNCHANGED, 4))
    assert health(state) == "ok"
    state.drift = [{"what": CRON_FILE, "message": "edited"}]
    assert health(state) == "degraded"
    nothing = AgentState()
    nothing.record(record(FAILED, 1))
    assert health(nothing) == "failed"


def status_for(state: AgentState, doc: Optional[dict[str, Any]]) -> dict[str, Any]:
    return status_document("batch-1", "UTC", SOURCE.url, "main", state, doc, NOW)


def test_status_document_shape() -> None:
    doc = compiled(
        make_job("z-tokyo", timezone="Asia/Tokyo"),
        make_job("a-retired", enabled=False, reason="replaced"),
        make_job("m-boot", schedule="@reboot"),
    )
    status = status_for(healthy_state(), doc)
    assert list(status) == [
        "status_format",
        "host",
        "host_timezone",
        "repo",
        "branch",
        "health",
        "agent",
        "installed",
        "last_sync",
        "last_success",
        "drift",
        "state_problem",
        "stale_jobs",
        "unmanaged_entries",
        "jobs",
    ]
    assert status["status_format"] == 1
    assert status["health"] == "ok"
    assert status["installed"] == {
        "commit": INSTALLED_RECORD.commit,
        "release": INSTALLED_RECORD.release,
        "at": INSTALLED_RECORD.at,
    }
    assert status["last_sync"]["result"] == INSTALLED
    assert [job["name"] for job in status["jobs"]] == ["a-retired", "m-boot", "z-tokyo"]
    tokyo = status["jobs"][2]
    assert tokyo == {
        "name": "z-tokyo",
        "schedule": "30 3 * * *",
        "timezone": "Asia/Tokyo",
        "user": "batch",
        "owner": "ops",
        "installed": True,
        "status": "installed",
        "cron": ["30 18 * * *"],
        "gated": False,
        "next_run": "2025-06-16T03:30:00+09:00",
        "next_run_host": "2025-06-15T18:30:00+00:00",
        "last_run": None,
        "last_success": None,
        "stale": False,
        "stale_window": None,  # compiled without a moment: no window from the schedule
    }
    retired, boot = status["jobs"][0], status["jobs"][1]
    assert (retired["installed"], retired["next_run"], retired["status"]) == (
        False,
        None,
        "disabled: replaced",
    )
    assert (boot["installed"], boot["next_run"], boot["cron"]) == (True, None, ["@reboot"])
    json.dumps(status)  # JSON-ready


def test_status_document_with_nothing_known() -> None:
    status = status_for(AgentState(), None)
    assert status["health"] == "failed"
    assert status["installed"] is None and status["last_sync"] is None
    assert status["jobs"] == []


def test_status_text() -> None:
    state = AgentState(
        installed=INSTALLED_RECORD,
        drift=[{"what": CRON_FILE, "message": "the managed cron file was edited by hand"}],
    )
    state.record(
        dataclasses.replace(
            record(FAILED, 5),
            message="validation failed",
            errors=(
                {"file": "jobs/a.toml", "line": 3, "field": "schedule", "message": "bad"},
                {"file": "jobs/b.toml", "line": None, "field": "", "message": "worse"},
            ),
            notes=("kept the last-known-good",),
        )
    )
    doc = compiled(
        make_job("nightly", timezone="Asia/Tokyo"),
        make_job("retired", enabled=False, reason="replaced by nightly " * 5),
    )
    text = status_text(status_for(state, doc))
    lines = text.split("\n")
    assert lines[0] == "host:       batch-1 (UTC)"
    assert lines[1] == "agent:      not running (no record)"
    assert lines[2] == f"repository: {SOURCE.url} branch main"
    assert lines[3] == "health:     degraded"
    assert lines[4] == f"installed:  {'c' * 12} at {INSTALLED_RECORD.at}"
    assert "last sync:  2025-06-15T12:00:05Z failed: validation failed" in lines
    assert "    jobs/a.toml:3: schedule: bad" in lines
    assert "    jobs/b.toml: worse" in lines
    assert "    note: kept the last-known-good" in lines
    assert "drift:      the managed cron file was edited by hand" in lines
    header = next(line for line in lines if line.startswith("JOB"))
    assert header.split() == [
        "JOB",
        "SCHEDULE",
        "ZONE",
        "USER",
        "NEXT",
        "RUN",
        "(job",
        "zone)",
        "LAST",
        "RUN",
        "LAST",
        "SUCCESS",
        "STALE",
        "AFTER",
    ]
    nightly = next(line for line in lines if line.startswith("nightly"))
    assert "2025-06-16 03:30" in nightly and nightly.split()[-4:] == ["never", "ran", "-", "-"]
    retired = next(line for line in lines if line.startswith("retired"))
    assert retired.endswith("…") and len(retired.split("  ")[-1].strip()) <= 48
    assert all(line == line.rstrip() for line in lines)


def test_status_text_with_nothing_installed() -> None:
    text = status_text(status_for(AgentState(), None))
    assert "installed:  nothing yet" in text
    assert "health:     failed" in text
    assert "JOB" not in text


def test_plan_text_without_changes() -> None:
    assert plan_text([], "", {}) == "No changes: the installed jobs already match."


def test_plan_text_with_changes_runs_and_diff() -> None:
    changes = [
        JobChange("a", ADDED),
        JobChange(
            "b",
            CHANGED,
            (
                FieldChange("schedule", "30 3 * * *", "45 4 * * *"),
                FieldChange("timeout", None, 60),
                FieldChange("hosts", ["x"], []),
            ),
        ),
        JobChange("c", REMOVED),
    ]
    runs = {
        "a": [{"job_time": "2025-06-16T03:30:00+09:00", "host_time": "2025-06-15T18:30:00+00:00"}]
    }
    diff = cron_diff(OLD_CRON, NEW_CRON, "/etc/cron.d/cronsync")
    text = plan_text(changes, diff, runs)
    lines = text.split("\n")
    assert lines[:7] == [
        "+ a (added)",
        "    next: 2025-06-16T03:30:00+09:00  (host 2025-06-15T18:30:00+00:00)",
        "~ b (changed)",
        "    schedule: '30 3 * * *' -> '45 4 * * *'",
        "    timeout: (unset) -> 60",
        "    hosts: ['x'] -> (unset)",
        "- c (removed)",
    ]
    assert lines[7] == ""
    assert "\n".join(lines[8:]) == diff.rstrip("\n")
    assert not text.endswith("\n")


def test_plan_text_with_only_a_cron_diff() -> None:
    diff = cron_diff(OLD_CRON, NEW_CRON, "/etc/cron.d/cronsync")
    assert plan_text([], diff, {}) == "\n" + diff.rstrip("\n")


def test_change_json() -> None:
    change = JobChange("b", CHANGED, (FieldChange("timeout", None, 60),))
    assert change_json(change) == {
        "name": "b",
        "kind": "changed",
        "fields": [{"field": "timeout", "old": None, "new": 60}],
    }
    assert change_json(JobChange("a", ADDED)) == {"name": "a", "kind": "added", "fields": []}


def test_drift_finding_dicts_feed_the_status() -> None:
    findings = find_drift(INSTALLED_RECORD, Observed(None, None, False))
    state = healthy_state()
    state.drift = [finding.as_dict() for finding in findings]
    status = status_for(state, None)
    assert status["health"] == "degraded"
    assert status["drift"] == [
        DriftFinding(CRON_FILE, "the managed cron file was deleted").as_dict(),
        DriftFinding(CURRENT, "the 'current' link is missing").as_dict(),
    ]
