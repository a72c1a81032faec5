"""A job's run lock and its concurrency policy (forbid, allow, replace).

The lock is an ``flock`` on ``runs/<job>/lock`` held by the running shim for the whole
run; the file names the shim's pid and its job's process group, so a ``replace`` run
can stop the previous one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Optional

    from .fsutil import StrPath

FORBID = "forbid"
ALLOW = "allow"
REPLACE = "replace"
LOCK_FILE = "lock"


class JobLock:
    """The lock of one job's runs.

    Args:
        path: the lock file (created 0644 if missing; its directory must exist).
    """

    def __init__(self, path: StrPath) -> None:
        self.path = path
        self.fd: Optional[int] = None

    def try_acquire(self) -> bool:
        """Take the lock if free; return whether we hold it.

        Raises:
            OSError: the lock file cannot be opened.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        self.note_holder(None)
        return True

    def note_holder(self, job_pgid: Optional[int]) -> None:
        """Write our pid (and the job's process group once it runs) into the file."""
        if self.fd is None:
            return
        text = f"{os.getpid()} {job_pgid or 0}\n".encode()
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, text, 0)

    def holder(self) -> tuple[int, int]:
        """Return (shim pid, job process group) of the current holder (0 if unknown)."""
        try:
            with open(self.path, encoding="ascii") as handle:
                words = handle.read().split()
            return int(words[0]), int(words[1])
        except (OSError, ValueError, IndexError):
            return 0, 0

    def release(self) -> None:
        """Let go of the lock (closing the file releases the flock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _signal(pid: int, signum: int, group: bool = False) -> None:
    if pid <= 0:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def replace_previous(lock: JobLock, grace: float, poll: float = 0.1) -> bool:
    """Stop the run holding ``lock`` and take it over.

    Sends TERM to the previous shim (which passes it to its job and records the run as
    ended by a signal); after ``grace`` seconds KILLs its job's process group and the
    shim; waits a little more for the lock.

    Returns:
        True when we hold the lock.
    """
    shim_pid, job_pgid = lock.holder()
    _signal(shim_pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = False
    while not lock.try_acquire():
        if time.monotonic() > deadline:
            if killed:
                return False
            _signal(job_pgid, signal.SIGKILL, group=True)
            _signal(shim_pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 5.0
        time.sleep(poll)
    return True
