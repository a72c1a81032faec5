"""End to end: the real Debian cron daemon runs jobs that cronsync installed.

A sync into a sandbox root renders the cron file; its bytes are installed in
/etc/cron.d under a test-specific, dot-free name (Debian cron silently drops a whole
file for one line it dislikes, so cron running the jobs is the proof that the file is
acceptable). At the next minute cron starts the real ``cronsync-run`` for each job due
every minute; the test checks that:

* the ``report`` job, which runs as a user made for the test (not root), got its secret
  from Secrets Manager (moto over HTTP on 127.0.0.1) through the broker, served by the
  test as root: the job's user holds no AWS credentials (the credentials file is
  root's, 0600) and cron's environment has no AWS variable;
* its output reached CloudWatch Logs (moto, shipped by the broker) and the local log,
  the secret masked;
* a run record says it succeeded, and ``cronsync status`` shows it.

The job user runs ``cronsync-run`` as a host install gives it: a copy of the package in
a folder every user can read, started by the system's ``python3 -I`` (this checkout and
its virtual environment may be root's only).

Needs root, useradd, /usr/sbin/cron and /usr/bin/python3 (``scripts/test`` installs
them); skips with the reason otherwise. It stops what it started (the cron daemon only
if it started it, by PID; the moto server; the broker), removes its cron file and the
user it made.
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

import cronsync
from cronsync.broker.daemon import BrokerDaemon
from cronsync.files.atomic import atomic_write
from cronsync.host.config import load_config
from cronsync.host.install import make_cron_notice
from cronsync.host.shimlauncher import launcher_text
from cronsync.host.sync import run_sync
from helpers.loglines import LogLines
from helpers.motoserver import moto_running
from helpers.users import HAS_USERADD, open_dir, temporary_users

CRON = "/usr/sbin/cron"
SYSTEM_PYTHON = Path("/usr/bin/python3")
SECRET = "e2e-S3cret-value-7781"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("real-cron"),  # one cron daemon per machine: one worker
    pytest.mark.skipif(os.geteuid() != 0, reason="the real cron daemon needs root"),
    pytest.mark.skipif(not Path(CRON).exists(), reason="Debian cron is not installed"),
    pytest.mark.skipif(not HAS_USERADD, reason="useradd is missing: the job user is made"),
    pytest.mark.skipif(
        not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 for the job user's shim"
    ),
]

JOB = """description = "e2e job {name}"
owner = "e2e@example.com"
schedule = "{schedule}"
user = "{user}"
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


def install_shim(base: Path) -> Path:
    """Install ``cronsync-run`` as a host does, readable by every user: the package
    copied below ``base``, started by the launcher ``cronsync install-shim`` writes
    (the system's interpreter, ``-I -S``)."""
    import shutil

    lib = base / "lib"
    shutil.copytree(
        Path(cronsync.__file__).parent,
        lib / "cronsync",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shim = base / "bin/cronsync-run"
    shim.parent.mkdir()
    shim.write_text(launcher_text(str(SYSTEM_PYTHON), str(lib)))  # as `cronsync install-shim`
    shim.chmod(0o755)
    for path in [lib, *lib.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return shim


def make_remote(base: Path, user: str) -> Path:
    work, remote = base / "work", base / "remote.git"
    (work / "jobs").mkdir(parents=True)
    (work / "scripts").mkdir()
    (work / "scripts/report.sh").write_text(REPORT)
    (work / "scripts/report.sh").chmod(0o755)
    (work / "cronsync.toml").write_text('[cloudwatch]\nlog_group = "/cronsync/e2e"\n')
    for name, (schedule, body) in JOBS.items():
        (work / "jobs" / f"{name}.toml").write_text(
            JOB.format(
                name=name, schedule=schedule, body=body, user=user if name == "report" else "root"
            )
        )
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "e2e jobs", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=base)
    git("push", "-q", str(remote), "main", cwd=work)
    return remote


def write_config(base: Path, remote: Path, endpoint: str, shim: Path, user: str) -> Path:
    credentials = base / "aws-credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    credentials.chmod(0o600)
    config = base / "root/etc/cronsync/agent.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[repo]\nurl = "{remote}"\n[host]\nname = "e2e-host"\n'
        f'[users]\nallowed = ["root", "{user}"]\n[cron]\nshim = "{shim}"\n'
        f'[paths]\nroot = "{base / "root"}"\n[secrets]\nbackend = "aws"\n'
        f"[logs]\ncloudwatch = true\n"
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        f'credentials_file = "{credentials}"\n'
    )
    return config


def stream_messages(endpoint: str, run: dict[str, Any]) -> list[str]:
    """The messages CloudWatch holds for ``run`` (none yet: an empty list)."""
    stream = run.get("cloudwatch_stream")
    if not stream:
        return []
    logs = aws_client("logs", endpoint)
    try:
        events = logs.get_log_events(
            logGroupName="/cronsync/e2e", logStreamName=stream, startFromHead=True
        )["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"] for event in events]


def last_run(root: Path, job: str) -> dict[str, Any]:
    try:
        data = json.loads((root / f"var/lib/cronsync/runs/{job}/last.json").read_text())
    except (OSError, ValueError):
        return {}
    run: dict[str, Any] = data.get("last_run") or {}
    return run


@pytest.mark.timeout(600)  # waits for cron's minute boundaries (up to about 3 minutes)
def test_cron_runs_installed_jobs_through_the_shim(
    monkeypatch: pytest.MonkeyPatch, cron_daemon: None, moto_endpoint: str
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
    with open_dir("cronsync-e2e-") as base, temporary_users(1, "cse2e") as (job_user,):
        run_with_cron(base, job_user.pw_name, moto_endpoint)


def run_with_cron(base: Path, user: str, moto_endpoint: str) -> None:
    aws_client("secretsmanager", moto_endpoint).create_secret(Name="e2e/token", SecretString=SECRET)
    shim = install_shim(base / "install")
    config_file = write_config(base, make_remote(base, user), moto_endpoint, shim, user)
    root = base / "root"
    config = load_config(str(config_file))
    outcome = run_sync(config)
    assert outcome.record.result == "installed", outcome.record
    rendered = (root / "etc/cron.d/cronsync").read_bytes()
    assert SECRET.encode() not in rendered
    broker_log = LogLines()
    broker = BrokerDaemon(config, log=broker_log, poll_interval=0.2)
    broker.start()

    installed = Path(f"/etc/cron.d/cronsync-e2e-{os.getpid()}")
    atomic_write(installed, rendered, mode=0o644, owner=(0, 0))
    make_cron_notice(installed.parent)  # as the sync's own install does
    try:
        deadline = time.monotonic() + 170
        while time.monotonic() < deadline:
            runs = {job: last_run(root, job) for job in DUE_EVERY_MINUTE}
            if all(run.get("status") == "succeeded" for run in runs.values()) and (
                "report done" in stream_messages(moto_endpoint, runs["report"])
            ):
                break  # (a run whose delivery was late leaves it to the next minute's)
            time.sleep(2)
    finally:
        installed.unlink()
        broker.stop()
    assert all(run.get("status") == "succeeded" for run in runs.values()), (
        rendered.decode(),
        runs,
        broker_log,
    )

    report = runs["report"]
    assert report["user"] == user, report
    log = Path(report["log"]).read_bytes()
    assert b"token=***" in log and SECRET.encode() not in log
    messages = stream_messages(moto_endpoint, report)
    assert "token=***" in messages and "[stderr] warning on stderr" in messages, messages
    assert messages.index("report starts") < messages.index("report done")
    assert not any(SECRET in message for message in messages)
    assert not any(SECRET in line for line in broker_log)

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
