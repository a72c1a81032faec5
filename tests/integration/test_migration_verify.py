"""``cronsync migration``: after the cut-over of a sandbox legacy host, the imported jobs
move from never-ran to verified as their runs are recorded, and a sign-off committed to
the job file counts. Runs are written with the run store (the shim's own format)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cronsync.cli.migrate import add_import_verbs
from cronsync.core.errors import CronsyncError
from cronsync.host.config import load_config
from cronsync.run.record import RunRecord
from cronsync.run.store import write_record
from helpers.legacyhost import Host


def migration(host: Host, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add_import_verbs(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    args = parser.parse_args(["migration", *argv, "--config", str(host.config)])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out + err


def record_runs(host: Host, job: str, statuses: list[str], day: int = 3) -> None:
    runs_dir = load_config(str(host.config)).paths.runs_dir
    (runs_dir / job).mkdir(parents=True, exist_ok=True)
    for number, status in enumerate(statuses):
        started = f"2025-06-{day + number:02d}T03:00:01.000Z"
        run_id = f"202506{day + number:02d}T030001Z-00{number:02d}"
        record = RunRecord(run_id, job, "batch-1", "root", "c", "r", started, status=status)
        write_record(
            runs_dir, record.finished(ended=started, exit_code=0 if status == "succeeded" else 1)
        )


@pytest.fixture
def host(tmp_path: Path, git_env: None) -> Host:
    host = Host(tmp_path)
    host.import_jobs()
    host.push_and_sync()
    return host


def test_jobs_move_from_never_ran_to_verified(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = migration(host, capsys, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["complete"] is False
    names = [row["name"] for row in doc["jobs"]]
    assert names and all(row["origins"] for row in doc["jobs"])
    daily = next(r for r in doc["jobs"] if r["state"] == "never-ran")
    job = daily["name"]

    # the job proves itself: three successes, with a success check added by a commit
    record_runs(host, job, ["succeeded"])
    row = next(
        r for r in json.loads(migration(host, capsys, "--json")[1])["jobs"] if r["name"] == job
    )
    assert row["state"] == "running" and row["first_run"] == "2025-06-03T03:00:01.000Z"
    record_runs(host, job, ["succeeded", "succeeded", "succeeded"], day=4)
    row = next(
        r for r in json.loads(migration(host, capsys, "--json")[1])["jobs"] if r["name"] == job
    )
    assert row["state"] == "running" and "success.check" in row["why"]

    path = host.upstream.work / "jobs" / f"{job}.toml"
    path.write_text(
        path.read_text() + '\n[migration]\nverified_by = "Ana Ops"\nverified_on = "2025-06-08"\n'
    )
    host.push_and_sync("signed off")
    code, out = migration(host, capsys)
    assert f"{job}  VERIFIED" in out
    assert "the sign-off of Ana Ops" in out


def test_a_failed_last_run_and_a_sign_off_alone(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(migration(host, capsys, "--json")[1])
    first, second = doc["jobs"][0]["name"], doc["jobs"][1]["name"]
    record_runs(host, first, ["succeeded", "failed"])
    path = host.upstream.work / "jobs" / f"{second}.toml"
    path.write_text(
        path.read_text() + '\n[migration]\nverified_by = "Bo"\nverified_on = "2025-06-02"\n'
    )
    host.push_and_sync("signed off")
    rows = {r["name"]: r for r in json.loads(migration(host, capsys, "--json")[1])["jobs"]}
    assert rows[first]["state"] == "failing" and rows[first]["failures"] == 1
    assert rows[second]["state"] == "signed-off"


def test_every_job_signed_off_exits_0(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    for path in (host.upstream.work / "jobs").glob("*.toml"):
        path.write_text(
            path.read_text() + '\n[migration]\nverified_by = "Bo"\nverified_on = "2025-06-02"\n'
        )
    host.push_and_sync("all signed off")
    code, out = migration(host, capsys)
    assert code == 0, out


def test_nothing_installed_is_one_line(
    tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    host = Host(tmp_path)
    with pytest.raises(CronsyncError, match="nothing is installed"):
        migration(host, capsys)
    with pytest.raises(CronsyncError, match="--min-successes"):
        migration(host, capsys, "--min-successes", "0")


def test_since_counts_from_the_cut_over(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    job = json.loads(migration(host, capsys, "--json")[1])["jobs"][0]["name"]
    record_runs(host, job, ["failed", "succeeded"], day=3)  # the 3rd and the 4th
    doc = json.loads(migration(host, capsys, "--json", "--since", "2025-06-04T00:00:00Z")[1])
    row = next(r for r in doc["jobs"] if r["name"] == job)
    assert (row["runs"], row["failures"], row["state"]) == (1, 0, "running")
    assert doc["since"] == "2025-06-04T00:00:00+00:00"
    _code, out = migration(host, capsys, "--since", "2025-06-04")  # a day: its midnight UTC
    assert "counted from 2025-06-04 00:00 UTC (--since)" in out
    with pytest.raises(CronsyncError, match=r"^--since tomorrow: give a time as 2026-12-01"):
        migration(host, capsys, "--since", "tomorrow")
    with pytest.raises(CronsyncError, match=r"^--since 2999-01-01: in the future"):
        migration(host, capsys, "--since", "2999-01-01")
