"""Benchmark: forwarding a run log to CloudWatch Logs (moto over HTTP, in this process).

Writes a run log of N short lines (blocks of 50 lines per marker, stdout and stderr
alternating, as the shim writes them) and measures, in this one process:

* parse     — reading the log and parsing it into lines (``logformat.read_lines`` in
              chunks), the floor any forwarder pays;
* batch     — the same plus events and service-sized batches, nothing sent;
* deliver   — ``cronsync.cloud.logs.deliver`` to a moto server started here (real HTTP on
              127.0.0.1), saving the resume position after every batch.

It prints, under a line with the date, the CPU count and the load average, each figure
with events per second and its ratio to ``parse`` measured in the same run (machines
are shared and noisy: compare ratios), and a verdict against the goal: every line
delivered, none twice (issue 9 sets no throughput goal: the rates are context). moto
runs in this process and competes for the same interpreter, so ``deliver`` is a
pessimistic figure. Exit code 1 when a size misses the goal. Not a test: run it by
hand, ``python bench/bench_cloudlogs.py [LINES...]``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from benchkit import Context, Table
from cronsync.cloud.batch import Batcher, Event, Position
from cronsync.cloud.logreader import read_pieces
from cronsync.cloud.logs import LogsSender, Pending, deliver, pending_path, save_pending
from cronsync.core import logformat
from cronsync.host.awsclients import AwsSettings

BLOCK_LINES = 50
CHUNK = 4 * 1024 * 1024


def write_log(path: Path, lines: int) -> int:
    """Write a run log of ``lines`` short lines stamped now; return its size."""
    start = time.time_ns() // 1_000_000
    with open(path, "wb") as handle:
        for first in range(0, lines, BLOCK_LINES):
            count = min(BLOCK_LINES, lines - first)
            block = b"".join(
                b"%08d processed record batch=%d status=ok\n" % (first + n, first // 1000)
                for n in range(count)
            )
            stream = logformat.ERR if (first // BLOCK_LINES) % 2 else logformat.OUT
            handle.write(logformat.encode_block(stream, start + first // 1000, block))
    return path.stat().st_size


def parse_only(path: Path) -> int:
    """Read and parse the log in chunks with ``logformat.read_lines``; return lines."""
    count = offset = 0
    stream, stamp = logformat.OUT, 0
    with open(path, "rb") as handle:
        while True:
            data = os.pread(handle.fileno(), CHUNK, offset)
            end = 0
            for line in logformat.read_lines(data, 0, stream, stamp):
                count += 1
                end, stream, stamp = line.end, line.stream, line.epoch_ms
            if len(data) < CHUNK or not end:
                return count
            offset += end


def batch_only(path: Path) -> int:
    """Read, parse, make events and batches, send nothing; return events."""
    batcher: Batcher[Position] = Batcher()
    count = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for piece in read_pieces(fd, Position(), final=True):
            for event in piece.events():
                count += 1
                batcher.add(event, piece.after)
    finally:
        os.close(fd)
    batcher.flush()
    return count


def timed(label: str, run: object, *args: object) -> tuple[float, int]:
    """Run ``run(*args)`` once and return (seconds, its count)."""
    began = time.perf_counter()
    count = run(*args)  # type: ignore[operator]
    return time.perf_counter() - began, int(count)


def start_moto() -> tuple[object, AwsSettings]:
    """Start a moto server on 127.0.0.1 in this process; return it and its settings."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, AwsSettings(region="us-east-1", endpoint_url=f"http://{host}:{port}")


def bench(lines: int, aws: AwsSettings, base: Path, table: Table) -> bool:
    """Measure one log size, add its rows to ``table``; return whether every line was
    delivered once."""
    log = base / f"run-{lines}.log"
    size = write_log(log, lines)
    parse_s, parsed = timed("parse", parse_only, log)
    batch_s, batched = timed("batch", batch_only, log)
    pending = pending_path(base / "runs", "bench", f"r{lines}")
    save_pending(pending, Pending(str(log), "/cronsync/bench", f"bench/{lines}", finished=True))
    sender = LogsSender(aws)
    sender.send("/cronsync/bench", "warm-up", [Event(time.time_ns() // 1_000_000, "warm")])
    deliver_s, delivered = timed("deliver", lambda: deliver(pending, sender, 1e18).sent_events)
    log.unlink()
    exact = parsed == batched == delivered == lines
    what = f"{lines:,} lines ({size / 1e6:.1f} MB)"
    table.add(f"{what}: parse (the baseline)", "1.00x", "", None, _rate(lines, parse_s))
    table.add(
        f"{what}: batch / parse", f"{batch_s / parse_s:.2f}x", "", None, _rate(lines, batch_s)
    )
    table.add(
        f"{what}: deliver to moto / parse",
        f"{deliver_s / parse_s:.2f}x",
        "every line delivered, once",
        exact,
        f"{_rate(lines, deliver_s)}; {delivered:,} of {lines:,} events sent",
    )
    return exact


def _rate(lines: int, seconds: float) -> str:
    return f"{seconds:.3f} s, {lines / seconds:,.0f} events/s"


def main(argv: list[str]) -> int:
    """Run the benchmark for each size in ``argv`` (default 10,000 / 100,000 / 300,000);
    return 1 when a size misses the goal."""
    sizes = [int(arg) for arg in argv] or [10_000, 100_000, 300_000]
    context = Context("bench_cloudlogs.py " + " ".join(map(str, sizes)))
    table = Table()
    server, aws = start_moto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            met = [bench(lines, aws, Path(tmp), table) for lines in sizes]
    finally:
        server.stop()  # type: ignore[attr-defined]
    table.print(context)
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
