"""Benchmark: sync repositories of 10, 100, 1,000 and 10,000 jobs.

For each size it makes a real git repository with a bare remote in a temp dir and
measures, in this one process:

* first sync  — clone + export + validate + render + install;
* full sync   — the same without the clone (``force``: a new commit's cost);
* no-op cycle — fetch, nothing new, installed files intact: nothing rewritten.

It prints milliseconds, time per job and each figure's ratio to the no-op cycle
measured in the same run (the machines are shared and noisy: compare ratios).
Not a test: run it by hand, ``python bench/bench_sync.py [SIZES...]``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cronsync.host.config import load_config
from cronsync.host.sync import run_sync

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


def timed(func: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench(size: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        remote = make_repo(base, size)
        config_file = base / "agent.toml"
        config_file.write_text(CONFIG.format(remote=remote, root=base / "root"))
        config = load_config(str(config_file))
        start = time.perf_counter()
        first = run_sync(config)
        first_s = time.perf_counter() - start
        assert first.record.result == "installed", first.record
        repeat = 3 if size >= 10_000 else 5
        full_s = timed(lambda: run_sync(config, force=True), repeat)
        noop_s = timed(lambda: run_sync(config), 20)
        assert run_sync(config).record.result == "unchanged"
        return first_s, full_s, noop_s


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [10, 100, 1_000, 10_000]
    os.environ.setdefault("GIT_CONFIG_GLOBAL", "/dev/null")
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")
    header = (
        f"{'jobs':>6} {'first sync ms':>14} {'full sync ms':>13} {'per job ms':>11} "
        f"{'no-op ms':>9} {'full/no-op':>11}"
    )
    print(header)
    for size in sizes:
        first_s, full_s, noop_s = bench(size)
        print(
            f"{size:>6} {first_s * 1e3:>14.1f} {full_s * 1e3:>13.1f} "
            f"{full_s * 1e3 / size:>11.3f} {noop_s * 1e3:>9.1f} {full_s / noop_s:>10.1f}x"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
