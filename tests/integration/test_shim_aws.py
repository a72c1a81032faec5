"""cronsync-run against AWS (moto server over real HTTP): secrets, logs, metrics, outages.

Each test writes a small jobs repository, syncs it into a sandbox root, and runs
``python -m cronsync.cli.shim --root ROOT JOB`` as cron would: with no AWS environment at
all, so region, endpoint and credentials can only come from the agent config's
``[aws]`` table (compiled into jobs.json). One moto server per module, reset between
tests; an outage is a second moto server started and stopped by the test.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from cronsync.cloud.batch import PREFIXES
from cronsync.core.logformat import read_lines
from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from cronsync.run.store import list_records, read_last
from helpers.motoserver import moto_running
from helpers.sandbox import Upstream, agent_toml

GROUP = "/cronsync/test"
NAMESPACE = "CronsyncTest"
HOST = "batch-1"
REGION = "us-east-1"
TOKEN = "tok-Sm-whole-8c1f2e"
DB_PASSWORD = "pw-Sm-json-77ad01"
SSM_VALUE = "ssm-Secure-3b9e44"
SECRET_VALUES = (TOKEN, DB_PASSWORD, SSM_VALUE)
CRONSYNC_PREFIX = PREFIXES["c"]


# --- moto ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with moto_running() as url:
        yield url


@pytest.fixture
def endpoint(moto_server: str) -> str:
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server


@pytest.fixture
def dead_endpoint() -> str:
    """The URL of a moto server this test started and stopped: nothing listens there."""
    with moto_running() as url:
        pass
    return url


def client(endpoint: str, service: str) -> Any:
    """A boto3 client of the test itself (explicit keys: the process env is not used)."""
    import boto3

    return boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stream_messages(endpoint: str, stream: str) -> list[str]:
    """Every event message of ``stream`` in GROUP, oldest first."""
    logs = client(endpoint, "logs")
    messages: list[str] = []
    token: Optional[str] = None
    while True:
        extra = {"nextToken": token} if token else {}
        page = logs.get_log_events(
            logGroupName=GROUP, logStreamName=stream, startFromHead=True, **extra
        )
        messages += [event["message"] for event in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return messages
        token = page["nextForwardToken"]


def stream_names(endpoint: str) -> list[str]:
    logs = client(endpoint, "logs")
    try:
        streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return sorted(s["logStreamName"] for s in streams)


# --- the sandbox --------------------------------------------------------------------


class AwsShimSandbox:
    """A jobs repository synced into a sandbox root whose agent config reaches AWS only
    through ``[aws]`` (a credentials file of its own, an endpoint, a region)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.upstream = Upstream(base)
        self.config_path = self.root / "etc/cronsync/agent.toml"
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.credentials = base / "aws-credentials"
        self.credentials.write_text(
            "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        )
        self.credentials.chmod(0o600)
        self.upstream.write(
            "cronsync.toml",
            f'[cloudwatch]\nlog_group = "{GROUP}"\nmetrics_namespace = "{NAMESPACE}"\n',
        )
        # the file backend's file (for tests whose secrets are not about AWS)
        secrets = self.root / "etc/cronsync/secrets.d" / f"{self.user}.toml"
        secrets.parent.mkdir(parents=True, exist_ok=True)
        secrets.write_text('"local/unused" = "nothing"\n')
        secrets.chmod(0o600)

    def job(self, name: str, body: str) -> None:
        self.upstream.write(
            f"jobs/{name}.toml",
            f'description = "test job {name}"\nowner = "tests@example.com"\n'
            f'user = "{self.user}"\nschedule = "* * * * *"\n{body}\n',
        )

    def script(self, name: str, text: str) -> None:
        self.upstream.write(f"scripts/{name}", text, mode=0o755)

    def sync(
        self,
        endpoint: str,
        *,
        secrets: str = "aws",
        logs: bool = True,
        metrics: bool = False,
    ) -> None:
        extra = (
            '[run]\nkill_grace = "1s"\n'
            f'[secrets]\nbackend = "{secrets}"\n'
            f"[logs]\ncloudwatch = {json.dumps(logs)}\n"
            f"[metrics]\ncloudwatch = {json.dumps(metrics)}\n"
            f'[aws]\nregion = "{REGION}"\nendpoint_url = "{endpoint}"\n'
            f"credentials_file = {json.dumps(str(self.credentials))}\n"
        )
        self.upstream.commit_and_push("jobs")
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            agent_toml(str(self.upstream.bare), self.root, extra).replace(
                'allowed = ["batch"]', "allowed = []"
            )
        )
        outcome = run_sync(load_config(str(self.config_path)))
        assert outcome.record.result == "installed", outcome.record

    def env(self, **extra: str) -> dict[str, str]:
        """The environment cron would give: nothing of AWS (the test's own removed)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(extra)
        return env

    def run(self, job: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cronsync.cli.shim", "--root", str(self.root), job],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
        )

    def flush(self) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "cronsync.cli.main", "flush", "--json", "--seconds", "30"],
            capture_output=True,
            text=True,
            env=self.env(CRONSYNC_CONFIG=str(self.config_path)),
            cwd=self.base,
            timeout=60,
        )
        assert done.stdout.strip(), done
        return done, json.loads(done.stdout)

    @property
    def runs_dir(self) -> Path:
        return self.root / "var/lib/cronsync/runs"

    def last(self, job: str) -> dict[str, Any]:
        record: dict[str, Any] = read_last(self.runs_dir, job)["last_run"]
        return record

    def log_bytes(self, record: dict[str, Any]) -> bytes:
        return Path(record["log"]).read_bytes()

    def expected_events(self, record: dict[str, Any]) -> list[str]:
        """The messages the run's local log should give in CloudWatch, in order."""
        return [
            PREFIXES[line.stream] + line.text.decode("utf-8", "replace")
            for line in read_lines(self.log_bytes(record))
        ]

    def pending_file(self, job: str, run_id: str) -> Path:
        return self.runs_dir / job / "pending" / f"{run_id}.json"


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> AwsShimSandbox:
    return AwsShimSandbox(tmp_path)


def job_lines(messages: list[str]) -> list[str]:
    """The job's own lines among a stream's messages (cronsync's notes left out)."""
    return [m for m in messages if not m.startswith(CRONSYNC_PREFIX)]


def assert_no_secret(data: str | bytes, where: str) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for value in SECRET_VALUES:
        assert value not in text, f"a secret value leaked into {where}"


LINES = 40


def chatty_job(box: AwsShimSandbox, name: str, code: int = 0) -> list[str]:
    """A job printing LINES numbered lines (every fifth on stderr) with pauses, so the
    output arrives in several reads; returns the messages CloudWatch should get."""
    box.script(
        f"{name}.sh",
        "#!/bin/sh\n"
        f"i=1\nwhile [ $i -le {LINES} ]; do\n"
        '  if [ $((i % 5)) -eq 0 ]; then echo "err $i" >&2; else echo "out $i"; fi\n'
        "  if [ $((i % 10)) -eq 0 ]; then sleep 0.05; fi\n"
        "  i=$((i + 1))\ndone\n"
        f"exit {code}\n",
    )
    box.job(name, f'command = ["scripts/{name}.sh"]\n')
    return [f"[stderr] err {i}" if i % 5 == 0 else f"out {i}" for i in range(1, LINES + 1)]


def per_stream(messages: list[str]) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines), each in order: their interleaving is the pump's."""
    err = [m for m in messages if m.startswith("[stderr] ")]
    return [m for m in messages if m not in err], err


# --- tests --------------------------------------------------------------------------


def test_aws_secrets_reach_the_job_masked_in_the_log_and_cloudwatch(
    box: AwsShimSandbox, endpoint: str
) -> None:
    sm = client(endpoint, "secretsmanager")
    sm.create_secret(Name="batch/token", SecretString=TOKEN)
    sm.create_secret(
        Name="batch/db", SecretString=json.dumps({"user": "app", "password": DB_PASSWORD})
    )
    client(endpoint, "ssm").put_parameter(Name="/batch/x", Value=SSM_VALUE, Type="SecureString")
    box.script(
        "report.sh",
        '#!/bin/sh\necho "token $TOKEN"\nsleep 0.1\necho "db $DB_PASSWORD" >&2\nsleep 0.1\n'
        'echo "x $X"\necho "plain line"\nexit 3\n',
    )
    box.job(
        "report",
        'command = ["scripts/report.sh"]\n[secrets]\nTOKEN = "batch/token"\n'
        'DB_PASSWORD = { secret = "batch/db", key = "password" }\nX = "ssm:/batch/x"\n',
    )
    box.sync(endpoint)

    done = box.run("report")

    assert done.returncode == 3, done
    assert_no_secret(done.stdout + done.stderr, "the shim's stdout/stderr")
    record = box.last("report")
    assert (record["status"], record["exit_code"]) == ("failed", 3), record
    run_id = record["run_id"]
    stream = f"{HOST}/report/{run_id}"
    assert record["cloudwatch_stream"] == stream
    log = box.log_bytes(record)
    assert_no_secret(log, "the local log")
    # each stream in order; how stdout and stderr interleave is the pump's (a stalled
    # shim reads both pipes at once)
    expected = (["token ***", "x ***", "plain line"], ["[stderr] db ***"])
    assert per_stream(job_lines(box.expected_events(record))) == expected

    messages = stream_messages(endpoint, stream)
    assert stream_names(endpoint) == [stream]
    assert messages == box.expected_events(record)  # every line, once, in order
    assert per_stream(job_lines(messages)) == expected
    assert_no_secret("\n".join(messages), "CloudWatch Logs")
    assert record["extra"]["cloudwatch"]["delivered"] is True
    assert record["extra"]["cloudwatch"]["error"] is None
    assert record["extra"]["cloudwatch"]["sent_events"] == len(messages)
    assert not box.pending_file("report", run_id).exists()
    for path in box.root.rglob("*"):  # no value anywhere the shim writes
        if path.is_file():
            assert_no_secret(path.read_bytes(), str(path))


def test_a_missing_secret_stops_the_job_before_it_starts(
    box: AwsShimSandbox, endpoint: str, tmp_path: Path
) -> None:
    client(endpoint, "secretsmanager").create_secret(Name="batch/token", SecretString=TOKEN)
    client(endpoint, "ssm").put_parameter(Name="/batch/x", Value=SSM_VALUE, Type="SecureString")
    marker = tmp_path / "started"
    box.job(
        "needs",
        f'shell = "touch {marker}; echo $TOKEN $X"\n'
        '[secrets]\nTOKEN = "batch/token"\nX = "ssm:/batch/x"\nGONE = "batch/missing"\n'
        'ALSO_GONE = "ssm:/batch/nope"\n',
    )
    box.sync(endpoint)

    done = box.run("needs")

    assert done.returncode == 126, done
    assert not marker.exists()
    record = box.last("needs")
    assert record["status"] == "error", record
    reason = record["reason"]
    assert "batch/missing" in reason and "ssm:/batch/nope" in reason and "not found" in reason
    assert "batch/token" not in reason  # only the references that failed
    assert "batch/missing" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secret(reason + done.stdout + done.stderr, "the failure report")
    for path in box.root.rglob("*"):
        if path.is_file():
            assert_no_secret(path.read_bytes(), str(path))


def test_cloudwatch_outage_spools_then_flush_delivers_exactly_once(
    box: AwsShimSandbox, endpoint: str, dead_endpoint: str
) -> None:
    expected = chatty_job(box, "chatty")
    box.sync(dead_endpoint, secrets="file")

    done = box.run("chatty")

    assert done.returncode == 0, done
    record = box.last("chatty")
    assert record["status"] == "succeeded", record
    run_id = record["run_id"]
    assert record["cloudwatch_stream"] == f"{HOST}/chatty/{run_id}"
    delivery = record["extra"]["cloudwatch"]
    assert delivery["delivered"] is False and delivery["error"], delivery
    lines = box.expected_events(record)
    assert per_stream(job_lines(lines)) == per_stream(expected)  # the local log is complete
    pending = box.pending_file("chatty", run_id)
    assert pending.exists()

    box.sync(endpoint, secrets="file")
    first, summary = box.flush()

    assert first.returncode == 0, first
    assert (summary["delivered"], summary["left"], summary["errors"]) == (1, 0, 0), summary
    assert not pending.exists()
    stream = record["cloudwatch_stream"]
    assert stream_messages(endpoint, stream) == lines
    assert summary["sent_events"] == len(lines)

    second, again = box.flush()
    assert second.returncode == 0, second
    assert (again["delivered"], again["left"], again["sent_events"]) == (0, 0, 0), again
    assert stream_messages(endpoint, stream) == lines


def test_job_metrics_reach_cloudwatch_and_never_change_the_exit_code(
    box: AwsShimSandbox, endpoint: str, dead_endpoint: str
) -> None:
    box.job("good", 'shell = "echo fine"\n')
    box.job("bad", 'shell = "echo broken; exit 4"\n')
    box.sync(endpoint, secrets="file", logs=False, metrics=True)
    started = time.time()

    assert box.run("good").returncode == 0
    assert box.run("bad").returncode == 4

    cloudwatch = client(endpoint, "cloudwatch")
    listed = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    seen = {
        (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
        for m in listed
    }
    for job in ("good", "bad"):
        for name in ("JobRuns", "JobSucceeded", "JobFailed"):
            assert (name, (("Host", HOST), ("Job", job))) in seen, (name, job, seen)

    def total(name: str, job: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=name,
            Dimensions=[{"Name": "Host", "Value": HOST}, {"Name": "Job", "Value": job}],
            StartTime=started - 600,
            EndTime=time.time() + 600,
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return float(sum(p["Sum"] for p in points))

    assert [total(n, "good") for n in ("JobRuns", "JobSucceeded", "JobFailed")] == [1, 1, 0]
    assert [total(n, "bad") for n in ("JobRuns", "JobSucceeded", "JobFailed")] == [1, 0, 1]

    box.sync(dead_endpoint, secrets="file", logs=False, metrics=True)
    good, bad = box.run("good"), box.run("bad")
    assert (good.returncode, bad.returncode) == (0, 4), (good, bad)
    assert "metrics not published" in bad.stderr
    assert (box.last("good")["status"], box.last("bad")["status"]) == ("succeeded", "failed")


def test_the_next_run_delivers_the_backlog_of_its_user(
    box: AwsShimSandbox, endpoint: str, dead_endpoint: str
) -> None:
    expected = chatty_job(box, "early")
    box.job("later", 'shell = "echo later run"\n')
    box.sync(dead_endpoint, secrets="file")
    assert box.run("early").returncode == 0
    early = box.last("early")
    pending = box.pending_file("early", early["run_id"])
    assert pending.exists()
    lines = box.expected_events(early)
    assert per_stream(job_lines(lines)) == per_stream(expected)

    box.sync(endpoint, secrets="file")
    done = box.run("later")

    assert done.returncode == 0, done
    assert not pending.exists()
    assert stream_messages(endpoint, early["cloudwatch_stream"]) == lines
    later = box.last("later")
    assert later["extra"]["cloudwatch"]["delivered"] is True
    assert job_lines(stream_messages(endpoint, later["cloudwatch_stream"])) == ["later run"]
    assert not list(box.runs_dir.glob("*/pending/*.json"))
    assert [r.status for r in list_records(box.runs_dir, "early")] == ["succeeded"]
