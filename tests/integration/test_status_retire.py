"""``cronsync status`` names retirement candidates, and ``status --retire-candidates``
gives each one's evidence and the change that retires it. The run records are written
with the run store (the shim's own format) into the sandbox's runs folder."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from cronsync.run.record import RunRecord, iso_time
from cronsync.run.store import write_record
from helpers.sandbox import Sandbox

NOW = datetime.now(timezone.utc)


def record(sandbox: Sandbox, job: str, days_ago: float, status: str, output: int = 0) -> None:
    runs_dir = sandbox.config().paths.runs_dir
    (runs_dir / job).mkdir(parents=True, exist_ok=True)
    at = (NOW - timedelta(days=days_ago)).timestamp()
    run_id = datetime.fromtimestamp(at, timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-0001"
    run = RunRecord(run_id, job, "batch-1", "batch", "c", "r", iso_time(at))
    code = 0 if status == "succeeded" else 1
    write_record(
        runs_dir,
        run.finished(status=status, ended=iso_time(at + 1), exit_code=code, output_bytes=output),
    )


def test_status_lists_candidates_and_the_report_says_why(sandbox: Sandbox) -> None:
    assert sandbox.cli("sync").returncode == 0
    for day in range(20):
        record(sandbox, "weekly-cleanup", day + 0.5, "failed", output=12)
    record(sandbox, "legacy-mail-report", 200, "succeeded", output=100)  # disabled since
    for day in range(5):
        record(sandbox, "nightly-aggregate", day + 0.5, "succeeded", output=50)

    status = json.loads(sandbox.cli("status", "--json").stdout)
    assert status["retire_candidates"] == ["legacy-mail-report", "weekly-cleanup"]
    text = sandbox.cli("status").stdout
    assert "retire:" in text and "legacy-mail-report, weekly-cleanup" in text

    done = sandbox.cli("status", "--retire-candidates", "--json")
    assert done.returncode == 1, done
    report = {c["job"]: c for c in json.loads(done.stdout)["candidates"]}
    kinds = {r["kind"] for r in report["weekly-cleanup"]["reasons"]}
    assert kinds == {"fails-every-run", "never-succeeded"}
    assert "enabled = false" in report["weekly-cleanup"]["retire"]
    assert report["legacy-mail-report"]["retire"].startswith("git rm jobs/legacy-mail-report.toml")

    text = sandbox.cli("status", "--retire-candidates", "--days", "30").stdout
    assert "weekly-cleanup (never-succeeded)" in text  # 20 days of runs: not 30 of failures
    assert "to retire:" in text


def test_no_candidates_exit_0_and_a_bad_days_is_one_line(synced: Sandbox) -> None:
    done = synced.cli("status", "--retire-candidates")
    assert done.returncode == 0 and done.stdout.startswith("no retirement candidates"), done
    bad = synced.cli("status", "--retire-candidates", "--days", "0")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("cronsync:")
    assert "Traceback" not in bad.stderr
    alone = synced.cli("status", "--days", "3")
    assert alone.returncode == 2 and "--days needs --retire-candidates" in alone.stderr
    huge = synced.cli("status", "--retire-candidates", "--days", "99999999999999999")
    assert huge.returncode == 2 and huge.stderr.count("\n") == 1, huge
    assert "--days" in huge.stderr and "Traceback" not in huge.stderr


def test_plain_status_reads_last_json_only_and_the_report_every_record(
    sandbox: Sandbox,
) -> None:
    """Reading every record of every job on each ``status`` is slow with many jobs:
    plain status names what each job's last run and last success say; the report reads
    every record (a job that succeeds without ever writing output shows only there)."""
    assert sandbox.cli("sync").returncode == 0
    for day in range(20):
        record(sandbox, "nightly-aggregate", day + 0.5, "succeeded", output=0)
    status = json.loads(sandbox.cli("status", "--json").stdout)
    assert status["retire_candidates"] == []
    done = sandbox.cli("status", "--retire-candidates", "--json")
    [found] = json.loads(done.stdout)["candidates"]
    assert found["job"] == "nightly-aggregate"
    assert [r["kind"] for r in found["reasons"]] == ["no-output"]
