"""Benchmark: ``cronsync import`` of a 10,000-line crontab against ``cronsync inventory``
of the same file (issue 13: import ≤ 2 s at low load, ≤ 2x the inventory in one run).

Writes a host root whose ``/etc/crontab`` holds N generated lines (default 10,000;
``tests/helpers/crontabgen.py``, the input the suite pins the import's output on: plain
commands, shell lines, inline secrets, ``%`` stdin, macros, tabs, environment lines,
comments, commented-out jobs, programs many lines share). Then, round after round
(one unmeasured round first), it runs the two commands as a person would, each in a
process of its own, back to back so a load that drifts hits both alike:

* ``cronsync inventory --root ROOT`` (the baseline: read and judge every line, print
  the table);
* ``cronsync import --root ROOT --into REPO --include-commented --secrets-file F``
  (inventory, plan, evidence of life, every job file, MIGRATION.md, the secrets file),
  into a new directory each round.

It prints each command's median wall and CPU time, the median of the per-round ratios,
and a verdict against each goal, under a line with the date, the CPU count and the load
average. Exit code 1 when a goal is missed. Not a test: run it by hand,
``python bench/bench_import.py [LINES] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from benchkit import Context, Table, fmt_ratio, no_aws_env, percentile, say
from helpers.crontabgen import make_generated_host

GOAL_SECONDS = 2.0
GOAL_RATIO = 2.0
TIMEOUT = 600


def run_timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` (output discarded); return its (wall, CPU) seconds.

    Raises:
        RuntimeError: it failed (its last output in the message).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        check=False,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def rounds(root: Path, base: Path, count: int) -> dict[str, list[tuple[float, float]]]:
    """Time inventory and import ``count`` times (after one unmeasured round)."""
    cli = [sys.executable, "-m", "cronsync.cli.main"]
    env = no_aws_env({"CRONSYNC_CONFIG": str(base / "no-agent.toml")})
    found: dict[str, list[tuple[float, float]]] = {"inventory": [], "import": []}
    for number in range(count + 1):
        repo, secrets = base / f"repo{number}", base / f"private{number}" / "secrets.toml"
        inventory = run_timed([*cli, "inventory", "--root", str(root)], env)
        imported = run_timed(
            [
                *cli, "import", "--root", str(root), "--into", str(repo),
                "--include-commented", "--secrets-file", str(secrets),
            ],
            env,
        )  # fmt: skip
        jobs = len(os.listdir(repo / "jobs"))
        shutil.rmtree(repo)
        shutil.rmtree(secrets.parent)
        if number:  # the first round warms the page cache and the .pyc files
            found["inventory"].append(inventory)
            found["import"].append(imported)
            say(f"  round {number}: inventory {inventory[0]:.2f} s, import {imported[0]:.2f} s")
    say(f"  {jobs} job files written each round")
    return found


def ratios(found: dict[str, list[tuple[float, float]]], which: int) -> tuple[float, float, float]:
    """Median, 25th and 75th percentile of the per-round import/inventory ratios."""
    each = [b[which] / a[which] for a, b in zip(found["inventory"], found["import"])]
    return statistics.median(each), percentile(each, 0.25), percentile(each, 0.75)


def median(found: dict[str, list[tuple[float, float]]], label: str, which: int) -> float:
    return statistics.median(sample[which] for sample in found[label])


def report(found: dict[str, list[tuple[float, float]]], lines: int, table: Table) -> bool:
    """Add the goals' rows to ``table``; return whether every goal is met."""
    wall_ratio, cpu_ratio = ratios(found, 0), ratios(found, 1)
    inventory, imported = median(found, "inventory", 0), median(found, "import", 0)
    inventory_cpu, imported_cpu = median(found, "inventory", 1), median(found, "import", 1)
    what = f"import of a {lines:,}-line crontab / `cronsync inventory` of it"
    table.add(
        f"{what}, wall",
        fmt_ratio(wall_ratio),
        f"≤ {GOAL_RATIO:g}x",
        wall_ratio[0] <= GOAL_RATIO,
        f"{imported:.2f} s / {inventory:.2f} s",
    )
    table.add(
        f"{what}, CPU",
        fmt_ratio(cpu_ratio),
        f"≤ {GOAL_RATIO:g}x",
        cpu_ratio[0] <= GOAL_RATIO,
        f"{imported_cpu:.2f} s / {inventory_cpu:.2f} s",
    )
    table.add(
        f"import of a {lines:,}-line crontab, wall (process start included)",
        f"{imported / GOAL_SECONDS:.2f}x the goal",
        f"≤ {GOAL_SECONDS:g} s at low load",
        imported <= GOAL_SECONDS,
        f"{imported:.2f} s ({imported_cpu:.2f} s CPU); inventory {inventory:.2f} s",
    )
    return wall_ratio[0] <= GOAL_RATIO and imported <= GOAL_SECONDS


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines", nargs="?", type=int, default=10_000, help="crontab lines")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    args = parser.parse_args(argv)
    context = Context(f"bench_import.py {args.lines} --rounds {args.rounds}")
    table = Table()
    base = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        root = make_generated_host(base, args.lines)
        say(f"{args.lines:,} lines; {args.rounds} rounds of inventory then import ...")
        found = rounds(root, base, args.rounds)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    met = report(found, args.lines, table)
    table.print(context)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
