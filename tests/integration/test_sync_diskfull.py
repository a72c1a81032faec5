"""A full disk during a sync, on a real small tmpfs (root only; skipped otherwise).

A full disk is not a corrupt checkout: the sync exits 4 (an install failure) with the
system's reason, keeps the checkout (no re-clone, which would need the room it lacks),
leaves nothing half-written in ``releases/`` and keeps the last-known-good installed;
once there is room, the next sync installs the commit.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.sandbox import Sandbox, git
from helpers.tmpfs import free_bytes, free_inodes, resize, small_tmpfs

MiB = 1024 * 1024
SIZE = 8 * MiB
NO_SPACE = "No space left on device"


@dataclass(frozen=True)
class Installed:
    """What a failed sync must leave as it was."""

    cron: bytes
    current: str
    state: Any
    git_dir: int  # inode of the checkout's .git: a re-clone makes a new one


def installed(sandbox: Sandbox) -> Installed:
    return Installed(
        sandbox.cron_file.read_bytes(),
        os.readlink(sandbox.current),
        sandbox.state()["installed"],
        os.stat(sandbox.checkout / ".git").st_ino,
    )


def leftovers(sandbox: Sandbox) -> list[str]:
    """Half-made things a sync could leave: staging releases, temp clones, temp files."""
    found = [p.name for p in sandbox.releases.glob(".tmp-*")]
    found += [p.name for p in sandbox.state_dir.glob(".repo.clone-*")]
    found += [p.name for p in sandbox.state_dir.glob(".*.tmp-*")]
    return found


def push_large_file(sandbox: Sandbox, size: int, compressible: bool) -> str:
    """Commit and push ``data/blob.bin`` of ``size`` bytes; return the commit.

    Compressible data costs git's objects next to nothing, so only the work tree and
    the export need the room; random data needs it in git's objects too.
    """
    line = b"0123456789abcdef fill line for the work tree\n"
    data = (line * (size // len(line) + 1))[:size] if compressible else os.urandom(size)
    path = sandbox.upstream.work / "data/blob.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sandbox.upstream.commit_and_push("a large file")


def test_disk_full_during_export_exits_4_and_keeps_the_checkout(sandbox: Sandbox) -> None:
    with small_tmpfs(sandbox.state_dir, SIZE) as disk:
        assert sandbox.sync().record.result == "installed"
        before = installed(sandbox)
        # the checkout holds the file once; the export's second copy does not fit
        commit = push_large_file(sandbox, free_bytes(disk) * 2 // 3, compressible=True)

        done = sandbox.cli("sync")

        assert done.returncode == 4, (done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and NO_SPACE in lines[0], done.stderr
        assert "Traceback" not in done.stderr
        assert installed(sandbox) == before  # not re-cloned, last-known-good installed
        assert git(sandbox.checkout, "rev-parse", "HEAD") == commit
        record = sandbox.state()["last_sync"]
        assert record["result"] == "failed" and NO_SPACE in record["message"]
        assert not any("cloned afresh" in note for note in record["notes"])
        assert leftovers(sandbox) == []

        resize(disk, 2 * SIZE)
        outcome = sandbox.sync()
        assert outcome.record.result == "installed", outcome.record
        assert sandbox.state()["installed"]["commit"] == commit


@pytest.mark.parametrize(
    ("compressible", "reason"),
    [
        (False, NO_SPACE),  # git's objects do not fit: git says why
        (True, "unable to write file"),  # the work tree does not: git only says what
    ],
    ids=["objects", "work-tree"],
)
def test_disk_full_during_fetch_exits_4_and_keeps_the_checkout(
    sandbox: Sandbox, compressible: bool, reason: str
) -> None:
    with small_tmpfs(sandbox.state_dir, SIZE) as disk:
        assert sandbox.sync().record.result == "installed"
        before = installed(sandbox)
        commit = push_large_file(sandbox, free_bytes(disk) * 5 // 4, compressible)

        outcome = sandbox.sync()

        assert outcome.exit_code == 4, outcome.record
        assert outcome.record.result == "failed"
        assert reason in outcome.record.message, outcome.record.message
        assert re.match(r"^cannot (fetch|update)\b", outcome.record.message)
        assert installed(sandbox) == before  # the checkout was not deleted
        assert leftovers(sandbox) == []

        resize(disk, 4 * SIZE)
        outcome = sandbox.sync()
        assert outcome.record.result == "installed", outcome.record
        assert sandbox.state()["installed"]["commit"] == commit
        assert not any("cloned afresh" in note for note in outcome.record.notes)


def inodes_below(path: Path) -> int:
    """Inodes of ``path`` and everything below it (symlinks not followed)."""
    return 1 + sum(len(dirs) + len(files) for _root, dirs, files in os.walk(path))


def test_a_failed_write_of_jobs_json_leaves_no_staging_release(sandbox: Sandbox) -> None:
    """``releases/`` runs out of inodes exactly when jobs.json is written: the export
    of the new commit fits, jobs.json does not."""
    with small_tmpfs(sandbox.releases, 4 * SIZE, inodes=4096) as disk:
        assert sandbox.sync().record.result == "installed"
        before = installed(sandbox)
        release = sandbox.releases / os.path.basename(before.current)
        path = sandbox.upstream.work / "jobs/sitemap-build.toml"
        path.write_text(path.read_text().replace('"7 * * * *"', '"8 * * * *"'))
        commit = sandbox.upstream.commit_and_push("same files, another schedule")
        # the staging release: its own folder plus the tree (the release less jobs.json
        # and crontab)
        needed = inodes_below(release) - 2
        filler = disk / ".filler"
        filler.mkdir()
        for number in range(free_inodes(disk) - needed):
            (filler / str(number)).touch()

        outcome = sandbox.sync()

        assert outcome.exit_code == 4, outcome.record
        assert "jobs.json" in outcome.record.message and NO_SPACE in outcome.record.message
        assert installed(sandbox) == before
        assert leftovers(sandbox) == []

        shutil.rmtree(filler)
        assert sandbox.sync().record.result == "installed"
        assert sandbox.state()["installed"]["commit"] == commit
