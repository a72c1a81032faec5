"""Two sandbox hosts (own paths.root, agent.toml and host name), each with its broker
in this process, share one one-host job through one fleet table in moto: the real
shim, the real broker, DynamoDB over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from helpers.awsbox import NAMESPACE, AwsShimSandbox, aws_box, client, wait_for
from helpers.fleettable import create_fleet_table, dynamodb_client, serialised_moto
from helpers.motoserver import isolate_aws_env, reset_moto

JOB = 'run_on = "one-host"\ntimezone = "UTC"\ncommand = ["scripts/report.sh"]\n'


@pytest.fixture(scope="module")
def serial_moto() -> Iterator[str]:
    with serialised_moto() as url:
        yield url


def fleet_host(box: AwsShimSandbox, endpoint: str, name: str, table: str) -> AwsShimSandbox:
    """``box`` synced as a host named ``name`` in the fleet of ``table``."""
    box.script("report.sh", '#!/bin/sh\necho "token=$CRONSYNC_FENCING_TOKEN"\n')
    box.job("report", JOB)
    box.job("report-anyway", JOB + 'fleet_unreachable = "run"\n')
    box.job("plain", 'command = ["scripts/report.sh"]\n')
    box.sync(endpoint, secrets="file", logs=False, metrics=True)
    text = box.config_path.read_text().replace('name = "batch-1"', f'name = "{name}"')
    box.config_path.write_text(text + f'[fleet]\ntable = "{table}"\nlease_ttl = "30s"\n')
    assert run_sync(load_config(str(box.config_path))).record.result == "installed"
    return box


def run_shim(box: AwsShimSandbox, job: str, *python: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *python, "-m", "cronsync.cli.shim", "--root", str(box.root), job],
        capture_output=True,
        text=True,
        env=box.env(),
        timeout=120,
    )


def imported(done: subprocess.CompletedProcess[str]) -> set[str]:
    """The modules a ``-X importtime`` run imported."""
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}


def lease_failures(endpoint: str) -> set[tuple[str, str]]:
    """(job, host) of every FleetLeaseFailed metric published."""
    listed = client(endpoint, "cloudwatch").list_metrics(
        Namespace=NAMESPACE, MetricName="FleetLeaseFailed"
    )["Metrics"]
    found = set()
    for metric in listed:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        if "Job" in dimensions:
            found.add((dimensions["Job"], dimensions["Host"]))
    return found


def lease_item(endpoint: str) -> dict[str, Any]:
    key = {"pk": {"S": "job#report"}, "sk": {"S": "lease"}}
    item: dict[str, Any] = dynamodb_client(endpoint).get_item(TableName="cronsync-fleet", Key=key)
    return dict(item.get("Item", {}))


def history(box: AwsShimSandbox, job: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "history", job],
        capture_output=True,
        text=True,
        env=box.env(CRONSYNC_CONFIG=str(box.config_path)),
        timeout=60,
    )
    return done.stdout + done.stderr


def test_two_hosts_run_one_occurrence_once_and_say_where(
    tmp_path: Path, serial_moto: str, git_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
    endpoint = reset_moto(serial_moto)
    table = create_fleet_table(endpoint)
    minute = (int(time.time()) // 60) * 60 + 1  # both brokers' clock: one occurrence
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with aws_box(tmp_path / "a") as box_a, aws_box(tmp_path / "b") as box_b:
        a = fleet_host(box_a, endpoint, "batch-a", table)
        b = fleet_host(box_b, endpoint, "batch-b", table)
        try:
            for box in (a, b):
                box.start_broker().broker.leases.clock = lambda: float(minute)
            first = run_shim(a, "report", "-X", "importtime")
            assert first.returncode == 0, first.stderr
            assert "cronsync.run.fleet" in imported(first)
            assert not {"boto3", "botocore"} & imported(first)  # AWS is the broker's
            plain = run_shim(a, "plain", "-X", "importtime")
            assert plain.returncode == 0, plain.stderr
            assert "cronsync.run.fleet" not in imported(plain)  # an every-host job: no cost
            won = a.last("report")
            assert won["status"] == "succeeded", (won, a.broker_log)
            assert won["extra"]["fleet"]["token"] == 1
            assert "token=1" in Path(won["log"]).read_text()

            second = run_shim(b, "report")
            assert second.returncode == 0, second.stderr
            lost = b.last("report")
            assert lost["status"] == "skipped"
            assert lost["reason"].startswith("ran on batch-a: occurrence ")
            assert "ran on batch-a" in history(b, "report")

            # a's broker released the lease when a's run ended (holder_until 0)
            wait_for(lambda: lease_item(endpoint)["holder_until"] == {"N": "0"}, "the release")
            # the next occurrence
            for box in (a, b):
                assert box.broker is not None
                box.broker.broker.leases.clock = lambda: float(minute + 60)
            assert run_shim(b, "report").returncode == 0
            assert b.last("report")["extra"]["fleet"]["token"] == 2

            # b's broker down: skip (recorded), or run anyway
            b.stop_broker()
            assert run_shim(b, "report").returncode == 0
            skipped = b.last("report")
            assert skipped["status"] == "skipped"
            assert "fleet_unreachable = skip" in skipped["reason"]
            assert skipped["extra"]["fleet"]["lease"] == "failed"
            assert run_shim(b, "report-anyway").returncode == 0
            ran = b.last("report-anyway")
            assert ran["status"] == "succeeded"
            assert ran["extra"]["fleet"]["fleet_unreachable"] == "run"
            assert "token=\n" in Path(ran["log"]).read_text()

            # back up, b's broker publishes FleetLeaseFailed from both records
            b.start_broker()
            wanted = {("report", "batch-b"), ("report-anyway", "batch-b")}
            wait_for(lambda: wanted <= lease_failures(endpoint), "FleetLeaseFailed published")
        finally:
            a.stop_broker()
            b.stop_broker()
    json.dumps(won)  # the records are plain JSON
