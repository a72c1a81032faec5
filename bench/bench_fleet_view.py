"""Benchmark: ``cronsync fleet`` over 500 hosts' status items in moto's DynamoDB.

Issue 11's goal: ``cronsync fleet`` for 500 hosts' items answers in under 2 s.

It starts moto's server on 127.0.0.1 in a process of its own, creates the fleet table
(``pk``/``sk``), writes ``--hosts`` items as agents do (``summary_item``, a tenth of
them behind the tip and a few silent, so the flags are computed and drawn), writes an
agent.toml with ``[aws]`` (moto, dummy keys in a root-only credentials file) and
``[fleet] table``, then runs, round-robin after two warm-up rounds:

* ``cronsync --version`` — the baseline: the same interpreter starting the same
  command line, without the work;
* ``cronsync fleet`` and ``cronsync fleet --json``.

It prints the load average and the CPU count, the medians, the ratio to the baseline
(median of per-round ratios, with the 25th-75th percentiles), the verdict against the
goal, and the CPU moto's server spent per Query (it shares the cores: on a loaded
machine its answer is most of the wait). Nothing leaves the machine. Not a test: run it by hand,
``python bench/bench_fleet_view.py [--hosts 500] [--repeat 10]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchkit import (
    REGION,
    Context,
    Moto,
    Table,
    aws_toml,
    cpu_seconds,
    credentials_file,
    fmt_ratio,
    interleaved,
    ms,
    no_aws_env,
    say,
)
from cronsync.core.fleetitem import HostSummary, summary_item, to_attributes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.fleettable import REGION as TABLE_REGION
from helpers.fleettable import create_fleet_table, dynamodb_client

TABLE = "cronsync-fleet-bench"
GOAL_SECONDS = 2.0
BATCH = 25  # BatchWriteItem takes at most 25 items


def host_item(n: int, now: datetime) -> dict[str, object]:
    """Host ``n``'s item: every tenth behind the tip, every fiftieth silent for an hour."""
    tip, old = "a" * 40, "b" * 40
    beat = now - timedelta(hours=1 if n % 50 == 0 else 0, seconds=n % 60)
    return summary_item(
        HostSummary(
            host=f"batch-{n:03d}",
            groups=("eu",) if n % 2 else ("us",),
            repo="git@git.example.com:ops/jobs.git",
            branch="main",
            installed_commit=old if n % 10 == 0 else tip,
            health="ok",
            last_sync_result="unchanged",
            last_sync_at=beat.isoformat(timespec="seconds"),
            drift=0,
            stale_jobs=(),
            version="1.0",
            heartbeat=beat.isoformat(timespec="seconds"),
            interval=70,
            fetched_commit=tip,
            fetched_at=(beat - timedelta(seconds=5)).isoformat(timespec="seconds"),
            one_host_jobs=("nightly-aggregate", "weekly-cleanup"),
        )
    )


def write_items(moto: Moto, hosts: int) -> None:
    client = dynamodb_client(moto.url)
    now = datetime.now(timezone.utc)
    items = [to_attributes(host_item(n, now)) for n in range(hosts)]
    for start in range(0, len(items), BATCH):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH]]
        client.batch_write_item(RequestItems={TABLE: requests})


def write_config(base: Path, moto: Moto) -> Path:
    config = base / "agent.toml"
    config.write_text(
        '[repo]\nurl = "/srv/jobs.git"\n[host]\nname = "batch-000"\ntimezone = "UTC"\n'
        f'[paths]\nroot = "{base / "root"}"\n'
        # the table's region (the tests' fleet table helper makes it there)
        + aws_toml(moto.url, credentials_file(base)).replace(REGION, TABLE_REGION)
        + f'[fleet]\ntable = "{TABLE}"\n'
    )
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    context = Context(f"bench_fleet_view ({args.hosts} hosts, {args.repeat} rounds)")
    with tempfile.TemporaryDirectory(prefix="cronsync-bench-fleet-") as tmp:
        base = Path(tmp)
        moto = Moto(base)
        try:
            create_fleet_table(moto.url, TABLE)
            say(f"writing {args.hosts} host items")
            write_items(moto, args.hosts)
            config = write_config(base, moto)
            cronsync = [sys.executable, "-m", "cronsync.cli.main"]
            env = no_aws_env({"CRONSYNC_CONFIG": str(config)})
            say(f"running (region {TABLE_REGION}, moto at {moto.url})")
            moto_before = cpu_seconds(moto.proc.pid)
            samples = interleaved(
                {
                    "version": ([*cronsync, "--version"], env),
                    "fleet": ([*cronsync, "fleet"], env),
                    "fleet --json": ([*cronsync, "fleet", "--json"], env),
                },
                args.repeat,
                expect={"fleet": 1, "fleet --json": 1},  # behind and silent hosts: flagged
            )
            queries = 2 * (args.repeat + 2)  # the two fleet commands, warm-up rounds too
            moto_cpu = (cpu_seconds(moto.proc.pid) - moto_before) / queries
        finally:
            moto.stop()
    table = Table()
    table.add("`cronsync --version` (baseline)", "1.00x", "", None, ms(samples.median("version")))
    for label in ("fleet", "fleet --json"):
        median = samples.median(label)
        table.add(
            f"`cronsync {label}`, {args.hosts} hosts",
            fmt_ratio(samples.ratio(label, "version")),
            f"< {GOAL_SECONDS:g} s",
            median < GOAL_SECONDS,
            ms(median),
        )
    context.notes.append(
        f"moto's server spent {ms(moto_cpu)} of CPU per Query of the {args.hosts} items "
        "(in its own process, on the same cores): part of every fleet figure's wall time."
    )
    table.print(context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
