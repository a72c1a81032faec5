"""No event twice, none lost, when the network fails around a batch: a TCP proxy on
127.0.0.1 in front of moto's server cuts every connection at chosen or random points
(a reply lost after moto stored the batch, a request cut in the middle, an outage).

The full-size run (20 trials of 100,000 lines) is ``bench/bench_cloudlogs_outage.py``;
here 20 trials of 20,000 lines (four or five batches each).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cronsync.cloud.logs import LogsSender, Pending, deliver, load_pending, pending_path
from cronsync.cloud.spool import save_pending
from cronsync.cloud.spoolstart import PENDING_FORMAT
from cronsync.cloud.tailcheck import StreamEnd
from cronsync.host.awsclients import AwsSettings, Timeouts, make_client
from helpers.motoserver import isolate_aws_env
from helpers.outage import (
    GROUP,
    QUICK,
    measure_traffic,
    run_trial,
    stored_events,
    write_run_log,
)
from helpers.tcpproxy import Cut, CuttingProxy, proxy_running

TRIALS = 12  # random cuts per run (the suite stays under 10 minutes)
LINES = 20_000


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path)


@pytest.fixture
def moto(endpoint: str) -> AwsSettings:
    """The module's moto server (integration conftest), emptied for this test."""
    return AwsSettings(region="us-east-1", endpoint_url=endpoint)


@pytest.fixture
def proxy(moto: AwsSettings) -> Iterator[CuttingProxy]:
    assert moto.endpoint_url is not None
    with proxy_running(moto.endpoint_url) as running:
        yield running


def through(proxy: CuttingProxy, **settings: Any) -> AwsSettings:
    return AwsSettings(region="us-east-1", endpoint_url=proxy.url, **settings)


def new_pending(tmp_path: Path, name: str, lines: int, seed: int) -> tuple[Path, list[Any]]:
    log = tmp_path / f"{name}.log"
    expected = write_run_log(log, lines, random.Random(seed))
    pending = pending_path(tmp_path / "runs", "job", name)
    save_pending(pending, Pending(str(log), GROUP, f"host/job/{name}", finished=True))
    return pending, expected


@pytest.mark.timeout(300)
def test_connections_cut_at_random_points_store_every_event_once_in_order(
    tmp_path: Path, moto: AwsSettings, proxy: CuttingProxy
) -> None:
    traffic = measure_traffic(proxy, moto, tmp_path, LINES)
    assert traffic.puts >= 4  # the batches a trial is cut among
    rng = random.Random(2024)

    trials = [run_trial(proxy, moto, tmp_path, f"t{n}", LINES, rng, traffic) for n in range(TRIALS)]

    for number, trial in enumerate(trials):
        assert len(trial.stored) == LINES, f"trial {number}: {trial.duplicates} duplicates"
        assert trial.stored == trial.expected, f"trial {number}: not the log, in order"
        assert trial.unverified == 0
        assert trial.recovered >= 1  # a reply lost after moto stored the batch
    assert sum(trial.rounds > 1 for trial in trials) >= TRIALS // 4  # outages happened


@pytest.mark.timeout(120)
def test_a_reply_that_never_comes_is_a_read_timeout_and_the_batch_is_not_resent(
    tmp_path: Path, moto: AwsSettings, proxy: CuttingProxy
) -> None:
    pending, expected = new_pending(tmp_path, "held", 12_000, seed=5)
    proxy.plan([Cut("put-reply", 1, hold=True)])
    sender = LogsSender(through(proxy, read_timeout=1.0), retries=QUICK)

    result = deliver(pending, sender, time.monotonic() + 60)

    assert result.complete and result.error is None
    assert (sender.recovered_batches, sender.unverified_batches) == (1, 0)
    assert stored_events(moto, "host/job/held") == expected


@pytest.mark.timeout(120)
def test_a_batch_in_flight_when_the_service_went_away_is_looked_for_next_time(
    tmp_path: Path, moto: AwsSettings, proxy: CuttingProxy
) -> None:
    pending, expected = new_pending(tmp_path, "later", 12_000, seed=6)
    proxy.plan([Cut("put-reply", 2, outage=True)])

    first = deliver(pending, LogsSender(through(proxy), retries=QUICK), time.monotonic() + 60)
    assert first.error is not None and first.unreachable and not first.complete
    kept = load_pending(pending)
    assert kept is not None and kept.in_flight is not None  # stored or not: unknown
    assert kept.attempts == 1 and kept.stream_end is not None

    proxy.restore()
    sender = LogsSender(through(proxy), retries=QUICK)
    second = deliver(pending, sender, time.monotonic() + 60)

    assert second.complete
    assert (sender.recovered_batches, sender.unverified_batches) == (1, 0)
    assert stored_events(moto, "host/job/later") == expected


@pytest.mark.timeout(120)
def test_a_pending_file_from_before_the_tail_check_learns_how_its_stream_ends(
    tmp_path: Path, moto: AwsSettings, proxy: CuttingProxy
) -> None:
    log = tmp_path / "old.log"
    first = write_run_log(log, 3_000, random.Random(7))
    pending = pending_path(tmp_path / "runs", "job", "old")
    save_pending(pending, Pending(str(log), GROUP, "host/job/old"))  # not finished
    assert deliver(pending, LogsSender(moto), time.monotonic() + 60).sent_events == 3_000
    rest = append_run_log(log, tmp_path / "rest.log", 9_000, 8, first[-1][0] + 1)
    # what an earlier cronsync wrote: no stream_end, no in_flight
    data = json.loads(pending.read_text())
    assert data["format"] == PENDING_FORMAT
    del data["stream_end"], data["in_flight"]
    pending.write_text(json.dumps({**data, "finished": True}))
    loaded = load_pending(pending)
    assert loaded is not None and loaded.stream_end is None and loaded.in_flight is None

    proxy.plan([Cut("put-reply", 1)])
    sender = LogsSender(through(proxy), retries=QUICK)
    result = deliver(pending, sender, time.monotonic() + 60)

    assert result.complete
    assert (sender.recovered_batches, sender.unverified_batches) == (1, 0)
    assert stored_events(moto, "host/job/old") == first + rest


def append_run_log(log: Path, scratch: Path, lines: int, seed: int, t0: int) -> list[Any]:
    """Append a run log of ``lines`` lines stamped from ``t0`` to ``log``; return its
    events."""
    events = write_run_log(scratch, lines, random.Random(seed), t0=t0)
    with open(log, "ab") as handle:
        handle.write(scratch.read_bytes())
    return events


class NoReading:
    """A logs client (our seam: ``LogsSender(client=...)``) whose role may not read
    streams: GetLogEvents is refused, as without ``logs:GetLogEvents``."""

    def __init__(self, aws: AwsSettings) -> None:
        self._client = make_client("logs", aws, validate=False, timeouts=Timeouts(2, 10, 1))

    def get_log_events(self, **params: Any) -> Any:
        error = {"Code": "AccessDeniedException", "Message": "not allowed"}
        raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Get")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.timeout(120)
def test_a_stream_that_may_not_be_read_gets_the_batch_again_rather_than_lose_it(
    tmp_path: Path, moto: AwsSettings, proxy: CuttingProxy
) -> None:
    pending, expected = new_pending(tmp_path, "blind", 12_000, seed=8)
    proxy.plan([Cut("put-reply", 1)])
    sender = LogsSender(through(proxy), NoReading(through(proxy)), retries=QUICK)

    result = deliver(pending, sender, time.monotonic() + 60)

    assert result.complete
    assert (sender.recovered_batches, sender.unverified_batches) == (0, 1)
    stored = stored_events(moto, "host/job/blind")
    first_batch = len(stored) - len(expected)
    assert first_batch > 0  # at least once: the first batch is there twice
    assert sorted(stored) == sorted(expected[:first_batch] + expected)


@pytest.mark.timeout(120)
def test_a_batch_in_flight_is_read_again_from_a_log_that_grew_meanwhile(
    tmp_path: Path, moto: AwsSettings
) -> None:
    log = tmp_path / "growing.log"
    expected = write_run_log(log, 6_000, random.Random(9))
    pending = pending_path(tmp_path / "runs", "job", "growing")
    save_pending(pending, Pending(str(log), GROUP, "host/job/growing"))  # not finished

    class DiesAfterSending(LogsSender):
        def send(self, group: str, stream: str, events: list[Any]) -> None:
            super().send(group, stream, events)
            raise RuntimeError("killed after the service took the batch")

    with pytest.raises(RuntimeError, match="killed"):
        deliver(pending, DiesAfterSending(moto), time.monotonic() + 60)
    # the job wrote more before the next delivery
    more = append_run_log(log, tmp_path / "more.log", 3_000, 10, expected[-1][0] + 1)
    saved = load_pending(pending)
    assert saved is not None and saved.in_flight is not None
    save_pending(pending, Pending(**{**saved.__dict__, "finished": True}))
    sender = LogsSender(moto, retries=QUICK)

    result = deliver(pending, sender, time.monotonic() + 60)

    assert result.complete
    assert (sender.recovered_batches, sender.unverified_batches) == (1, 0)
    assert stored_events(moto, "host/job/growing") == expected + more


@pytest.mark.timeout(60)
def test_the_stream_end_is_kept_in_the_pending_file_between_deliveries(
    tmp_path: Path, moto: AwsSettings
) -> None:
    log = tmp_path / "r.log"
    expected = write_run_log(log, 500, random.Random(11))
    pending = pending_path(tmp_path / "runs", "job", "r")
    save_pending(pending, Pending(str(log), GROUP, "host/job/r"))  # not finished

    deliver(pending, LogsSender(moto), time.monotonic() + 60)

    saved = load_pending(pending)
    assert saved is not None and saved.in_flight is None
    last_ms = expected[-1][0]
    assert saved.stream_end == StreamEnd(last_ms, sum(ms == last_ms for ms, _ in expected))


@pytest.mark.timeout(60)
def test_a_lost_reply_to_a_batch_the_service_partly_rejected_is_found_by_its_stored_part(
    tmp_path: Path, moto: AwsSettings, proxy: CuttingProxy
) -> None:
    day_ms = 24 * 3600 * 1000
    fortnight_ago = time.time_ns() // 1_000_000 - 14 * day_ms
    log = tmp_path / "late.log"
    old = write_run_log(log, 5, random.Random(12), t0=fortnight_ago - 3600_000)  # too old
    kept = append_run_log(log, tmp_path / "kept.log", 200, 13, fortnight_ago + 3600_000)
    pending = pending_path(tmp_path / "runs", "job", "late")
    save_pending(pending, Pending(str(log), GROUP, "host/job/late", finished=True))
    proxy.plan([Cut("put-reply", 1)])
    sender = LogsSender(through(proxy), retries=QUICK)

    result = deliver(pending, sender, time.monotonic() + 60)

    assert result.complete and result.sent_batches == 1  # one batch: within 24 hours
    assert (sender.recovered_batches, sender.unverified_batches) == (1, 0)
    assert result.rejected_events == len(old)
    assert stored_events(moto, "host/job/late") == kept
