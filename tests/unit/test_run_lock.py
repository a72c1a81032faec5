"""The run lock's holder line and the descriptor a job gets: a copy of the locked,
read-only descriptor, which keeps the lock taken after the shim lets go."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
from pathlib import Path

import pytest

from cronsync.host.jobdirs import ensure_job_dirs
from cronsync.run.lock import HOLDER_LINE, Holder, JobLock, read_holder, read_holder_file
from cronsync.run.process import spawn
from cronsync.run.procs import flock_held, flock_holders, process_start
from helpers.users import HAS_USERADD, IS_ROOT, as_user, open_dir, temporary_users


@pytest.mark.parametrize(
    ("data", "holder"),
    [
        (b"12 34 run 555 666\n", Holder(12, 34, "run", 555, 666)),
        (b"12 34 run\n", Holder(12, 34, "run", 0, 0)),  # a line of an older shim
        (b"12 34 run x -3\n", Holder(12, 34, "run", 0, 0)),
        (b"x 34 run 1 2\n", Holder(0, 0, "", 0, 0)),
    ],
)
def test_read_holder(data: bytes, holder: Holder) -> None:
    assert read_holder(data) == holder


def test_a_run_that_may_step_back_keeps_the_previous_line(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    path.write_bytes(b"999999999 4321 old-run 7 8".ljust(HOLDER_LINE - 1) + b"\n")
    lock = JobLock(path, "new-run")
    assert lock.try_acquire(claim=False)
    try:
        assert lock.previous_holder == Holder(999999999, 4321, "old-run", 7, 8)
        assert lock.current_holder() == lock.previous_holder  # still the old line
        lock.claim()
        mine = Holder(os.getpid(), 0, "new-run", process_start(os.getpid()), 0)
        assert mine.shim_start > 0 and lock.current_holder() == mine
        assert mine.shim_alive() and not Holder(os.getpid(), 0, "x", 1).shim_alive()
    finally:
        lock.release()


def fd_flags(pid: int, fd: int) -> int:
    text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
    return int(next(x for x in text.splitlines() if x.startswith("flags:")).split()[1], 8)


@pytest.mark.parametrize("same_number", [False, True])
def test_the_job_keeps_the_lock_through_its_read_only_copy(
    tmp_path: Path, same_number: bool
) -> None:
    path = tmp_path / "lock"
    lock = JobLock(path, "run")
    assert lock.try_acquire()
    assert lock.fd is not None
    target = lock.fd if same_number else 3  # a descriptor that already has its number
    child = spawn(["sleep", "300"], str(tmp_path), {"PATH": "/usr/bin:/bin"}, {target: lock.fd})
    try:
        assert os.stat(f"/proc/{child.pid}/fd/{target}").st_ino == path.stat().st_ino
        assert fd_flags(child.pid, target) & os.O_ACCMODE == os.O_RDONLY  # it cannot write
        assert child.pid in flock_holders(path) and os.getpid() in flock_holders(path)
        lock.release()  # the shim lets go (or is killed): the job still holds it
        assert flock_holders(path) == [child.pid] and flock_held(path)
        assert not JobLock(path).try_acquire()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=20) == -signal.SIGKILL
        child.close_pipes()
    assert flock_held(path) is False and flock_holders(path) == []
    again = JobLock(path, "next")
    assert again.try_acquire()
    again.release()


def test_a_lock_file_replaced_while_being_taken_is_refused(tmp_path: Path) -> None:
    """The holder line is written through a second descriptor: it must be the same
    file as the locked one."""
    path = tmp_path / "lock"
    lock = JobLock(path)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(path, tmp_path / "moved")
        path.write_text("")
        with pytest.raises(OSError, match="replaced"):
            lock._open_writer(fd)
    finally:
        os.close(fd)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_lock_file_is_its_owner_s_only(tmp_path: Path) -> None:
    """Anyone who can open the lock can flock it and block every forbid run: 0600, and
    an older, wider lock file is narrowed when the shim opens it."""
    path = tmp_path / "lock"
    lock = JobLock(path, "run")
    assert lock.try_acquire()
    lock.release()
    assert mode_of(path) == 0o600
    path.chmod(0o644)  # as an older shim made it
    assert lock.try_acquire()
    lock.release()
    assert mode_of(path) == 0o600


def take_lock(path: str) -> bool:
    lock = JobLock(path, "20250101T000000Z-abcd")
    taken = lock.try_acquire()
    lock.release()
    return taken


def try_read(path: str) -> str:
    try:
        with open(path, "rb"):
            return "opened"
    except OSError as exc:
        return type(exc).__name__


@pytest.mark.skipif(not (IS_ROOT and HAS_USERADD), reason="other users need root and useradd")
def test_only_the_job_user_and_root_reach_the_lock() -> None:
    with temporary_users(2, prefix="csl") as (user, other), open_dir("cronsync-lock-") as base:
        runs, logs = base / "runs", base / "logs"
        ensure_job_dirs(runs, logs, {"job": user.pw_name})
        path = runs / "job" / "lock"
        assert as_user(user, lambda: take_lock(str(path)))  # its first run makes it
        assert (os.stat(path).st_uid, mode_of(path)) == (user.pw_uid, 0o600)
        assert as_user(other, lambda: try_read(str(path))) == "PermissionError"
        assert read_holder_file(path).run_id == "20250101T000000Z-abcd"  # root reads it
        path.chmod(0o644)  # an older lock: the next sync narrows it
        ensure_job_dirs(runs, logs, {"job": user.pw_name})
        assert (os.stat(path).st_uid, mode_of(path)) == (user.pw_uid, 0o600)
        path.chmod(0o644)  # and so does the next run
        assert as_user(user, lambda: take_lock(str(path)))
        assert mode_of(path) == 0o600
