"""A sync on a full disk: the host root on a small tmpfs, filled to a random point.

Each point pushes a commit and fills the disk so that only a random amount, from
nothing to a little more than a sync needs, is free. The sync either installs or
fails with exit 4 naming the full disk (it is not a corrupt checkout: nothing is
deleted or re-cloned); either way the host keeps the invariants of
:mod:`helpers.faultcheck`, and once space is freed the next sync installs the commit
without cloning afresh. Needs root (to mount the tmpfs); skips otherwise.
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.faultcheck import (
    check_after_fault,
    check_status_answers,
    cronsync,
    push_generation,
    snapshot,
    sync_recovers,
)
from helpers.sandbox import GIT_ENV, Sandbox, make_sandbox
from helpers.tmpfs import free_bytes, small_tmpfs

JOBS = 40
DISK = 48 * 1024 * 1024
RECLONED = "cloned afresh"
FILLER = "filler"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/root`` on its own tmpfs of :data:`DISK` bytes (unmounted after)."""
    with small_tmpfs(tmp_path / "root", DISK) as root:
        yield root


@pytest.fixture
def full_disk_host(small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox whose host root is the small tmpfs (the remote stays outside it)."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    sandbox = make_sandbox(tmp_path)
    assert sandbox.root == small_disk
    return sandbox


def fill(root: Path, leave: int) -> None:
    """Fill ``root``'s file system until about ``leave`` bytes are free."""
    filler = root / FILLER
    size = max(0, free_bytes(root) - leave)
    with filler.open("wb") as out:
        if not size:
            return
        try:
            os.posix_fallocate(out.fileno(), 0, size)
        except OSError as exc:  # tmpfs: fallocate past the size limit
            assert exc.errno == errno.ENOSPC, exc


@pytest.mark.timeout(3600)
def test_a_sync_on_a_full_disk_fails_cleanly_and_the_next_recovers(
    full_disk_host: Sandbox, fault_points: int, rng: random.Random
) -> None:
    sandbox = full_disk_host
    sync_recovers(sandbox, push_generation(sandbox, 0, JOBS))
    before = DISK - free_bytes(sandbox.root)
    sync_recovers(sandbox, push_generation(sandbox, 1, JOBS))
    needs = max(DISK - free_bytes(sandbox.root) - before, 256 * 1024) * 3
    failed = 0
    for point in range(fault_points // 2):
        old = snapshot(sandbox)
        commit = push_generation(sandbox, point + 2, JOBS)
        # the first point leaves nothing free (a sync must fail); the others anything up
        # to three times what a sync took (a release's files, its checks.json, git's
        # objects), so the fault lands at any step
        fill(sandbox.root, rng.randrange(0, needs) if point else 0)
        try:
            done = cronsync(sandbox, "sync")
            assert "Traceback" not in done.stderr, done.stderr[-2000:]
            assert done.returncode in (0, 4), (done.returncode, done.stdout, done.stderr[-800:])
            if done.returncode == 4:
                failed += 1
                said = (done.stdout + done.stderr).lower()
                assert "no space left on device" in said, done.stderr[-800:]
                assert RECLONED not in said
            after = snapshot(sandbox)
            check_status_answers(sandbox)
        finally:
            (sandbox.root / FILLER).unlink()
        new = sync_recovers(sandbox, commit, never_says=(RECLONED,))
        check_after_fault(after, old, new)
    assert failed, "no point filled the disk enough to make a sync fail"
