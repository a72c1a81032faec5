"""Forwarding run logs to CloudWatch Logs, over real HTTP to a moto server.

One moto server per module (state reset between tests); faults are injected by
pointing boto3 at a closed port, and a crash by a sender (our own seam) that raises.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cronsync.cloud.batch import Event, Position
from cronsync.cloud.logreader import open_log, try_lock
from cronsync.cloud.logs import (
    DeliveryError,
    FlushSummary,
    LiveForwarder,
    LogsSender,
    Pending,
    deliver,
    flush_pending,
    load_pending,
    pending_path,
    save_pending,
)
from cronsync.cloud.pending import InFlight
from cronsync.cloud.tailcheck import StreamEnd
from cronsync.core import logformat
from cronsync.host.awsclients import AwsSettings, make_client
from helpers.motoserver import isolate_aws_env

GROUP = "/cronsync/test"
MIB = 1024 * 1024


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path)


@pytest.fixture
def aws(endpoint: str) -> AwsSettings:
    """The module's moto server (integration conftest), emptied for this test."""
    return AwsSettings(region="us-east-1", endpoint_url=endpoint)


@pytest.fixture
def aws_down() -> AwsSettings:
    return AwsSettings(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        connect_timeout=1.0,
        max_attempts=1,
    )


def write_log(path: Path, *blocks: tuple[str, int, bytes], mode: str = "ab") -> None:
    with open(path, mode) as handle:
        for stream, ms, lines in blocks:
            handle.write(logformat.encode_block(stream, ms, lines))


def start_pending(
    tmp_path: Path,
    log: Path,
    *,
    job: str = "job",
    run: str = "r1",
    finished: bool = True,
    stream: str = "host/job/r1",
) -> Path:
    path = pending_path(tmp_path / "runs", job, run)
    save_pending(path, Pending(str(log), GROUP, stream, finished=finished))
    return path


def fetch(aws: AwsSettings, stream: str = "host/job/r1") -> list[tuple[int, str]]:
    client = make_client("logs", aws)
    events: list[tuple[int, str]] = []
    token = None
    while True:
        extra = {"nextToken": token} if token else {}
        page = client.get_log_events(
            logGroupName=GROUP, logStreamName=stream, startFromHead=True, **extra
        )
        events += [(e["timestamp"], e["message"]) for e in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return events
        token = page["nextForwardToken"]


def soon() -> float:
    return time.monotonic() + 30


def flush(runs: Path, sender: LogsSender, deadline: float, **options: Any) -> FlushSummary:
    """flush_pending as this host ("host", streams host/JOB/RUN) with GROUP configured."""
    return flush_pending(runs, sender, deadline, host="host", log_group=GROUP, **options)


# --- one log, delivered -------------------------------------------------------------


def test_lines_arrive_in_order_with_prefixes_and_timestamps(
    tmp_path: Path, aws: AwsSettings
) -> None:
    t0 = now_ms() - 60_000
    log = tmp_path / "r1.log"
    write_log(
        log,
        ("c", t0, b"started\n"),
        ("o", t0 + 10, b"first\n\n\x1fo 123\n"),
        ("e", t0 + 20, b"oops\n"),
        ("o", t0 + 30, b"last\n"),
    )
    pending = start_pending(tmp_path, log)

    result = deliver(pending, LogsSender(aws), soon())

    assert fetch(aws) == [
        (t0, "[cronsync] started"),
        (t0 + 10, "first"),
        (t0 + 10, " "),
        (t0 + 10, "\x1fo 123"),
        (t0 + 20, "[stderr] oops"),
        (t0 + 30, "last"),
    ]
    assert (result.complete, result.sent_events, result.sent_batches) == (True, 6, 1)
    assert result.error is None
    assert not pending.exists()


def test_unfinished_log_keeps_its_partial_line_and_pending_file(
    tmp_path: Path, aws: AwsSettings
) -> None:
    t0 = now_ms()
    log = tmp_path / "r1.log"
    write_log(log, ("o", t0, b"whole\n"))
    with open(log, "ab") as handle:
        handle.write(b"half a li")
    pending = start_pending(tmp_path, log, finished=False)

    result = deliver(pending, LogsSender(aws), soon())

    assert fetch(aws) == [(t0, "whole")]
    assert not result.complete
    saved = load_pending(pending)
    assert saved is not None and saved.offset == log.stat().st_size - len(b"half a li")
    with open(log, "ab") as handle:
        handle.write(b"ne\n")
    save_pending(pending, Pending(**{**saved.__dict__, "finished": True}))
    assert deliver(pending, LogsSender(aws), soon()).complete
    assert fetch(aws) == [(t0, "whole"), (t0, "half a line")]


def test_300kb_line_arrives_as_two_events_that_concatenate_to_it(
    tmp_path: Path, aws: AwsSettings
) -> None:
    t0 = now_ms()
    rng = random.Random(3)
    line = "".join(rng.choice("ab€😀") for _ in range(140_000)).encode()
    assert 300_000 < len(line) < 2 * 262_118
    log = tmp_path / "r1.log"
    write_log(log, ("o", t0, line + b"\n"))

    deliver(start_pending(tmp_path, log), LogsSender(aws), soon())

    events = fetch(aws)
    assert len(events) == 2
    assert len(events[0][1].encode()) <= 262_118
    assert (events[0][1] + events[1][1]).encode() == line


def test_invalid_utf8_and_binary_output_arrive_with_replacement_characters(
    tmp_path: Path, aws: AwsSettings
) -> None:
    t0 = now_ms()
    junk = random.Random(7).randbytes(20_000) + b"\n"
    log = tmp_path / "r1.log"
    write_log(log, ("o", t0, b"caf\xe9 ok\n\xff\xfe\n"), ("e", t0 + 1, junk))

    result = deliver(start_pending(tmp_path, log), LogsSender(aws), soon())

    assert result.complete and result.error is None
    events = fetch(aws)
    assert events[:2] == [(t0, "caf\ufffd ok"), (t0, "\ufffd\ufffd")]
    expected = ["[stderr] " + line.decode("utf-8", "replace") for line in junk[:-1].split(b"\n")]
    assert [message for _ms, message in events[2:]] == expected


# --- outages, crashes, resumption ---------------------------------------------------


def test_outage_keeps_everything_pending_then_flush_delivers_it_once_in_order(
    tmp_path: Path, aws: AwsSettings, aws_down: AwsSettings
) -> None:
    t0 = now_ms()
    log = tmp_path / "r1.log"
    log.touch()
    pending = start_pending(tmp_path, log, finished=False)
    forwarder = LiveForwarder(pending, lambda: LogsSender(aws_down), poll_interval=0.01)
    forwarder.start()
    for n in range(5):
        write_log(log, ("o", t0 + n, b"line %d\n" % n))

    result = forwarder.finish(time.monotonic() + 5)

    assert result.error is not None and "Could not connect" in result.error
    assert not result.complete and result.sent_events == 0
    kept = load_pending(pending)
    assert kept is not None
    assert (kept.offset, kept.finished) == (0, True)
    assert kept.attempts >= 1 and kept.last_error == result.error
    assert "line" not in kept.last_error

    summary = flush(tmp_path / "runs", LogsSender(aws), soon())
    assert (summary.delivered, summary.left, summary.errors) == (1, 0, 0)
    assert fetch(aws) == [(t0 + n, f"line {n}") for n in range(5)]
    again = flush(tmp_path / "runs", LogsSender(aws), soon())
    assert (again.delivered, again.left, again.sent_events) == (0, 0, 0)
    assert fetch(aws) == [(t0 + n, f"line {n}") for n in range(5)]


class CrashingSender(LogsSender):
    """Sends for real, then dies on batch number ``crash_on`` (before or after sending)."""

    def __init__(self, aws: AwsSettings, crash_on: int, after_sending: bool) -> None:
        super().__init__(aws)
        self.crash_on = crash_on
        self.after_sending = after_sending
        self.batches: list[list[Event]] = []

    def send(self, group: str, stream: str, events: list[Event]) -> None:
        if len(self.batches) + 1 == self.crash_on and not self.after_sending:
            raise RuntimeError("simulated crash")
        super().send(group, stream, events)
        self.batches.append(events)
        if len(self.batches) == self.crash_on:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("after_sending", [False, True])
def test_crash_around_a_batch_neither_loses_nor_duplicates_it(
    tmp_path: Path, aws: AwsSettings, after_sending: bool
) -> None:
    t0 = now_ms()
    lines = [b"%03d " % n + b"x" * 100_000 for n in range(35)]  # 10 lines a batch
    log = tmp_path / "r1.log"
    write_log(log, ("o", t0, b"\n".join(lines) + b"\n"))
    pending = start_pending(tmp_path, log)

    crashing = CrashingSender(aws, crash_on=3, after_sending=after_sending)
    with pytest.raises(RuntimeError, match="simulated crash"):
        deliver(pending, crashing, soon())
    saved = load_pending(pending)
    assert saved is not None and saved.offset > 0
    assert saved.in_flight is not None and saved.in_flight.events == 10  # batch 3
    sender = LogsSender(aws)
    result = deliver(pending, sender, soon())

    assert result.complete
    got = [message.encode() for _ms, message in fetch(aws)]
    assert got == lines  # batch 3 sent once, whether it arrived before the crash or not
    assert (sender.recovered_batches, sender.unverified_batches) == (int(after_sending), 0)
    assert result.sent_events == (5 if after_sending else 15)


def test_batch_ending_inside_a_split_line_resumes_inside_it(
    tmp_path: Path, aws: AwsSettings
) -> None:
    t0 = now_ms()
    first, second = b"a" * 262_118, b"b" * (262_118 * 4)  # 1 event, then 4
    log = tmp_path / "r1.log"
    write_log(log, ("o", t0, first + b"\n" + second + b"\n"))
    pending = start_pending(tmp_path, log)

    crashing = CrashingSender(aws, crash_on=2, after_sending=False)
    with pytest.raises(RuntimeError):
        deliver(pending, crashing, soon())
    assert [len(batch) for batch in crashing.batches] == [4]  # 1,048,576 bytes: full
    saved = load_pending(pending)
    assert saved is not None and saved.skip_events == 3
    deliver(pending, LogsSender(aws), soon())

    assert [message.encode() for _ms, message in fetch(aws)] == [first] + [b"b" * 262_118] * 4


def test_missing_group_without_permission_to_create_it_is_recorded(
    tmp_path: Path, aws: AwsSettings
) -> None:
    log = tmp_path / "r1.log"
    write_log(log, ("o", now_ms(), b"hello\n"))
    pending = start_pending(tmp_path, log)

    result = deliver(pending, LogsSender(aws, create_group=False), soon())

    assert result.error is not None and "ResourceNotFoundException" in result.error
    assert not result.unreachable
    kept = load_pending(pending)
    assert kept is not None and kept.last_error == result.error and kept.attempts == 1


def test_sender_raises_one_line_delivery_error_when_unreachable(aws_down: AwsSettings) -> None:
    with pytest.raises(DeliveryError) as caught:
        LogsSender(aws_down).send(GROUP, "s", [Event(now_ms(), "secret-free")])
    assert caught.value.unreachable
    assert "\n" not in str(caught.value)


def test_deadline_already_passed_sends_nothing(tmp_path: Path, aws: AwsSettings) -> None:
    log = tmp_path / "r1.log"
    write_log(log, ("o", now_ms(), b"hello\n"))
    pending = start_pending(tmp_path, log)

    result = deliver(pending, LogsSender(aws), time.monotonic() - 1)

    assert result.stopped and result.sent_events == 0 and pending.exists()


def test_log_gone_drops_its_pending_delivery_once_stale(tmp_path: Path, aws: AwsSettings) -> None:
    pending = start_pending(tmp_path, tmp_path / "deleted-by-retention.log")

    kept = deliver(pending, LogsSender(aws), soon())  # may be a run about to start
    assert kept.error is not None and "does not exist" in kept.error and pending.exists()
    fresh = flush(tmp_path / "runs", LogsSender(aws), soon())
    assert (fresh.left, fresh.errors) == (1, 1) and pending.exists()

    stale = flush(tmp_path / "runs", LogsSender(aws), soon(), stale_after=0)
    assert stale.messages == (
        f"job/r1: {tmp_path}/deleted-by-retention.log is gone; its delivery was dropped",
    )
    assert not pending.exists()


# --- the live forwarder -------------------------------------------------------------


def wait_for(condition: Any, what: str) -> None:
    """Wait (generously) for something the forwarder's thread does."""
    limit = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < limit, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_live_forwarder_delivers_a_log_written_in_several_appends(
    tmp_path: Path, aws: AwsSettings
) -> None:
    t0 = now_ms()
    log = tmp_path / "r1.log"
    log.touch()
    pending = start_pending(tmp_path, log, finished=False)
    threads: list[str] = []

    def factory() -> LogsSender:
        threads.append(threading.current_thread().name)
        return LogsSender(aws)

    forwarder = LiveForwarder(pending, factory, poll_interval=0.01)
    forwarder.start()
    write_log(log, ("o", t0, b"one\ntwo\n"))
    wait_for(lambda: (load_pending(pending) or Pending("", "", "")).offset > 0, "first block")
    block = logformat.encode_block("e", t0 + 1, b"split across writes\n")
    with open(log, "ab") as handle:  # a block appended in two writes, a round between
        handle.write(block[:-8])
        handle.flush()
        time.sleep(0.05)
        handle.write(block[-8:])
    for n in range(3, 50):
        write_log(log, ("o", t0 + n, b"line %d\n" % n))

    result = forwarder.finish(soon())

    assert result.complete and result.error is None
    assert fetch(aws) == [(t0, "one"), (t0, "two"), (t0 + 1, "[stderr] split across writes")] + [
        (t0 + n, f"line {n}") for n in range(3, 50)
    ]
    assert result.sent_batches >= 2
    assert threads == ["cronsync-cloudlogs"]
    assert not pending.exists()


def test_live_forwarder_waits_for_a_log_not_created_yet(tmp_path: Path, aws: AwsSettings) -> None:
    log = tmp_path / "r1.log"
    pending = start_pending(tmp_path, log, finished=False)
    forwarder = LiveForwarder(pending, lambda: LogsSender(aws), poll_interval=0.01)
    forwarder.start()
    time.sleep(0.05)  # a few rounds without a log: the pending file must survive them
    assert pending.exists()
    write_log(log, ("o", now_ms(), b"late\n"))

    result = forwarder.finish(soon())

    assert result.complete and [m for _t, m in fetch(aws)] == ["late"]


def test_finish_without_start_delivers_inline(tmp_path: Path, aws: AwsSettings) -> None:
    log = tmp_path / "r1.log"
    write_log(log, ("o", now_ms(), b"only\n"))
    pending = start_pending(tmp_path, log, finished=False)

    result = LiveForwarder(pending, lambda: LogsSender(aws)).finish(soon())

    assert result.complete and [m for _t, m in fetch(aws)] == ["only"]


def test_finish_reports_a_missing_pending_file_without_raising(
    tmp_path: Path, aws: AwsSettings
) -> None:
    forwarder = LiveForwarder(tmp_path / "nope.json", lambda: LogsSender(aws), 0.01)
    forwarder.start()
    result = forwarder.finish(soon())
    assert result.sent_events == 0 and not result.error


# --- flush --------------------------------------------------------------------------


def test_flush_goes_oldest_first_and_skips_other_users_and_foreign_files(
    tmp_path: Path, aws: AwsSettings
) -> None:
    order: list[str] = []

    class Recording(LogsSender):
        def send(self, group: str, stream: str, events: list[Event]) -> None:
            order.append(stream)
            super().send(group, stream, events)

    runs = tmp_path / "runs"
    # oldest by when the file last changed, as the kernel says: the ``created_ms`` a
    # job user writes into its own file does not put it first
    for job, created in (("early", 9_000), ("late", 1_000)):
        log = tmp_path / f"{job}.log"
        write_log(log, ("o", now_ms(), job.encode() + b"\n"))
        path = pending_path(runs, job, "r1")
        stream = f"host/{job}/r1"
        save_pending(path, Pending(str(log), GROUP, stream, finished=True, created_ms=created))
        time.sleep(0.01)  # a change time at least a millisecond later
    (runs / "late" / "pending" / "foreign.json").write_text('{"format": "other"}')

    skipped = flush(runs, Recording(aws), soon(), only_uid=os.getuid() + 1)
    assert (skipped.delivered, skipped.skipped, order) == (0, 3, [])

    summary = flush(runs, Recording(aws), soon(), only_uid=os.getuid())
    assert (summary.delivered, summary.left, summary.skipped) == (2, 0, 1)
    assert order == ["host/early/r1", "host/late/r1"]


def test_flush_leaves_a_log_another_delivery_holds(tmp_path: Path, aws: AwsSettings) -> None:
    log = tmp_path / "r1.log"
    write_log(log, ("o", now_ms(), b"held\n"))
    pending = start_pending(tmp_path, log)
    fd = open_log(log, os.getuid())
    try:
        assert try_lock(fd)
        summary = flush(tmp_path / "runs", LogsSender(aws), soon())
    finally:
        os.close(fd)
    assert (summary.delivered, summary.left, summary.sent_events) == (0, 1, 0)
    assert pending.exists()


def test_flush_finishes_an_abandoned_run_and_stops_when_unreachable(
    tmp_path: Path, aws: AwsSettings, aws_down: AwsSettings
) -> None:
    t0 = now_ms()
    for run in ("r1", "r2"):
        log = tmp_path / f"{run}.log"
        write_log(log, ("o", t0, b"done\n"))
        with open(log, "ab") as handle:
            handle.write(b"cut short")  # the shim was killed mid-line
        start_pending(tmp_path, log, run=run, finished=False, stream=f"host/job/{run}")

    down = flush(tmp_path / "runs", LogsSender(aws_down), soon(), stale_after=0)
    assert (down.delivered, down.left, down.errors) == (0, 2, 1)  # second one not tried

    marked = load_pending(pending_path(tmp_path / "runs", "job", "r1"))
    assert marked is not None and marked.finished  # abandoned, so finished before sending

    fresh = flush(tmp_path / "runs", LogsSender(aws), soon())
    assert (fresh.delivered, fresh.left) == (1, 1)  # r2 was written recently: maybe running
    assert fetch(aws, "host/job/r1") == [(t0, "done"), (t0, "cut short")]
    assert fetch(aws, "host/job/r2") == [(t0, "done")]

    stale = flush(tmp_path / "runs", LogsSender(aws), soon(), stale_after=0)
    assert (stale.delivered, stale.left) == (1, 0)
    assert fetch(aws, "host/job/r2") == [(t0, "done"), (t0, "cut short")]


# --- whose files ---------------------------------------------------------------------

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown files")


def test_a_fifo_named_as_log_is_refused_without_opening_it(
    tmp_path: Path, aws: AwsSettings
) -> None:
    fifo = tmp_path / "r1.log"
    os.mkfifo(fifo)
    pending = start_pending(tmp_path, fifo)
    result = deliver(pending, LogsSender(aws), soon())  # would block if it opened the fifo
    assert result.error is not None and "not a regular file" in result.error
    assert pending.exists()


@needs_root
def test_root_refuses_a_log_its_pending_files_owner_does_not_own(
    tmp_path: Path, aws: AwsSettings
) -> None:
    log = tmp_path / "r1.log"
    write_log(log, ("o", now_ms(), b"root's secret file\n"))
    pending = start_pending(tmp_path, log)
    os.chown(pending, NOBODY, NOBODY)  # a job user pointing at a file of root's

    result = flush(tmp_path / "runs", LogsSender(aws), soon())

    assert (result.delivered, result.errors) == (0, 1)
    assert make_client("logs", aws).describe_log_groups()["logGroups"] == []


@needs_root
def test_root_delivering_a_users_pending_file_keeps_it_theirs(
    tmp_path: Path, aws: AwsSettings
) -> None:
    log = tmp_path / "r1.log"
    write_log(log, ("o", now_ms(), b"hello\n"))
    pending = start_pending(tmp_path, log, finished=False)
    for path in (log, pending):
        os.chown(path, NOBODY, NOBODY)

    flush(tmp_path / "runs", LogsSender(aws), soon())

    saved = load_pending(pending)
    assert saved is not None and saved.offset == log.stat().st_size
    assert (pending.stat().st_uid, pending.stat().st_gid) == (NOBODY, NOBODY)


# --- pending files ------------------------------------------------------------------


def test_pending_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = pending_path(tmp_path / "runs", "job", "r9")
    pending = Pending(
        "/var/log/cronsync/job/r9.log",
        GROUP,
        "h/job/r9",
        offset=7,
        attempts=2,
        last_error="CloudWatch Logs PutLogEvents: ThrottlingException: slow down",
    )
    save_pending(path, pending)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_pending(path) == pending
    assert Pending.from_json(json.loads(path.read_text())) == pending


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"format": "cronsync.pending/1"}', b'{"format": "x"}'],
)
def test_unreadable_or_foreign_pending_files_load_as_none(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(content)
    assert load_pending(path) is None


def test_pending_fields_are_type_checked_and_symlinks_refused(tmp_path: Path) -> None:
    path = pending_path(tmp_path, "job", "r1")
    save_pending(path, Pending("/l", GROUP, "s"))
    data = json.loads(path.read_text())
    for name, bad in (("offset", "7"), ("finished", 1), ("offset", True), ("marker_stream", "x")):
        with pytest.raises(ValueError):
            Pending.from_json({**data, name: bad})
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert load_pending(link) is None
    assert load_pending(tmp_path / "missing.json") is None
    with pytest.raises(ValueError):
        pending_path(tmp_path, "../etc", "r1")


def test_pending_file_keeps_the_stream_end_and_the_batch_in_flight(tmp_path: Path) -> None:
    path = pending_path(tmp_path / "runs", "job", "r9")
    after = Position(4096, "e", 1_764_300_600_123, mid_line=True, skip=2)
    pending = Pending("/l", GROUP, "h/job/r9", stream_end=StreamEnd(1_764_300_600_100, 3))
    pending = replace(pending, in_flight=InFlight(250, 1_764_300_600_100, after))
    save_pending(path, pending)
    assert load_pending(path) == pending
    assert Pending("/l", GROUP, "s").stream_end == StreamEnd(None, 0)  # a new run's stream


def test_pending_file_from_before_the_tail_check_loads_with_the_stream_end_unknown(
    tmp_path: Path,
) -> None:
    path = pending_path(tmp_path, "job", "r1")
    save_pending(path, Pending("/l", GROUP, "s", offset=7))
    data = json.loads(path.read_text())
    del data["stream_end"], data["in_flight"]
    old = Pending.from_json(data)
    assert (old.offset, old.stream_end, old.in_flight) == (7, None, None)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("stream_end", {"last_ms": None, "at_last": 2}),
        ("stream_end", {"last_ms": 5, "at_last": 0}),
        ("stream_end", [5, 1]),
        ("in_flight", {"events": 0, "first_ms": 1, "after": {}}),
        ("in_flight", {"events": 10_001, "first_ms": 1, "after": {}}),
        (
            "in_flight",
            {
                "events": 1,
                "first_ms": 1,
                "after": {"offset": -1, "stream": "o", "epoch_ms": 0, "mid_line": False, "skip": 0},
            },
        ),
        ("in_flight", {"events": 1, "first_ms": "1", "after": {}}),
    ],
)
def test_pending_stream_end_and_in_flight_are_checked(name: str, bad: Any) -> None:
    data = Pending("/l", GROUP, "s").to_json()
    with pytest.raises(ValueError):
        Pending.from_json({**data, name: bad})


# --- cost -----------------------------------------------------------------------------


def test_importing_cloudlogs_does_not_import_boto3() -> None:
    code = (
        "import sys, cronsync.cloud.logs; "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


MOTO_PROCESS = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture
def remote_moto() -> Iterator[AwsSettings]:
    """A moto server in another process, so its memory is not counted as ours."""
    child = subprocess.Popen(
        [sys.executable, "-c", MOTO_PROCESS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = ""
        while not line.startswith("PORT"):
            line = child.stdout.readline()
            assert line, "moto server did not start"
        yield AwsSettings(region="us-east-1", endpoint_url=f"http://127.0.0.1:{line.split()[1]}")
    finally:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.wait(timeout=30)
        child.stdout.close()


def test_50mb_log_is_delivered_with_bounded_memory(
    tmp_path: Path, remote_moto: AwsSettings
) -> None:
    t0 = now_ms()
    rng = random.Random(5)
    log = tmp_path / "big.log"
    stored = lines = 0  # moto's storedBytes: the characters of every message
    with open(log, "wb") as handle:
        for block_number in itertools.count():
            if handle.tell() >= 50 * MIB:
                break
            stream = "oe"[block_number % 2]
            texts = [b"%d " % (lines + n) + b"z" * rng.randrange(200, 2000) for n in range(60)]
            handle.write(logformat.encode_block(stream, t0 + lines, b"\n".join(texts) + b"\n"))
            prefix = len("[stderr] ") if stream == "e" else 0
            stored += sum(len(text) + prefix for text in texts)
            lines += len(texts)
    pending = start_pending(tmp_path, log)
    sender = LogsSender(remote_moto)
    sender.send(GROUP, "warm-up", [Event(t0, "boto3 loaded before measuring")])

    tracemalloc.start()
    try:
        result = deliver(pending, sender, time.monotonic() + 120)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.complete and result.error is None
    assert result.sent_events == lines
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"
    client = make_client("logs", remote_moto)
    streams = client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="host/")
    assert [(s["logStreamName"], s["storedBytes"]) for s in streams["logStreams"]] == [
        ("host/job/r1", stored)
    ]
