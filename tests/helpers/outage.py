"""Outage trials of CloudWatch Logs delivery: a run log delivered to moto through a
:class:`~helpers.tcpproxy.CuttingProxy` that cuts every connection at random points,
then CloudWatch's copy compared with the log, event for event.

Used by ``tests/integration/test_cloudlogs_outage.py`` (a smaller run) and
``bench/bench_cloudlogs_outage.py`` (20 trials of 100,000 lines).
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from cronsync.cloud.logs import LogsSender, Pending, deliver, pending_path, save_pending
from cronsync.cloud.send import Retries
from cronsync.core import logformat
from cronsync.host.awsclients import AwsSettings, make_client
from helpers.tcpproxy import Cut, CuttingProxy

GROUP = "/cronsync/outage"
# Fast retries: the proxy is up again as soon as the test says so.
QUICK = Retries(backoff=0.01, cap=0.1, settle=0)
MAX_ROUNDS = 40
# The same line, many times in one block (one timestamp): a batch must be recognised
# by more than its content.
REPEATED = b"waiting for the lock"
# Numbered lines are up to this long: a few thousand a batch.
WIDTH = 400


@dataclass(frozen=True)
class Traffic:
    """What one delivery sends through the proxy: request bytes, replies, and
    PutLogEvents requests."""

    up_bytes: int
    replies: int
    puts: int


@dataclass(frozen=True)
class Trial:
    """One trial's outcome.

    Attributes:
        expected, stored: the log's events and what CloudWatch holds, (ms, message).
        rounds: deliveries it took.
        cuts: cuts the proxy made during it.
        recovered: batches whose reply was lost and that the stream showed stored.
        unverified: batches sent again without knowing whether they had arrived.
        seconds: how long it took.
    """

    expected: list[tuple[int, str]]
    stored: list[tuple[int, str]]
    rounds: int
    cuts: int
    recovered: int
    unverified: int
    seconds: float

    @property
    def duplicates(self) -> int:
        """Events stored more often than the log has them."""
        return max(0, len(self.stored) - len(self.expected))


def write_run_log(
    path: Path,
    lines: int,
    rng: random.Random,
    *,
    t0: Optional[int] = None,
    width: int = WIDTH,
) -> list[tuple[int, str]]:
    """Write a run log of ``lines`` lines in blocks of varied sizes, streams and
    timestamps from ``t0`` (a minute ago by default) on: several blocks share a
    millisecond, some blocks repeat one line, the others are numbered lines of up to
    ``width`` bytes.

    Returns:
        The events CloudWatch must end up with, in order.
    """
    if t0 is None:
        t0 = time.time_ns() // 1_000_000 - 60_000
    expected: list[tuple[int, str]] = []
    block = 0
    with open(path, "wb") as handle:
        while len(expected) < lines:
            count = min(lines - len(expected), rng.choice((1, 7, 50, 400, 3000)))
            stamp, stream = t0 + block // 3, rng.choice("oe")
            if rng.random() < 0.3:
                texts = [REPEATED] * count
            else:
                first = len(expected)
                texts = [b"%07d " % (first + n) + b"x" * rng.randrange(width) for n in range(count)]
            handle.write(logformat.encode_block(stream, stamp, b"\n".join(texts) + b"\n"))
            prefix = "[stderr] " if stream == "e" else ""
            expected += [(stamp, prefix + text.decode()) for text in texts]
            block += 1
    return expected


@functools.lru_cache(maxsize=4)
def _reader(aws: AwsSettings) -> Any:
    """A logs client for reading what moto holds (one per endpoint)."""
    return make_client("logs", aws)


def stored_events(aws: AwsSettings, stream: str) -> list[tuple[int, str]]:
    """Return every event of ``stream`` in GROUP, read from moto directly."""
    client = _reader(aws)
    events: list[tuple[int, str]] = []
    params: dict[str, Any] = {"logGroupName": GROUP, "logStreamName": stream}
    token = None
    while True:
        page = client.get_log_events(startFromHead=True, **params)
        events += [(event["timestamp"], event["message"]) for event in page["events"]]
        if page["nextForwardToken"] == token:
            return events
        token = params["nextToken"] = page["nextForwardToken"]


def random_cuts(rng: random.Random, proxy: CuttingProxy, traffic: Traffic) -> list[Cut]:
    """Plan 1 to 4 cuts at random points of a delivery with ``traffic``, one of them
    dropping a PutLogEvents reply; about half of them start an outage."""
    # another log of that size may make a batch or two fewer: stay clear of the last
    put = proxy.puts + rng.randint(1, max(1, traffic.puts * 9 // 10))
    cuts = [Cut("put-reply", put, outage=rng.random() < 0.5)]
    for _ in range(rng.randrange(4)):
        outage = rng.random() < 0.5
        if rng.random() < 0.5:
            cuts.append(Cut("reply", proxy.replies + rng.randint(1, traffic.replies), outage))
        else:
            cuts.append(Cut("up", proxy.up_bytes + rng.randint(1, traffic.up_bytes), outage))
    return cuts


def run_trial(
    proxy: CuttingProxy,
    moto: AwsSettings,
    workdir: Path,
    name: str,
    lines: int,
    rng: random.Random,
    traffic: Traffic,
    *,
    width: int = WIDTH,
) -> Trial:
    """Deliver a fresh run log of ``lines`` lines through ``proxy`` (cut at random
    points, see :func:`random_cuts`; no cut when ``traffic`` has no replies), one
    delivery after another (each with a new sender, so only the pending file carries
    over) until complete; read what CloudWatch holds.

    Raises:
        AssertionError: not delivered after MAX_ROUNDS deliveries.
    """
    began = time.monotonic()
    log = workdir / f"{name}.log"
    expected = write_run_log(log, lines, rng, width=width)
    stream = f"host/job/{name}"
    pending = pending_path(workdir / "runs", "job", name)
    save_pending(pending, Pending(str(log), GROUP, stream, finished=True))
    cuts_before = len(proxy.cuts)
    proxy.plan(random_cuts(rng, proxy, traffic) if traffic.replies else [])
    proxied = AwsSettings(region="us-east-1", endpoint_url=proxy.url, connect_timeout=2.0)
    recovered = unverified = rounds = 0
    while True:
        rounds += 1
        sender = LogsSender(proxied, retries=QUICK)
        result = deliver(pending, sender, time.monotonic() + 300)
        recovered += sender.recovered_batches
        unverified += sender.unverified_batches
        if result.complete:
            break
        assert rounds < MAX_ROUNDS, f"{name}: not delivered after {rounds} rounds: {result}"
        proxy.restore()
    proxy.plan([])
    proxy.restore()
    stored = stored_events(moto, stream)
    log.unlink()
    seconds = time.monotonic() - began
    cuts = len(proxy.cuts) - cuts_before
    return Trial(expected, stored, rounds, cuts, recovered, unverified, seconds)


def measure_traffic(
    proxy: CuttingProxy, moto: AwsSettings, workdir: Path, lines: int, *, width: int = WIDTH
) -> Traffic:
    """Deliver one run log of ``lines`` lines (see :func:`write_run_log`) without cuts;
    return its traffic.

    Raises:
        AssertionError: it was not delivered exactly.
    """
    up_bytes, replies, puts = proxy.up_bytes, proxy.replies, proxy.puts
    clean = Traffic(0, 0, 0)
    trial = run_trial(proxy, moto, workdir, "clean", lines, random.Random(0), clean, width=width)
    assert trial.stored == trial.expected
    return Traffic(proxy.up_bytes - up_bytes, proxy.replies - replies, proxy.puts - puts)
