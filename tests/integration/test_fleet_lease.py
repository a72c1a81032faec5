"""One-host leases against moto's DynamoDB over HTTP: ``cronsync.broker.fleetlease``.

Hosts are LeaseStores with their own names, clients and (injected) clocks, racing
from threads for the same table.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronsync.broker.fleetlease import RAN, RUNNING, LeaseStore, LeaseUnavailable
from cronsync.broker.leases import FleetLeases, Held
from cronsync.host.config import FleetSettings, load_config
from cronsync.run.jobspec import JobSpec, Release
from cronsync.run.procs import process_start
from helpers.fleettable import create_fleet_table, dynamodb_client, serialised_moto
from helpers.motoserver import reset_moto
from helpers.sandbox import agent_toml

TTL = 60
START = 1_800_000_000  # an occurrence's epoch seconds (a whole minute)


@pytest.fixture(scope="module")
def serial_moto() -> Iterator[str]:
    """moto on 127.0.0.1 applying one request at a time, as DynamoDB does per item
    (helpers/fleettable.py says why)."""
    with serialised_moto() as url:
        yield url


@pytest.fixture
def endpoint(serial_moto: str) -> str:
    """The module's moto server, emptied for this test."""
    return reset_moto(serial_moto)


class Clock:
    """A settable clock, skewed by ``skew`` seconds."""

    def __init__(self, now: float, skew: float = 0.0) -> None:
        self.now, self.skew = now, skew

    def __call__(self) -> float:
        return self.now + self.skew


def store(endpoint: str, table: str, host: str, clock: Clock) -> LeaseStore:
    return LeaseStore(dynamodb_client(endpoint), table, host, TTL, clock)


def race(
    stores: list[LeaseStore], clocks: list[Clock], occurrences: int, forbid: bool
) -> Counter[int]:
    """Every store claims every occurrence, in lockstep threads; winners per occurrence."""
    barrier = threading.Barrier(len(stores))
    wins: Counter[int] = Counter()
    tokens: list[tuple[int, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def host(index: int) -> None:
        try:
            for number in range(occurrences):
                occurrence = START + 60 * number
                barrier.wait(timeout=60)
                clocks[index].now = occurrence + 1
                claim = stores[index].claim("report", occurrence, f"run-{index}-{number}", forbid)
                if claim.won:
                    with lock:
                        wins[occurrence] += 1
                        tokens.append((occurrence, claim.token))
                    if forbid:
                        stores[index].release("report", claim.token)
                else:
                    assert claim.why == RAN
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=host, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert [token for _occ, token in sorted(tokens)] == list(range(1, occurrences + 1))
    return wins


@pytest.mark.parametrize("forbid", [False, True])
def test_hosts_racing_run_each_occurrence_exactly_once(
    endpoint: str, request: pytest.FixtureRequest, forbid: bool
) -> None:
    occurrences = 1000 if request.config.getoption("--long") else 100
    table = create_fleet_table(endpoint)
    clocks = [Clock(START), Clock(START, 30), Clock(START, -30)]
    stores = [store(endpoint, table, f"batch-{i}", clocks[i]) for i in range(3)]
    wins = race(stores, clocks, occurrences, forbid)
    assert len(wins) == occurrences and set(wins.values()) == {1}


def test_a_lost_occurrence_says_who_ran_it(endpoint: str) -> None:
    table = create_fleet_table(endpoint)
    one, two = (store(endpoint, table, f"batch-{i}", Clock(START)) for i in (1, 2))
    assert one.claim("report", START, "r1", forbid=False).won
    lost = two.claim("report", START, "r2", forbid=False)
    assert (lost.won, lost.holder, lost.why, lost.token) == (False, "batch-1", RAN, 1)
    # an older occurrence (a host that is late) is lost too, never run twice
    assert not two.claim("report", START - 60, "r3", forbid=False).won
    assert two.claim("report", START + 60, "r4", forbid=False).token == 2


def test_forbid_a_dead_holder_s_lease_expires_after_the_ttl(endpoint: str) -> None:
    table = create_fleet_table(endpoint)
    clock_a, clock_b = Clock(START + 1), Clock(START + 1)
    dead, alive = (
        store(endpoint, table, "batch-a", clock_a),
        store(endpoint, table, "batch-b", clock_b),
    )
    won = dead.claim("report", START, "r1", forbid=True)
    assert won.won  # ... and batch-a dies mid-run: no renewal, no release
    clock_b.now = START + 60 + 1  # the next occurrence, within the TTL
    busy = alive.claim("report", START + 60, "r2", forbid=True)
    assert (busy.won, busy.why, busy.holder) == (False, RUNNING, "batch-a")
    assert busy.holder_until == START + 1 + TTL
    clock_b.now = START + 120 + 1  # the one after: the lease has expired
    taken = alive.claim("report", START + 120, "r3", forbid=True)
    assert taken.won and taken.token == won.token + 1
    # the dead host, back, cannot renew or release what is no longer its
    assert not dead.renew("report", won.token)
    assert not dead.release("report", won.token)


def test_forbid_renewal_keeps_the_job_and_release_frees_it(endpoint: str) -> None:
    table = create_fleet_table(endpoint)
    clock_a, clock_b = Clock(START + 1), Clock(START + 1)
    a, b = store(endpoint, table, "batch-a", clock_a), store(endpoint, table, "batch-b", clock_b)
    token = a.claim("report", START, "r1", forbid=True).token
    for minute in range(1, 4):  # a long run, renewed every TTL/3
        clock_a.now = clock_b.now = START + 20 * minute
        assert a.renew("report", token)
    clock_b.now = START + 61
    assert not b.claim("report", START + 60, "r2", forbid=True).won
    assert a.release("report", token)
    assert b.claim("report", START + 60, "r3", forbid=True).won


def test_allow_does_not_wait_for_a_running_holder(endpoint: str) -> None:
    table = create_fleet_table(endpoint)
    a, b = (store(endpoint, table, host, Clock(START + 61)) for host in ("batch-a", "batch-b"))
    assert a.claim("report", START, "r1", forbid=False).won
    assert b.claim("report", START + 60, "r2", forbid=False).won


def test_table_unreachable_or_missing_is_unavailable(endpoint: str) -> None:
    client: Any = dynamodb_client("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(LeaseUnavailable, match="fleet table 'cronsync-fleet'"):
        LeaseStore(client, "cronsync-fleet", "batch-1", TTL, Clock(START)).claim(
            "report", START, "r1", forbid=False
        )
    with pytest.raises(LeaseUnavailable, match="ResourceNotFoundException"):
        store(endpoint, "no-such-table", "batch-1", Clock(START)).claim(
            "report", START, "r1", forbid=False
        )


# --- the broker's side: FleetLeases (occurrence from the job, renewal while the shim lives)


def broker_leases(tmp_path: Path, endpoint: str, clock: Clock, log: list[str]) -> FleetLeases:
    tmp_path.mkdir(exist_ok=True)
    config_path = tmp_path / "agent.toml"
    config_path.write_text(
        agent_toml("/nonexistent/repo.git", tmp_path / "root")
        + f'[fleet]\ntable = "cronsync-fleet"\nlease_ttl = "{TTL}s"\n'
    )
    return FleetLeases(load_config(str(config_path)), log.append, clock, dynamodb_client(endpoint))


def one_host_job(tmp_path: Path, **fields: Any) -> JobSpec:
    raw = {"schedule": "*/5 * * * *", "timezone": "Asia/Tokyo", "run_on": "one-host", **fields}
    return JobSpec("report", raw, Release(tmp_path, {"jobs": {"report": raw}, "settings": {}}))


def test_the_broker_names_the_occurrence_and_renews_while_the_shim_lives(
    tmp_path: Path, endpoint: str
) -> None:
    create_fleet_table(endpoint)
    clock, log = Clock(START + 125), []  # 2 minutes 5 s after a */5 minute
    leases = broker_leases(tmp_path, endpoint, clock, log)
    shim = subprocess.Popen(["sleep", "60"])
    try:
        reply = leases.claim(one_host_job(tmp_path), "run-1", shim.pid)
        assert reply["ok"] and reply["won"] and reply["token"] == 1, reply
        assert reply["occurrence"] == "2027-01-15T17:00:00+09:00"  # START is 08:00 UTC
        assert leases.held == 1
        clock.now += TTL  # the renewal moves holder_until on
        leases.renew_all()
        item = dynamodb_client(endpoint).get_item(
            TableName="cronsync-fleet", Key={"pk": {"S": "job#report"}, "sk": {"S": "lease"}}
        )["Item"]
        assert int(item["holder_until"]["N"]) == START + 125 + 2 * TTL
        assert item["holder"]["S"] == "batch-1"
    finally:
        shim.kill()
        shim.wait(timeout=30)
    leases.renew_all()  # the shim is gone: no more renewals, the lease expires
    assert leases.held == 0
    assert any("is gone" in line for line in log), log
    leases.stop()


def test_the_broker_refuses_an_every_host_job_and_says_no_table(
    tmp_path: Path, endpoint: str
) -> None:
    leases = broker_leases(tmp_path, endpoint, Clock(START), [])
    refused = leases.claim(one_host_job(tmp_path, run_on="every-host"), "run-1", os.getpid())
    assert (refused["ok"], refused["kind"]) == (False, "refused")
    missing = leases.claim(one_host_job(tmp_path), "run-1", os.getpid())  # no table yet
    assert (missing["ok"], missing["kind"]) == (False, "unavailable")
    assert "ResourceNotFoundException" in missing["error"]


def test_brokers_with_clocks_30_seconds_apart_race_for_one_occurrence(
    tmp_path: Path, endpoint: str
) -> None:
    """Cron fires on each host when its own clock shows the minute; a late or skewed
    host reads up to a minute later. All name the same occurrence: one runs it."""
    create_fleet_table(endpoint)
    minute = START + 300  # a */5 minute
    replies = []
    for n, reading in enumerate((minute + 0.5, minute + 30, minute + 59.9)):
        leases = broker_leases(tmp_path / f"host-{n}", endpoint, Clock(reading), [])
        replies.append(leases.claim(one_host_job(tmp_path), f"run-{n}", os.getpid()))
        leases.stop()
    assert [reply["won"] for reply in replies] == [True, False, False]
    assert {reply["occurrence"] for reply in replies} == {"2027-01-15T17:05:00+09:00"}
    assert [reply.get("why") for reply in replies[1:]] == ["ran", "ran"]


def lease_item(endpoint: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb_client(endpoint).get_item(
        TableName="cronsync-fleet", Key={"pk": {"S": "job#report"}, "sk": {"S": "lease"}}
    )["Item"]
    return item


def test_a_restarted_broker_takes_over_the_leases_of_running_shims(
    tmp_path: Path, endpoint: str
) -> None:
    """An agent restarted while a forbid run goes on: the new broker renews its lease
    (forbid holds across the fleet) and releases it at the end; a gone shim's is not."""
    create_fleet_table(endpoint)
    clock, log = Clock(START + 1), []
    first = broker_leases(tmp_path, endpoint, clock, log)
    first.config.paths.state_dir.mkdir(parents=True)
    running, gone = subprocess.Popen(["sleep", "60"]), subprocess.Popen(["sleep", "60"])
    try:
        assert first.claim(one_host_job(tmp_path), "run-1", running.pid)["won"]
        first._hold(("other", "run-0"), Held(5, gone.pid, process_start(gone.pid)))
        gone.kill()
        gone.wait(timeout=30)
        first.stop()  # the agent restarts; the shim of run-1 goes on
        again = broker_leases(tmp_path, endpoint, clock, log)
        assert again.held == 1
        assert any("took over the lease of run run-1" in line for line in log), log
        clock.now += TTL
        again.renew_all()
        assert int(lease_item(endpoint)["holder_until"]["N"]) == START + 1 + 2 * TTL
        assert again.release(one_host_job(tmp_path), "run-1")["releasing"] is True
        again.stop()  # writes the release: holder_until 0
        assert int(lease_item(endpoint)["holder_until"]["N"]) == 0
    finally:
        running.kill()
        running.wait(timeout=30)


def test_a_reloaded_config_reaches_the_leases(tmp_path: Path, endpoint: str) -> None:
    """[fleet] table added to agent.toml of a running agent: its next lease uses it."""
    create_fleet_table(endpoint)
    leases = broker_leases(tmp_path, endpoint, Clock(START + 1), [])
    configured = leases.config
    leases.reconfigure(dataclasses.replace(configured, fleet=FleetSettings()))
    refused = leases.claim(one_host_job(tmp_path), "run-1", os.getpid())
    assert (refused["ok"], refused["kind"]) == (False, "unavailable"), refused
    leases.reconfigure(configured)
    assert leases.claim(one_host_job(tmp_path), "run-1", os.getpid())["won"]
    leases.stop()
