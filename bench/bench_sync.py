"""Benchmark: sync and validate repositories of 100, 1,000 and 10,000 jobs.

For each size it makes a real git repository with a bare remote in a temp dir and
measures, in this one process:

* first sync  — clone + export + validate + render + install;
* full sync   — a sync of a new commit that changes one job file, built whole
  (``force``: no check cache), wall time and this process's CPU time (git's own
  processes not counted);
* no-op cycle — fetch, nothing new, installed files intact: nothing rewritten;
* validate    — ``check_repository`` of a tree whose jobs are half shell strings
  (``sh -n``), half a script, shellcheck off (``cronsync validate --no-lint``);
* one job changed — the same sync with the installed release's check cache (the
  checks of the other job files come from it), against the full sync.

Both syncs take the same steps (export, build, job folders, release written and
renamed, ``current`` and the cron file switched, the oldest release pruned: the bench
host keeps one old release and one untimed sync reaches that steady state first); only
the cache differs.

It prints the figures per size, then a table of the goals of issue 13 with each
figure's in-run baseline, the ratio and a verdict, under a line with the date, the
load average and the CPU count (the machines are shared and noisy: compare ratios).
Not a test: run it by hand, ``python bench/bench_sync.py [--quick] [SIZES...]``
(``--quick``: one full sync per size instead of three to five, fewer no-op cycles).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchkit import Context, Table, ms
from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from cronsync.repo.gate import check_repository

SCRIPT = "#!/bin/sh\necho working\n"
CONFIG = """[repo]
url = "{remote}"
[host]
name = "bench-1"
timezone = "UTC"
[users]
must_exist = false
[paths]
root = "{root}"
[sync]
keep_releases = 1
"""
JOB = """description = "Benchmark job {n}"
owner = "bench@example.com"
schedule = "{minute} {hour} * * *"
command = ["scripts/job.sh", "{n}"]
user = "batch"
timezone = "{zone}"
"""
ZONES = ("UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin")


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(base: Path, size: int) -> Path:
    work, remote = base / "work", base / "remote.git"
    (work / "jobs").mkdir(parents=True)
    (work / "scripts").mkdir()
    script = work / "scripts/job.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    for n in range(size):
        text = JOB.format(n=n, minute=n % 60, hour=n % 24, zone=ZONES[n % len(ZONES)])
        (work / "jobs" / f"job-{n:05d}.toml").write_text(text)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "jobs", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=base)
    git("push", "-q", str(remote), "main", cwd=work)
    return remote


SHELL_JOB = """description = "Benchmark shell job {n}"
owner = "bench@example.com"
schedule = "{minute} {hour} * * *"
shell = 'pg_dump "db{n}" | gzip > "/var/backups/db{n}-$(date +%F).gz" 2>&1'
user = "batch"
"""


@dataclass(frozen=True)
class Figures:
    """One size's figures, in seconds."""

    size: int
    first: float
    full: float
    full_cpu: float
    noop: float
    noop_cpu: float
    validate: float
    one_job: float
    one_job_cpu: float


def timed(func: object, repeat: int) -> tuple[float, float]:
    """Median wall and median CPU seconds (this process) of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        func()  # type: ignore[operator]
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def make_validate_tree(base: Path, size: int) -> Path:
    """A jobs tree (no git) of ``size`` jobs, every other one a shell string."""
    tree = base / "validate"
    (tree / "jobs").mkdir(parents=True)
    (tree / "scripts").mkdir()
    script = tree / "scripts/job.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    for n in range(size):
        form = SHELL_JOB if n % 2 else JOB
        text = form.format(n=n, minute=n % 60, hour=n % 24, zone=ZONES[n % len(ZONES)])
        (tree / "jobs" / f"job-{n:05d}.toml").write_text(text)
    return tree


def change_one_job(work: Path, remote: Path, n: int) -> None:
    """Commit and push a new schedule for job ``n`` (not timed)."""
    text = JOB.format(n=n, minute=(n + 7) % 60, hour=(n + 5) % 24, zone=ZONES[n % len(ZONES)])
    (work / "jobs" / f"job-{n:05d}.toml").write_text(text)
    git("commit", "-qam", f"job {n}: another schedule", cwd=work)
    git("push", "-q", str(remote), "main", cwd=work)


class OneJobSyncs:
    """Syncs of new commits that each change one job file (job 0, 1, 2...)."""

    def __init__(self, config: object, work: Path, remote: Path) -> None:
        self.config, self.work, self.remote = config, work, remote
        self.changed = 0

    def run(self, repeat: int, force: bool) -> tuple[float, float]:
        """Median wall and CPU seconds of ``repeat`` such syncs: ``force`` builds each
        whole, otherwise the installed release's check cache serves the others."""
        walls, cpus = [], []
        for _ in range(repeat):
            change_one_job(self.work, self.remote, self.changed)
            self.changed += 1
            start, cpu = time.perf_counter(), time.process_time()
            outcome = run_sync(self.config, force=force)  # type: ignore[arg-type]
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            assert outcome.record.result == "installed", outcome.record
            reused = any("reused the checks" in note for note in outcome.record.notes)
            assert reused != force, outcome.record
        return statistics.median(walls), statistics.median(cpus)


def bench(size: int, quick: bool) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        tree = make_validate_tree(base, size)
        validate, _ = timed(lambda: check_repository(tree), 1 if quick else 3)
        remote = make_repo(base, size)
        config_file = base / "agent.toml"
        config_file.write_text(CONFIG.format(remote=remote, root=base / "root"))
        config = load_config(str(config_file))
        start = time.perf_counter()
        first = run_sync(config)
        first_s = time.perf_counter() - start
        assert first.record.result == "installed", first.record
        syncs = OneJobSyncs(config, base / "work", remote)
        syncs.run(1, force=True)  # untimed: from now on every sync prunes one release
        repeat = 1 if quick else (3 if size >= 10_000 else 5)
        full_s, full_cpu = syncs.run(repeat, force=True)
        noop_s, noop_cpu = timed(lambda: run_sync(config), 5 if quick else 20)
        assert run_sync(config).record.result == "unchanged"
        one_s, one_cpu = syncs.run(1 if quick else 3, force=False)
        return Figures(size, first_s, full_s, full_cpu, noop_s, noop_cpu, validate, one_s, one_cpu)


def goals(figures: dict[int, Figures], table: Table) -> None:
    """The goals of issue 13 this benchmark measures, each against its in-run baseline."""
    small, big = figures.get(1_000), figures.get(10_000)
    if small and big:
        wall = (big.full / big.size) / (small.full / small.size)
        cpu = (big.full_cpu / big.size) / (small.full_cpu / small.size)
        table.add(
            "full sync per job, 10,000 vs 1,000 jobs (wall)",
            f"{wall:.2f}x",
            "<= 1.2x",
            wall <= 1.2,
            f"{big.full / big.size * 1e3:.3f} / {small.full / small.size * 1e3:.3f} ms a job",
        )
        table.add(
            "the same, CPU of this process",
            f"{cpu:.2f}x",
            "<= 1.2x",
            cpu <= 1.2,
            f"{big.full_cpu / big.size * 1e3:.3f} / {small.full_cpu / small.size * 1e3:.3f} ms",
        )
        per_job = (big.validate / big.size) / (small.validate / small.size)
        table.add(
            "validate per job, 10,000 vs 1,000 jobs (half shell)",
            f"{per_job:.2f}x",
            "<= 1.2x",
            per_job <= 1.2,
            f"{big.validate / big.size * 1e3:.3f} / {small.validate / small.size * 1e3:.3f} ms",
        )
        table.add(
            "validate 10,000 jobs (half shell), no shellcheck",
            f"{big.validate / big.full:.2f}x of a full sync",
            "<= 2 s",
            big.validate <= 2.0,
            ms(big.validate),
        )
    for size, figure in sorted(figures.items()):
        ratio = figure.one_job / figure.full
        table.add(
            f"one job changed in a {size:,}-job repository",
            f"{ratio:.2f}x of a full sync",
            "<= 0.1x",
            ratio <= 0.1,
            f"{ms(figure.one_job)} vs {ms(figure.full)}; CPU {ms(figure.one_job_cpu)} vs "
            f"{ms(figure.full_cpu)} ({figure.one_job_cpu / figure.full_cpu:.2f}x)",
        )
    for size, figure in sorted(figures.items()):
        table.add(
            f"no-op cycle at {size:,} jobs, CPU in process",
            f"{figure.noop_cpu / figure.noop:.2f} of its wall time",
            "<= 20 ms",
            figure.noop_cpu <= 0.020,
            f"{ms(figure.noop_cpu)} CPU, {ms(figure.noop)} wall",
        )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1_000, 10_000])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a loaded machine)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GIT_CONFIG_GLOBAL", "/dev/null")
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    context = Context("bench_sync" + (" --quick" if args.quick else ""))
    header = (
        f"{'jobs':>6} {'first sync ms':>14} {'full sync ms':>13} {'per job ms':>11} "
        f"{'CPU/job ms':>11} {'no-op ms':>9} {'full/no-op':>11} {'validate ms':>12}"
    )
    print(header)
    figures = {}
    for size in args.sizes:
        f = figures[size] = bench(size, args.quick)
        print(
            f"{size:>6} {f.first * 1e3:>14.1f} {f.full * 1e3:>13.1f} "
            f"{f.full * 1e3 / size:>11.3f} {f.full_cpu * 1e3 / size:>11.3f} "
            f"{f.noop * 1e3:>9.1f} {f.full / f.noop:>10.1f}x {f.validate * 1e3:>12.1f}",
            flush=True,
        )
    table = Table()
    goals(figures, table)
    table.print(context)


if __name__ == "__main__":
    main(sys.argv[1:])
