"""End to end: the real Debian cron daemon runs jobs that cronsync installed.

A sync into a sandbox root renders the cron file; its bytes are installed in
/etc/cron.d under a test-specific, dot-free name (Debian cron silently drops a whole
file for one line it dislikes, so cron running the jobs is the proof that the file is
acceptable). At the next minute cron starts the real ``cronsync-run`` for each job due
every minute; the test checks that:

* the job got its secret from Secrets Manager (moto over HTTP on 127.0.0.1), with no
  AWS variable in cron's environment: region, endpoint and credentials come from the
  agent config compiled into the release;
* its output reached CloudWatch Logs (moto) and the local log, the secret masked;
* a run record says it succeeded, and ``cronsync status`` shows it.

Needs root, /usr/sbin/cron and the ``cronsync-run`` console script (``scripts/test``
installs all three); skips with the reason otherwise. It stops what it started (the
cron daemon only if it started it, by PID; the moto server) and removes its file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronsync.files.atomic import atomic_write
from cronsync.host.config import load_config
from cronsync.host.install import make_cron_notice
from cronsync.host.sync import run_sync
from helpers.motoserver import moto_running

CRON = "/usr/sbin/cron"
SHIM = Path(sys.executable).parent / "cronsync-run"
SECRET = "e2e-S3cret-value-7781"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real cron daemon needs root"),
    pytest.mark.skipif(not Path(CRON).exists(), reason="Debian cron is not installed"),
    pytest.mark.skipif(not SHIM.exists(), reason=f"no cronsync-run console script at {SHIM}"),
]

JOB = """description = "e2e job {name}"
owner = "e2e@example.com"
schedule = "{schedule}"
user = "root"
{body}
"""
REPORT = """#!/bin/sh
echo "report starts"
echo "token=$TOKEN"
echo "warning on stderr" >&2
echo "report done"
"""
JOBS = {
    # started by cron within the test's wait
    "report": ("* * * * *", 'command = ["scripts/report.sh"]\n[secrets]\nTOKEN = "e2e/token"'),
    "tokyo-minutely": ("* * * * *", 'timezone = "Asia/Tokyo"\nshell = "echo tokyo"'),
    "stepped": ("*/1 * * * *", 'shell = "echo stepped"'),
    # not due now, but their lines must be acceptable to cron too
    "nightly-ny": ("30 3 * * *", 'timezone = "America/New_York"\nshell = "true"'),
    "first-of-month-tokyo": ("0 8 1 * *", 'timezone = "Asia/Tokyo"\nshell = "true"'),
    "weekdays": ("*/15 9-17 * * mon-fri", 'shell = "true"'),
    "on-boot": ("@reboot", 'shell = "true"'),
}
DUE_EVERY_MINUTE = ("report", "tokyo-minutely", "stepped")


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    with moto_running() as url:
        yield url


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(service, endpoint_url=endpoint)


def make_remote(base: Path) -> Path:
    work, remote = base / "work", base / "remote.git"
    (work / "jobs").mkdir(parents=True)
    (work / "scripts").mkdir()
    (work / "scripts/report.sh").write_text(REPORT)
    (work / "scripts/report.sh").chmod(0o755)
    (work / "cronsync.toml").write_text('[cloudwatch]\nlog_group = "/cronsync/e2e"\n')
    for name, (schedule, body) in JOBS.items():
        (work / "jobs" / f"{name}.toml").write_text(
            JOB.format(name=name, schedule=schedule, body=body)
        )
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "e2e jobs", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=base)
    git("push", "-q", str(remote), "main", cwd=work)
    return remote


def write_config(base: Path, remote: Path, endpoint: str) -> Path:
    credentials = base / "aws-credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    credentials.chmod(0o600)
    config = base / "root/etc/cronsync/agent.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[repo]\nurl = "{remote}"\n[host]\nname = "e2e-host"\n'
        f'[users]\nallowed = ["root"]\n[cron]\nshim = "{SHIM}"\n'
        f'[paths]\nroot = "{base / "root"}"\n[secrets]\nbackend = "aws"\n'
        f"[logs]\ncloudwatch = true\n"
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        f'credentials_file = "{credentials}"\n'
    )
    return config


def last_run(root: Path, job: str) -> dict[str, Any]:
    try:
        data = json.loads((root / f"var/lib/cronsync/runs/{job}/last.json").read_text())
    except (OSError, ValueError):
        return {}
    run: dict[str, Any] = data.get("last_run") or {}
    return run


@pytest.mark.timeout(600)  # waits for cron's minute boundaries (up to about 3 minutes)
def test_cron_runs_installed_jobs_through_the_shim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cron_daemon: None, moto_endpoint: str
) -> None:
    for key, value in {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "e2e",
        "GIT_AUTHOR_EMAIL": "e2e@example.com",
        "GIT_COMMITTER_NAME": "e2e",
        "GIT_COMMITTER_EMAIL": "e2e@example.com",
    }.items():
        monkeypatch.setenv(key, value)
    tmp_path.chmod(0o755)
    aws_client("secretsmanager", moto_endpoint).create_secret(Name="e2e/token", SecretString=SECRET)
    config_file = write_config(tmp_path, make_remote(tmp_path), moto_endpoint)
    root = tmp_path / "root"
    outcome = run_sync(load_config(str(config_file)))
    assert outcome.record.result == "installed", outcome.record
    rendered = (root / "etc/cron.d/cronsync").read_bytes()
    assert SECRET.encode() not in rendered

    installed = Path(f"/etc/cron.d/cronsync-e2e-{os.getpid()}")
    atomic_write(installed, rendered, mode=0o644, owner=(0, 0))
    make_cron_notice(installed.parent)  # as the sync's own install does
    try:
        deadline = time.monotonic() + 170
        while time.monotonic() < deadline:
            runs = {job: last_run(root, job) for job in DUE_EVERY_MINUTE}
            # the end of a run is recorded before the shim's last wait for CloudWatch;
            # the record is final once that wait has added its outcome too
            delivered = runs["report"].get("extra", {}).get("cloudwatch", {}).get("delivered")
            if all(run.get("status") == "succeeded" for run in runs.values()) and delivered:
                break  # (a run whose delivery was late leaves it to the next minute's)
            time.sleep(2)
    finally:
        installed.unlink()
    assert all(run.get("status") == "succeeded" for run in runs.values()), (rendered.decode(), runs)

    report = runs["report"]
    log = Path(report["log"]).read_bytes()
    assert b"token=***" in log and SECRET.encode() not in log
    assert report.get("extra", {}).get("cloudwatch", {}).get("delivered") is True, report
    events = aws_client("logs", moto_endpoint).get_log_events(
        logGroupName="/cronsync/e2e", logStreamName=report["cloudwatch_stream"], startFromHead=True
    )["events"]
    messages = [event["message"] for event in events]
    assert "token=***" in messages and "[stderr] warning on stderr" in messages
    assert messages.index("report starts") < messages.index("report done")
    assert not any(SECRET in message for message in messages)

    status = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "CRONSYNC_CONFIG": str(config_file)},
        timeout=120,
    )
    shown = {job["name"]: job for job in json.loads(status.stdout)["jobs"]}
    # cron may have started (and ended) the next minute's run since: that one or later
    assert shown["report"]["last_run"]["status"] in ("succeeded", "running")
    assert shown["report"]["last_success"]["run_id"] >= report["run_id"]
