"""cronsync-run with AWS behind the broker (moto server over real HTTP): secrets, logs,
metrics, outages.

Each test writes a small jobs repository, syncs it into a sandbox root, serves the
broker of that config in this process, and runs ``python -m cronsync.cli.shim --root
ROOT JOB`` as cron would: with no AWS environment at all. The shim asks the broker for
the job's secrets and tells it a run started and ended; the broker alone talks to AWS,
with the credentials of the agent config's ``[aws]``. One moto server per module, reset
between tests; an outage is a second moto server started and stopped by the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.awsbox import (
    CRONSYNC_PREFIX,
    HOST,
    NAMESPACE,
    AwsShimSandbox,
    aws_box,
    client,
    stream_messages,
    stream_names,
    wait_for,
)
from helpers.motoserver import moto_running

TOKEN = "tok-Sm-whole-8c1f2e"
DB_PASSWORD = "pw-Sm-json-77ad01"
SSM_VALUE = "ssm-Secure-3b9e44"
SECRET_VALUES = (TOKEN, DB_PASSWORD, SSM_VALUE)


@pytest.fixture
def dead_endpoint() -> str:
    """The URL of a moto server this test started and stopped: nothing listens there."""
    with moto_running() as url:
        pass
    return url


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> Iterator[AwsShimSandbox]:
    with aws_box(tmp_path) as sandbox:
        yield sandbox


def job_lines(messages: list[str]) -> list[str]:
    """The job's own lines among a stream's messages (cronsync's notes left out)."""
    return [m for m in messages if not m.startswith(CRONSYNC_PREFIX)]


def assert_no_secret(data: str | bytes, where: str) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for value in SECRET_VALUES:
        assert value not in text, f"a secret value leaked into {where}"


def assert_no_secret_on_disk(box: AwsShimSandbox) -> None:
    for path in box.base.rglob("*"):  # no value anywhere the shim or the broker writes
        if path.is_file() and not path.is_socket():
            assert_no_secret(path.read_bytes(), str(path))


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


def delivered(box: AwsShimSandbox, endpoint: str, record: dict[str, Any]) -> list[str]:
    """Wait until the run's whole log is in CloudWatch and its pending file is gone."""
    expected = box.expected_events(record)
    stream = record["cloudwatch_stream"]
    wait_for(lambda: stream_messages(endpoint, stream) == expected, f"{stream} delivered")
    wait_for(lambda: not box.pending_file(record["job"], record["run_id"]).exists(), "done")
    return expected


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
    box.start_broker()

    done = box.run("report")

    assert done.returncode == 3, done
    assert_no_secret(done.stdout + done.stderr, "the shim's stdout/stderr")
    record = box.last("report")
    assert (record["status"], record["exit_code"]) == ("failed", 3), record
    assert "broker" not in record["extra"], record["extra"]  # shipped live, told the end
    run_id = record["run_id"]
    stream = f"{HOST}/report/{run_id}"
    assert record["cloudwatch_stream"] == stream
    log = box.log_bytes(record)
    assert_no_secret(log, "the local log")
    # each stream in order; how stdout and stderr interleave is the pump's (a stalled
    # shim reads both pipes at once)
    expected = (["token ***", "x ***", "plain line"], ["[stderr] db ***"])
    assert per_stream(job_lines(box.expected_events(record))) == expected

    messages = delivered(box, endpoint, record)  # every line, once, in order
    assert stream_names(endpoint) == [stream]
    assert per_stream(job_lines(messages)) == expected
    assert_no_secret("\n".join(messages), "CloudWatch Logs")
    assert_no_secret("\n".join(box.broker_log), "the broker's log")
    assert_no_secret_on_disk(box)


def test_the_shim_imports_no_aws_library_even_for_aws_secrets(
    box: AwsShimSandbox, endpoint: str
) -> None:
    client(endpoint, "secretsmanager").create_secret(Name="batch/token", SecretString=TOKEN)
    box.job("quiet", 'shell = "test -n \\"$TOKEN\\""\n[secrets]\nTOKEN = "batch/token"\n')
    box.sync(endpoint)
    box.start_broker()

    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "cronsync.cli.shim",
            "--root",
            box.root,
            "quiet",
        ],
        capture_output=True,
        text=True,
        env=box.env(),
        timeout=60,
    )

    assert done.returncode == 0, done
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "cronsync.run.broker" in imported  # the secret came through the broker
    for heavy in ("boto3", "botocore", "git", "cronsync.host.awsclients", "cronsync.secrets.aws"):
        assert heavy not in imported, heavy


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
    box.start_broker()

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
    assert_no_secret("\n".join(box.broker_log), "the broker's log")
    assert_no_secret_on_disk(box)


def test_no_broker_means_no_start_and_the_record_says_why(
    box: AwsShimSandbox, endpoint: str, tmp_path: Path
) -> None:
    client(endpoint, "secretsmanager").create_secret(Name="batch/token", SecretString=TOKEN)
    marker = tmp_path / "started"
    box.job("needs", f'shell = "touch {marker}"\n[secrets]\nTOKEN = "batch/token"\n')
    box.sync(endpoint)  # no broker started

    done = box.run("needs")

    assert done.returncode == 126, done
    assert not marker.exists()
    record = box.last("needs")
    assert record["status"] == "error", record
    assert "no broker at" in record["reason"] and str(box.socket) in record["reason"]
    assert "Traceback" not in done.stderr


def test_output_reaches_cloudwatch_while_the_job_still_runs(
    box: AwsShimSandbox, endpoint: str, tmp_path: Path
) -> None:
    release = tmp_path / "release-the-job"
    box.job(
        "slow",
        f'shell = "echo first line; while [ ! -e {release} ]; do sleep 0.1; done; echo last"\n'
        'timeout = "2m"\n',
    )
    box.sync(endpoint, secrets="file")
    box.start_broker()

    running = subprocess.Popen(
        [sys.executable, "-m", "cronsync.cli.shim", "--root", str(box.root), "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=box.env(),
    )
    try:
        stream = wait_for(lambda: stream_names(endpoint), "the run's stream")[0]
        wait_for(lambda: "first line" in stream_messages(endpoint, stream), "the first line")
        assert running.poll() is None  # it arrived while the job was still running
    finally:
        release.touch()
        out, err = running.communicate(timeout=60)
    assert running.returncode == 0, (out, err)
    record = box.last("slow")
    assert job_lines(delivered(box, endpoint, record)) == ["first line", "last"]


def test_cloudwatch_outage_spools_then_flush_delivers_exactly_once(
    box: AwsShimSandbox, endpoint: str, dead_endpoint: str
) -> None:
    expected = chatty_job(box, "chatty")
    box.sync(dead_endpoint, secrets="file")
    broker = box.start_broker()

    done = box.run("chatty")

    assert done.returncode == 0, done
    record = box.last("chatty")
    assert record["status"] == "succeeded", record
    run_id = record["run_id"]
    assert record["cloudwatch_stream"] == f"{HOST}/chatty/{run_id}"
    lines = box.expected_events(record)
    assert per_stream(job_lines(lines)) == per_stream(expected)  # the local log is complete
    pending = box.pending_file("chatty", run_id)
    wait_for(lambda: any("left pending" in line for line in box.broker_log), "the failure")
    assert pending.exists()
    assert broker.outbox.active_runs == 0
    box.stop_broker()

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


def test_a_broker_that_was_down_delivers_the_spool_when_it_is_back(
    box: AwsShimSandbox, endpoint: str
) -> None:
    expected = chatty_job(box, "early")
    box.sync(endpoint, secrets="file", metrics=True)  # no broker while it runs

    done = box.run("early")

    assert done.returncode == 0, done  # output has nowhere to go yet: the job still runs
    early = box.last("early")
    assert "no broker at" in early["extra"]["broker"], early["extra"]
    pending = box.pending_file("early", early["run_id"])
    assert json.loads(pending.read_text())["finished"] is True
    marker = pending.with_name(f"{early['run_id']}.metrics")
    assert marker.exists()  # its metrics wait for the broker too
    lines = box.expected_events(early)
    assert per_stream(job_lines(lines)) == per_stream(expected)

    box.start_broker()  # delivers what is pending when it starts, and the metrics

    assert delivered(box, endpoint, early) == lines
    assert not list(box.runs_dir.glob("*/pending/*.json"))
    wait_for(lambda: not marker.exists(), "the metrics marker consumed")
    listed = client(endpoint, "cloudwatch").list_metrics(Namespace=NAMESPACE)["Metrics"]
    names = {
        m["MetricName"] for m in listed if {"Name": "Job", "Value": "early"} in m["Dimensions"]
    }
    assert {"JobRuns", "JobSucceeded"} <= names, listed


def test_job_metrics_reach_cloudwatch_and_never_change_the_exit_code(
    box: AwsShimSandbox, endpoint: str, dead_endpoint: str
) -> None:
    box.job("good", 'shell = "echo fine"\n')
    box.job("bad", 'shell = "echo broken; exit 4"\n')
    box.sync(endpoint, secrets="file", logs=False, metrics=True)
    box.start_broker()
    started = time.time()

    assert box.run("good").returncode == 0
    assert box.run("bad").returncode == 4

    cloudwatch = client(endpoint, "cloudwatch")

    def seen() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        listed = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
        return {
            (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
            for m in listed
        }

    wanted = {
        (name, (("Host", HOST), ("Job", job)))
        for job in ("good", "bad")
        for name in ("JobRuns", "JobSucceeded", "JobFailed")
    }
    wait_for(lambda: wanted <= seen(), "the job metrics")

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
    box.start_broker()
    good, bad = box.run("good"), box.run("bad")
    assert (good.returncode, bad.returncode) == (0, 4), (good, bad)
    wait_for(lambda: any("metrics not published" in line for line in box.broker_log), "it")
    assert (box.last("good")["status"], box.last("bad")["status"]) == ("succeeded", "failed")
