"""The fleet view against moto's DynamoDB over HTTP on 127.0.0.1: sandbox hosts of one
upstream (their own roots, agent configs and host names) write their status items after
each agent cycle (in process), and ``cronsync fleet`` (a real process) reads them back
and flags what is wrong; a table that cannot be reached is one line and exit 2, and it
never fails an agent's cycle.

A host's clock is our own seam (``FleetStatus``'s ``clock``): a silent host is one whose
last item was written an hour ago, not a test that waits.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest
from test_agent import REGION as AGENT_REGION
from test_agent import aws_toml

from cronsync.agent.fleetstatus import FleetStatus
from cronsync.agent.loop import Agent
from cronsync.core.fleetitem import from_attributes, summary_from_item
from helpers.awsbox import wait_for
from helpers.fleettable import REGION, create_fleet_table, dynamodb_client
from helpers.sandbox import Sandbox, another_host

TABLE = "cronsync-fleet-test"


def fleet_toml(base: Path, endpoint: str, table: str = TABLE) -> str:
    """[aws] (in the fleet table's region, a credentials file) and [fleet] table."""
    aws = aws_toml(base, endpoint, metrics=False)
    aws = aws.replace(f'region = "{AGENT_REGION}"', f'region = "{REGION}"')
    return aws + f'[fleet]\ntable = "{table}"\n'


def host_items(endpoint: str) -> dict[str, dict[str, Any]]:
    pages = dynamodb_client(endpoint).query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "host"}},
    )
    return {item["sk"]["S"]: from_attributes(item) for item in pages["Items"]}


class Lines:
    """The agent's log lines (from any thread)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


def agent_of(host: Sandbox, clock: Optional[datetime] = None) -> tuple[Agent, Lines]:
    """An in-process agent of ``host`` whose fleet status logs into the returned lines
    (and, with ``clock``, believes it is that moment)."""
    agent = Agent(str(host.config_path))
    log = Lines()
    if clock is not None:
        agent.fleet = FleetStatus(log, agent.metrics.installed_jobs, clock=lambda: clock)
    else:
        agent.fleet = FleetStatus(log, agent.metrics.installed_jobs)
    return agent, log


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    """Agents made by a test, closed at its end (their self-pipes, their writers)."""
    made: list[Agent] = []
    yield made
    for agent in made:
        agent.fleet.stop(5)
        os.close(agent._wake_r)
        os.close(agent._wake_w)


def cycle(agent: Agent, agents: list[Agent]) -> None:
    """One agent cycle, then wait until its item is written (or its write failed)."""
    if agent not in agents:
        agents.append(agent)
    writer = agent.fleet.writer
    before = writer.written + writer.failed
    outcome = agent.sync()
    assert outcome is not None and outcome.record.ok, outcome
    wait_for(lambda: writer.written + writer.failed > before, "the fleet item's write")


def fleet(host: Sandbox, *args: str) -> tuple[int, Any, str]:
    done = host.cli("fleet", *args)
    out = json.loads(done.stdout) if "--json" in args else done.stdout
    return done.returncode, out, done.stderr


@pytest.fixture
def fleet_hosts(sandbox: Sandbox, endpoint: str) -> list[Sandbox]:
    """batch-1 (the sandbox), batch-2 and batch-3 of one upstream, in one fleet table."""
    create_fleet_table(endpoint, TABLE)
    sandbox.write_config(fleet_toml(sandbox.base, endpoint))
    extra = fleet_toml(sandbox.base, endpoint)
    return [
        sandbox,
        another_host(sandbox, "batch-2", extra),
        another_host(sandbox, "batch-3", extra),
    ]


def test_each_agent_writes_its_item_after_a_cycle(
    fleet_hosts: list[Sandbox], endpoint: str, agents: list[Agent]
) -> None:
    for host in fleet_hosts[:2]:
        cycle(agent_of(host)[0], agents)
    items = host_items(endpoint)
    assert sorted(items) == ["batch-1", "batch-2"]
    item, head = items["batch-2"], fleet_hosts[0].upstream.head()
    assert item["pk"] == "host" and item["format"] == 1
    found = summary_from_item(item)
    assert found is not None and found.host == "batch-2" and found.groups == ("eu",)
    assert found.installed_commit == head and found.fetched_commit == head
    assert found.health == "ok" and found.last_sync_result == "installed"
    assert found.drift == 0 and found.stale_jobs == () and found.one_host_jobs == ()
    assert found.repo == str(fleet_hosts[0].upstream.bare) and found.branch == "main"
    assert found.interval == 70  # 60 s and the 10 s splay
    beat = datetime.fromisoformat(found.heartbeat)
    assert item["expires_at"] == int(beat.timestamp()) + 1440 * 70
    assert abs((datetime.now(timezone.utc) - beat).total_seconds()) < 3600  # a sane clock

    code, doc, err = fleet(fleet_hosts[0], "--json")
    assert (code, err) == (0, ""), doc
    assert doc["healthy"] is True and doc["table"] == TABLE
    assert [row["host"] for row in doc["hosts"]] == ["batch-1", "batch-2"]
    assert doc["tips"][0]["commit"] == head


def test_fleet_flags_a_silent_an_unhealthy_and_a_behind_host(
    fleet_hosts: list[Sandbox], endpoint: str, agents: list[Agent]
) -> None:
    one, two, three = fleet_hosts
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    cycle(agent_of(three, clock=an_hour_ago)[0], agents)  # then silent, on the old commit
    one.upstream.write("jobs/fleet-probe.toml", ONE_HOST_JOB)
    one.upstream.write("jobs/fleet-lone.toml", ONE_HOST_JOB + 'hosts = ["batch-2"]\n')
    one.upstream.write("jobs/fleet-nowhere.toml", ONE_HOST_JOB + 'hosts = ["batch-9"]\n')
    tip = one.upstream.commit_and_push("one-host jobs")
    cycle(agent_of(one)[0], agents)
    agent_two = agent_of(two)[0]
    cycle(agent_two, agents)
    with two.cron_file.open("a") as cron:  # edited by hand: drift, so degraded
        cron.write("* * * * * root /bin/true\n")
    cycle(agent_two, agents)

    code, doc, err = fleet(one, "--json")
    assert (code, err) == (1, "")
    found = {row["host"]: row for row in doc["hosts"]}
    assert [row["host"] for row in doc["hosts"]] == ["batch-3", "batch-2", "batch-1"]
    assert found["batch-3"]["flags"] == ["silent", "behind-tip"]
    assert found["batch-3"]["silent_for"] >= 3600
    assert found["batch-2"]["flags"] == ["unhealthy"] and found["batch-2"]["drift"] == 1
    assert found["batch-1"]["flags"] == []
    assert doc["tips"][0]["commit"] == tip and doc["healthy"] is False
    assert found["batch-1"]["one_host_jobs"] == ["fleet-probe"]
    assert found["batch-2"]["one_host_jobs"] == ["fleet-lone", "fleet-probe"]
    assert doc["jobs"] == [
        {"job": "fleet-lone", "hosts": ["batch-2"], "healthy_hosts": [], "flags": [NO_HOST]},
        {"job": "fleet-nowhere", "hosts": [], "healthy_hosts": [], "flags": [NO_HOST]},
        {
            "job": "fleet-probe",
            "hosts": ["batch-1", "batch-2"],
            "healthy_hosts": ["batch-1"],
            "flags": [],
        },
    ]

    code, text, err = fleet(one)
    assert (code, err) == (1, "")
    rows = [line for line in text.splitlines() if line.startswith("batch-")]
    assert [row.split()[0] for row in rows] == ["batch-3", "batch-2", "batch-1"]
    assert re.search(r"^batch-3\s+silent\s.*\s1h( \S+)* ago\s", rows[0]), text
    assert "silent, behind-tip" in rows[0] and "unhealthy" in rows[1]
    assert "  fleet-lone: no healthy host installs it (installed on batch-2)" in text
    assert "  fleet-nowhere: no healthy host installs it (installed nowhere)" in text
    assert (
        text.splitlines()[-1] == "fleet: 3 hosts, 2 flagged; 2 one-host jobs without a healthy host"
    )


NO_HOST = "no-healthy-host"


ONE_HOST_JOB = """\
description = "Runs on one host of the fleet"
owner = "ops@example.com"
schedule = "15 4 * * *"
command = ["true"]
user = "batch"
run_on = "one-host"
timezone = "UTC"
"""


# --- the table cannot be used -------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_table_is_one_line_and_exit_2(sandbox: Sandbox, endpoint: str) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}"
    sandbox.write_config(fleet_toml(sandbox.base, unreachable))
    code, doc, err = fleet(sandbox, "--json")
    assert code == 2 and doc["exit_code"] == 2
    assert re.fullmatch(rf"cronsync: cannot read the fleet table {TABLE}: .*\n", err), err
    assert "Traceback" not in err and "127.0.0.1" in err

    sandbox.write_config(fleet_toml(sandbox.base, endpoint, table="no-such-table"))
    code, _, err = fleet(sandbox)
    assert code == 2
    assert err.startswith("cronsync: cannot read the fleet table no-such-table: ")
    assert "ResourceNotFoundException" in err and err.count("\n") == 1


def test_no_fleet_table_is_a_config_error(sandbox: Sandbox) -> None:
    code, _, err = fleet(sandbox)
    assert code == 2
    assert err == f"cronsync: {sandbox.config_path}: no [fleet] table: " + (
        'this host is in no fleet (set [fleet] table = "NAME", the DynamoDB table its '
        "agents write to)\n"
    )


def test_a_failing_write_never_fails_a_cycle_and_is_said_once(
    sandbox: Sandbox, endpoint: str, agents: list[Agent]
) -> None:
    sandbox.write_config(fleet_toml(sandbox.base, endpoint))  # no table yet
    agent, log = agent_of(sandbox)
    cycle(agent, agents)
    cycle(agent, agents)
    assert agent.fleet.writer.failed == 2 and agent.fleet.writer.written == 0
    assert len(log.lines) == 1, log.lines
    assert log.lines[0].startswith("fleet: status not written: FleetTableError: cannot write")
    create_fleet_table(endpoint, TABLE)
    cycle(agent, agents)
    assert log.lines[1:] == ["fleet: status written again (2 failed before)"]
    assert sorted(host_items(endpoint)) == ["batch-1"]


def test_without_a_fleet_table_nothing_is_written(
    sandbox: Sandbox, endpoint: str, agents: list[Agent]
) -> None:
    create_fleet_table(endpoint, TABLE)
    sandbox.write_config(aws_toml(sandbox.base, endpoint, metrics=False))
    agent, log = agent_of(sandbox)
    agents.append(agent)
    assert agent.sync() is not None
    agent.fleet.stop(5)
    assert agent.fleet.writer.written + agent.fleet.writer.failed == 0 and log.lines == []
    assert host_items(endpoint) == {}
