"""``kill -9`` of ``cronsync-run`` at random points of a ``concurrency = "forbid"`` run.

Each point starts a run of a long job and kills the shim after a random delay: before
it took the lock, while it starts the job, or while the job runs. Whatever it had
done, a second copy of the job never runs beside a live first one (the next run is
skipped while any process of the first lives), ``status`` answers, and once the
orphan is gone the next run runs and no record of a dead run is left ``running``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronsync.run.store import list_records
from helpers.awsbox import AwsShimSandbox, aws_box, wait_for

NOWHERE = "http://127.0.0.1:9"  # the AWS endpoint of a config that never calls AWS


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> Iterator[AwsShimSandbox]:
    with aws_box(tmp_path) as sandbox:
        yield sandbox


def live(pids: list[int]) -> list[int]:
    """Those of ``pids`` that are alive and not zombies."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def started(pids: Path) -> list[int]:
    """The pids of every copy of the job that started so far."""
    return [int(word) for word in pids.read_text().split()] if pids.exists() else []


def kill_copies(pids: Path) -> None:
    """KILL every copy of the job (their process groups) and wait until none lives."""
    for pid in started(pids):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not live(started(pids)), "the job's copies gone", seconds=30)


@pytest.mark.timeout(1800)
def test_a_shim_killed_anywhere_never_lets_a_second_copy_run(
    box: AwsShimSandbox, fault_points: int, rng: random.Random
) -> None:
    pids, quick = box.base / "pids", box.base / "quick"
    box.job(
        "long",
        f'concurrency = "forbid"\nshell = "echo $$ >> {pids}; [ -e {quick} ] || exec sleep 120"\n',
    )
    box.sync(NOWHERE, secrets="file", logs=False)
    orphans = 0
    for _point in range(fault_points):
        quick.unlink(missing_ok=True)
        before = len(started(pids))
        shim = subprocess.Popen(
            [sys.executable, "-m", "cronsync.cli.shim", "--root", str(box.root), "long"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=box.env(),
        )
        time.sleep(rng.uniform(0.0, 0.25))
        shim.kill()
        shim.wait(timeout=30)
        first = started(pids)[before:]
        quick.touch()  # a copy that starts from now on ends at once
        done = box.run("long")
        assert done.returncode == 0, done.stderr
        second = started(pids)[before + len(first) :]
        if live(first):
            orphans += 1
            assert not second, "a second copy started while the first still ran"
            assert box.last("long")["status"] == "skipped"
            status = subprocess.run(
                [sys.executable, "-m", "cronsync.cli.main", "status", "--json"],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
            )
            assert status.returncode in (0, 1) and "Traceback" not in status.stderr
            kill_copies(pids)
            done = box.run("long")  # the orphan is gone: this one runs
            assert done.returncode == 0, done.stderr
        assert box.last("long")["status"] == "succeeded", box.last("long")
        kill_copies(pids)
        running = [r.run_id for r in list_records(box.runs_dir, "long") if r.status == "running"]
        assert not running, f"records of dead runs left running: {running}"
    print(f"{orphans} of {fault_points} kills left the job orphaned")
    assert 0 < orphans < fault_points, "the kill points missed either side of the job's start"
