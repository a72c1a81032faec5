"""``kill -9`` of a running ``cronsync sync`` at random points.

Each point: a new commit changes every generated job, ``cronsync sync`` (a real
process) starts and is killed after a random delay, somewhere between its imports and
its end. Whatever it had done, the host keeps the invariants of
:mod:`helpers.faultcheck`: the cron file old or new and complete, ``current``
consistent with it, no file cron would read left behind, no git process outliving it,
``status`` answering, and the next sync installing the new commit.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter

import pytest

from helpers.faultcheck import (
    HostSnapshot,
    check_after_fault,
    check_status_answers,
    cronsync,
    kill_hard,
    push_generation,
    snapshot,
    start_cronsync,
    sync_recovers,
    wait_no_processes_below,
)
from helpers.sandbox import Sandbox

JOBS = 80
"""Generated jobs on top of the template: enough that a sync spends most of its time
past its imports (validating, rendering, writing the release)."""


def write_generation(sandbox: Sandbox, generation: int) -> str:
    """Change every generated job; return the pushed commit."""
    return push_generation(sandbox, generation, JOBS)


def timed(sandbox: Sandbox, *args: str) -> float:
    """Seconds one real ``cronsync ARGS`` process takes (it must succeed)."""
    started = time.monotonic()
    done = cronsync(sandbox, *args)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return time.monotonic() - started


@pytest.mark.timeout(3600)
def test_a_sync_killed_anywhere_leaves_old_or_new_and_the_next_recovers(
    sandbox: Sandbox, fault_points: int, rng: random.Random
) -> None:
    outcomes: Counter[str] = Counter()
    sync_recovers(sandbox, write_generation(sandbox, 0))
    cron_d_before = snapshot(sandbox).cron_d_names - {"cronsync"}
    imports = timed(sandbox, "--version")
    write_generation(sandbox, 1)
    durations = [timed(sandbox, "sync")]  # of whole syncs of a new commit, kept up to date
    for point in range(fault_points):
        generation = point + 2
        old = snapshot(sandbox)
        commit = write_generation(sandbox, generation)
        whole = statistics.median(durations[-5:])
        # half the points anywhere past most of the imports, half around the sync's
        # end, where the release, `current` and the cron file are written
        if point % 2:
            delay = rng.uniform(imports * 0.7, whole * 1.05)
        else:
            delay = rng.uniform(whole * 0.9, whole * 1.3)
        process = start_cronsync(sandbox, "sync")
        time.sleep(delay)
        kill_hard(process)
        wait_no_processes_below(sandbox.checkout)
        after = snapshot(sandbox)
        check_status_answers(sandbox)
        started = time.monotonic()
        new = sync_recovers(sandbox, commit)
        if after.current_release != new.current_release:  # it did the whole install
            durations.append(time.monotonic() - started)
        check_after_fault(after, old, new, cron_d_before)
        outcomes[_outcome(after, old, new)] += 1
    print(f"kill points: {dict(outcomes)}")
    # the draw must reach past the imports: some kills left the old host, some the new
    assert outcomes["old"] and outcomes["new"], outcomes


def _outcome(after: HostSnapshot, old: HostSnapshot, new: HostSnapshot) -> str:
    """Where a kill landed, as the host shows it: before the new release (old), in the
    install's window (current switched, cron file not yet), or after it (new)."""
    if after.cron == new.cron and after.current_release == new.current_release:
        return "new"
    if after.current_release == new.current_release:
        return "window"
    return "old"
