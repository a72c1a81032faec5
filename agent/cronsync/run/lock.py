"""A job's run lock and its concurrency policy (forbid, allow, replace).

The lock is an ``flock`` on ``runs/<job>/lock`` held by the running shim for the whole
run; the file names the shim's pid, its job's process group (0 while no process of the
job runs) and its run id, so a ``replace`` run can stop the previous one and the next
holder can close the record of a run whose shim died.

The line is always written whole at offset 0 and padded to ``HOLDER_LINE`` bytes, with
one ``pwrite``: a reader sees the old line or the new one, never an empty file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from cronsync.core.suppress import suppress
from cronsync.run.store import open_regular

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    import signal
    from typing import Optional

    from cronsync.files.paths import StrPath
else:  # `signal` imports `enum` to make its constants: milliseconds at every start
    import _signal as signal


FORBID = "forbid"
ALLOW = "allow"
REPLACE = "replace"
LOCK_FILE = "lock"
HOLDER_LINE = 96  # bytes of the holder line, newline included (pids and a run id fit)

NO_HOLDER = (0, 0, "")


def parse_holder(data: bytes) -> tuple[int, int, str]:
    """Return (shim pid, job process group, run id) from a lock file's first line;
    zeros and "" for what is missing or not a number."""
    words = data.split(b"\n", 1)[0].split()
    try:
        pid = int(words[0]) if words else 0
        pgid = int(words[1]) if len(words) > 1 else 0
    except ValueError:
        return NO_HOLDER
    run_id = words[2].decode("ascii", "replace") if len(words) > 2 else ""
    return max(pid, 0), max(pgid, 0), run_id


class JobLock:
    """The lock of one job's runs.

    Args:
        path: the lock file (created 0644 if missing; its directory must exist).
        run_id: the run taking it (written into the holder line).

    Attributes:
        previous: after :meth:`try_acquire` succeeded, the holder line the file held
            before: (shim pid, job process group, run id) of the last holder.
    """

    def __init__(self, path: StrPath, run_id: str = "") -> None:
        self.path = path
        self.run_id = run_id
        self.fd: Optional[int] = None
        self.previous = NO_HOLDER

    def try_acquire(self) -> bool:
        """Take the lock if free; return whether we hold it.

        Raises:
            OSError: the lock file cannot be opened (a symlink is refused).
        """
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(self.path, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", os.fspath(self.path))
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        with suppress(OSError):
            self.previous = parse_holder(os.pread(fd, HOLDER_LINE, 0))
        self.note_holder(None)
        with suppress(OSError):
            if os.fstat(fd).st_size > HOLDER_LINE:  # junk after the line: cut it
                os.ftruncate(fd, HOLDER_LINE)
        return True

    def note_holder(self, job_pgid: Optional[int]) -> None:
        """Write our pid, the job's process group (once it runs; None: none runs) and our
        run id into the file, as one fixed-width line in one write."""
        if self.fd is None:
            return
        line = f"{os.getpid()} {job_pgid or 0} {self.run_id}"[: HOLDER_LINE - 1]
        with suppress(OSError):
            os.pwrite(self.fd, line.ljust(HOLDER_LINE - 1).encode() + b"\n", 0)

    def holder(self) -> tuple[int, int]:
        """Return (shim pid, job process group) of the current holder (0 if unknown)."""
        pid, pgid, _ = self.holder_line()
        return pid, pgid

    def holder_line(self) -> tuple[int, int, str]:
        """Return (shim pid, job process group, run id) of the current holder."""
        try:
            fd = open_regular(self.path)
        except OSError:
            return NO_HOLDER
        try:
            return parse_holder(os.pread(fd, HOLDER_LINE, 0))
        except OSError:
            return NO_HOLDER
        finally:
            os.close(fd)

    def release(self) -> None:
        """Let go of the lock (closing the file releases the flock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _signal(pid: int, signum: int, group: bool = False) -> None:
    """Send ``signum`` to a process (or a process group), never to ourselves, our own
    group or init; a pid from the lock file is only a hint."""
    if pid <= 1 or pid == os.getpid() or (group and pid == os.getpgrp()):
        return
    with suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def replace_previous(lock: JobLock, grace: float, poll: float = 0.1) -> bool:
    """Stop the run holding ``lock`` and take it over.

    Sends TERM to the previous shim (which passes it to its job, KILLs the job's
    process group after its own kill grace, and records the run as ended by a
    signal); if it still holds the lock after ``grace`` seconds, KILLs the job's process
    group it last recorded and the shim; waits a little more for the lock.

    Returns:
        True when we hold the lock.
    """
    shim_pid, _ = lock.holder()
    _signal(shim_pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = False
    while not lock.try_acquire():
        if time.monotonic() > deadline:
            if killed:
                return False
            now_pid, job_pgid = lock.holder()  # the job may have started since
            if now_pid == shim_pid:
                _signal(job_pgid, signal.SIGKILL, group=True)
            _signal(shim_pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 5.0
        time.sleep(poll)
    return True
