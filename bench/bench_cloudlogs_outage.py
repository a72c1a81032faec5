"""Benchmark: no duplicate and no loss when the network fails around CloudWatch Logs
batches, at full size (issue 9: 20 trials of a 100,000-line run).

Each trial writes a run log of N lines (blocks of varied sizes, stdout and stderr, many
blocks sharing a millisecond, some repeating one line thousands of times) and delivers
it to moto's server (real HTTP on 127.0.0.1, in this process) through a TCP proxy that
cuts every connection at random points: the reply to a random ``PutLogEvents`` (moto
stored the batch, the sender never hears of it), plus up to three more cuts at random
request bytes or replies, about half of them followed by an outage that lasts until the
delivery gives up. Deliveries follow one another, each with a new sender (only the
pending file carries over), until the run is delivered; then the stream is read back
and compared with the log, event for event.

It prints one line per trial, then, under a line with the date, the CPU count and the
load average, the trials exact and the duplicates against the goal (every stream
exactly its log: in order, none twice), and a trial's time and requests next to the
same delivery without cuts (the in-run baseline); exit code 1 when any trial's stream
is not exactly the log. The proxy and the trial are the test suite's
(``tests/helpers/tcpproxy.py``, ``tests/helpers/outage.py``); the suite runs a smaller
variant (``tests/integration/test_cloudlogs_outage.py``). Not a test: run it by hand,
``python bench/bench_cloudlogs_outage.py [LINES [TRIALS [SEED]]]``.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from benchkit import Context, Table
from cronsync.host.awsclients import AwsSettings
from helpers.motoserver import moto_running
from helpers.outage import measure_traffic, run_trial
from helpers.tcpproxy import proxy_running


def reset(url: str) -> None:
    """Empty moto (its logs live in this process's memory)."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def main(argv: list[str]) -> int:
    """Run the trials; return 0 when every stream is exactly its log."""
    lines = int(argv[0]) if argv else 100_000
    trials = int(argv[1]) if len(argv) > 1 else 20
    seed = int(argv[2]) if len(argv) > 2 else 2024
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    rng = random.Random(seed)
    context = Context(f"bench_cloudlogs_outage.py {lines} {trials} {seed}")
    failed = duplicates = 0
    seconds: list[float] = []
    began = time.monotonic()
    with moto_running() as url, proxy_running(url) as proxy, tempfile.TemporaryDirectory() as tmp:
        moto = AwsSettings(region="us-east-1", endpoint_url=url)
        clean_began = time.monotonic()
        traffic = measure_traffic(proxy, moto, Path(tmp), lines)
        clean_seconds = time.monotonic() - clean_began
        print(
            f"{lines:,} lines a trial: {traffic.up_bytes / 1e6:.1f} MB of requests, "
            f"{traffic.puts} PutLogEvents without cuts"
        )
        for number in range(trials):
            reset(url)
            trial = run_trial(proxy, moto, Path(tmp), f"t{number}", lines, rng, traffic)
            exact = trial.stored == trial.expected
            failed += not exact
            duplicates += trial.duplicates
            seconds.append(trial.seconds)
            print(
                f"trial {number:2d}: {'exact' if exact else 'WRONG'}  "
                f"{len(trial.stored):,} events stored  duplicates {trial.duplicates}  "
                f"cuts {trial.cuts}  deliveries {trial.rounds}  "
                f"replies lost, batch found {trial.recovered}  "
                f"unverified {trial.unverified}  {trial.seconds:.1f} s",
                flush=True,
            )
    print(f"{trials - failed}/{trials} trials exact in {time.monotonic() - began:.0f} s")
    table = Table()
    table.add(
        "trials whose stream is exactly the log",
        f"{(trials - failed) / trials:.2f}",
        f"all {trials}: in order, none twice",
        not failed,
        f"{trials - failed} of {trials}, {lines:,} lines each",
    )
    table.add("events stored twice, all trials", "", "0", duplicates == 0, f"{duplicates}")
    typical = statistics.median(seconds) if seconds else 0.0
    table.add(
        "a trial (cuts, outages, resends) / the same delivery without cuts",
        f"{typical / clean_seconds:.2f}x" if clean_seconds else "",
        "",
        None,
        f"{typical:.1f} s / {clean_seconds:.1f} s ({traffic.puts} PutLogEvents without cuts)",
    )
    table.print(context)
    return 1 if failed or duplicates else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
