"""A job's run while AWS fails around it, through the real shim and the broker.

* Secrets Manager unreachable, or its connection cut in the middle of a request or
  before its reply, at random points: the job either starts with its secret (the
  broker's retry got through) or does not start at all (exit 126, the record says
  why); it never runs without its secret, and the next run after the network is back
  works.
* CloudWatch's connection cut at random points while a job prints: the job's exit is
  its own, and once the network is back every line reaches its stream once, in order.

In both, no secret value is in any file (the secret store is moto's memory), and the
value is masked wherever the job printed it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.awsbox import (
    CRONSYNC_PREFIX,
    AwsShimSandbox,
    aws_box,
    client,
    stream_messages,
    wait_for,
)
from helpers.faultcheck import files_holding
from helpers.tcpproxy import Cut, CuttingProxy, proxy_running

SECRET = "fault-Sm-value-5d2c91"
RAN = "ran.log"
LINES = 300


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> Iterator[AwsShimSandbox]:
    with aws_box(tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def stored(endpoint: str) -> str:
    """This test's moto server, holding the jobs' secret ``fault/db``; its URL."""
    client(endpoint, "secretsmanager").create_secret(
        Name="fault/db", SecretString=json.dumps({"password": SECRET})
    )
    return endpoint


@pytest.fixture
def proxy(endpoint: str) -> Iterator[CuttingProxy]:
    """A cutting TCP proxy in front of this test's moto server."""
    with proxy_running(endpoint) as running:
        yield running


def secret_job(box: AwsShimSandbox) -> Path:
    """A job that needs its Secrets Manager secret, notes each start in ``ran.log``
    and prints the value (to be masked); returns the ``ran.log`` path."""
    ran = box.base / RAN
    box.script(
        "needs-secret.sh",
        "#!/bin/sh\n"
        f'echo start >> "{ran}"\n'
        '[ -n "$DB_PASSWORD" ] || exit 99\n'
        'echo "connecting with $DB_PASSWORD"\n',
    )
    box.job(
        "needs-secret",
        'command = ["scripts/needs-secret.sh"]\n'
        '[secrets]\nDB_PASSWORD = { secret = "fault/db", key = "password" }\n',
    )
    return ran


def starts(ran: Path) -> int:
    """How many times the job started so far."""
    return len(ran.read_text().splitlines()) if ran.exists() else 0


def secrets_cut(proxy: CuttingProxy, rng: random.Random) -> list[Cut]:
    """One random fault between the broker and Secrets Manager."""
    kind = rng.choice(("outage", "mid-request", "no-reply"))
    if kind == "outage":
        return [Cut("up", proxy.up_bytes + 1, outage=True)]
    if kind == "mid-request":
        return [Cut("up", proxy.up_bytes + rng.randrange(1, 1500))]
    return [Cut("reply", proxy.replies + 1)]


@pytest.mark.timeout(1800)
def test_secrets_manager_failing_at_random_points_never_starts_a_job_without_its_secret(
    box: AwsShimSandbox, stored: str, proxy: CuttingProxy, fault_points: int, rng: random.Random
) -> None:
    ran = secret_job(box)
    box.sync(proxy.url, logs=False)
    box.start_broker()
    outcomes = {0: 0, 126: 0}
    for _point in range(fault_points // 2):
        before = starts(ran)
        proxy.plan(secrets_cut(proxy, rng))
        done = box.run("needs-secret")
        proxy.plan([])
        proxy.restore()
        record = box.last("needs-secret")
        assert done.returncode in outcomes, (done.returncode, done.stderr, record)
        outcomes[done.returncode] += 1
        if done.returncode == 0:
            assert starts(ran) == before + 1
            assert record["status"] == "succeeded", record
        else:
            assert starts(ran) == before, "the job started without its secret"
            assert record["status"] == "error", record
            assert "secret" in (record["reason"] or "").lower(), record
        assert SECRET not in done.stdout + done.stderr
        assert SECRET not in json.dumps(record)
    assert outcomes[126], f"no fault stopped a job: {outcomes}"
    done = box.run("needs-secret")  # the network is back: the broker recovers
    assert done.returncode == 0, (done.stderr, box.last("needs-secret"))
    log = box.log_bytes(box.last("needs-secret"))
    assert b"connecting with " in log and SECRET.encode() not in log
    assert files_holding(box.base, [SECRET]) == []


def printing_job(box: AwsShimSandbox) -> None:
    """A job printing :data:`LINES` numbered lines (some with its secret) in bursts."""
    box.script(
        "prints.sh",
        "#!/bin/sh\n"
        f"i=1\nwhile [ $i -le {LINES} ]; do\n"
        '  echo "line $i of the run, token $DB_PASSWORD"\n'
        "  if [ $((i % 50)) -eq 0 ]; then sleep 0.1; fi\n"
        "  i=$((i + 1))\ndone\n",
    )
    box.job(
        "prints",
        'command = ["scripts/prints.sh"]\n'
        '[secrets]\nDB_PASSWORD = { secret = "fault/db", key = "password" }\n',
    )


def logs_cut(proxy: CuttingProxy, rng: random.Random) -> list[Cut]:
    """One random fault between the broker and CloudWatch Logs."""
    kind = rng.choice(("request", "stored-unheard", "outage"))
    if kind == "request":
        return [Cut("up", proxy.up_bytes + rng.randrange(1, 20_000))]
    if kind == "stored-unheard":
        return [Cut("put-reply", proxy.puts + rng.randrange(1, 3))]
    return [Cut("put-reply", proxy.puts + rng.randrange(1, 3), outage=True)]


@pytest.mark.timeout(1800)
def test_cloudwatch_cut_at_random_points_mid_run_loses_and_repeats_no_line(
    box: AwsShimSandbox, stored: str, proxy: CuttingProxy, fault_points: int, rng: random.Random
) -> None:
    printing_job(box)
    # secrets straight from moto, the logs through the proxy: only delivery is cut
    box.sync(proxy.url, logs=True)
    box.start_broker()
    for _point in range(fault_points // 4):
        proxy.plan(logs_cut(proxy, rng))
        done = box.run("prints")
        proxy.plan([])
        proxy.restore()
        assert done.returncode == 0, done.stderr
        record = box.last("prints")
        expected = box.expected_events(record)
        job_lines = [m for m in expected if not m.startswith(CRONSYNC_PREFIX)]
        assert len(job_lines) == LINES and all(SECRET not in m for m in expected)
        stream = record["cloudwatch_stream"]

        def whole(stream: str = stream, expected: list[str] = expected) -> bool:
            if stream_messages(stored, stream) == expected:
                return True
            box.flush()  # what the broker left pending goes now the network is back
            return False

        wait_for(whole, f"{stream} delivered once, in order")
    assert proxy.cuts, "no fault was injected"
    assert files_holding(box.base, [SECRET]) == []
