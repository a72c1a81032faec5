"""A job's run lock and its concurrency policy (forbid, allow, replace).

The lock is an ``flock`` on ``runs/<job>/lock``, taken by the shim and handed to the
job's processes as descriptor ``JOB_LOCK_FD`` (read-only; ``CRONSYNC_LOCK_FD`` says
which): an flock belongs to the open file, so it stays taken for as long as any process
of the job keeps that descriptor, even after the shim is killed (SIGKILL leaves the job
running, orphaned). The file's holder line names the shim (pid, start time), the job's
process group and its first process's start time (0 while no process of the job
runs) and the run id: the next run also counts the job as running while that group
lives (a job may close the descriptor), a ``replace`` run knows what to stop, and the
next holder closes the record of a run whose shim died.

Limits: a process that leaves the job's process group (``setsid``, a daemon's double
fork) *and* closes the descriptor is no longer the job's, nor is a member of its group
that runs as another user (``sudo``: see below); after a normal end of its run, only
the descriptor counts (no group is recorded any more); a job may close it on purpose
(``3<&-``) for a process meant to outlive its run. Start times tell a process from a
later one given the same pid.

The line is always written whole at offset 0 and padded to ``HOLDER_LINE`` bytes, with
one ``pwrite``: a reader sees the old line or the new one, never an empty file.

The file is the job's user's only (0600; a wider one is narrowed when opened): anyone
who can open it can ``flock`` it and hold every ``forbid`` run back. Root reads it for
``status``. A holder line is still only a hint: only processes whose real uid is the
job's user's are ever signalled, or counted through the recorded group (the shim runs
as that user; a group none of whose live members runs as it is not the job's). A job's user
change gives the new user a fresh lock file (:mod:`cronsync.host.jobdirs`), so no
descriptor the earlier user kept can write its line.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from cronsync.core.frozen import Frozen
from cronsync.core.suppress import suppress
from cronsync.run.procs import (
    flock_holders,
    group_alive,
    group_members,
    process_start,
    process_uid,
)
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
LOCK_MODE = 0o600  # the job's user's only (root reads it for status)
HOLDER_LINE = 96  # bytes of the holder line, newline included (pids, run id, starts fit)
JOB_LOCK_FD = 3  # the descriptor a job's processes hold the lock by


class Holder(Frozen):
    """What a lock file's holder line says (0 or "" for what is missing).

    Attributes:
        pid: the holding shim's pid.
        pgid: the process group of the job's process it runs (0: none runs).
        run_id: its run.
        shim_start: the shim's start time (:func:`cronsync.run.procs.process_start`).
        job_start: the start time of the group's first process.
    """

    # the fields, in order
    __slots__ = (  # noqa: RUF023
        "pid",
        "pgid",
        "run_id",
        "shim_start",
        "job_start",
    )
    pid: int
    pgid: int
    run_id: str
    shim_start: int
    job_start: int

    def __init__(
        self, pid: int, pgid: int, run_id: str, shim_start: int = 0, job_start: int = 0
    ) -> None:
        self._fill(pid, pgid, run_id, shim_start, job_start)

    def shim_alive(self) -> bool:
        """Whether the shim still runs (the same process: its start time matches when
        the line has one)."""
        started = process_start(self.pid) if self.pid > 1 else 0
        return started > 0 and (not self.shim_start or started == self.shim_start)

    def job_alive(self, uid: Optional[int]) -> bool:
        """Whether a process of the recorded job group run by ``uid`` (the job's user;
        None: by anyone) lives (see :func:`cronsync.run.procs.group_alive`)."""
        return group_alive(self.pgid, self.job_start, uid)


NO_HOLDER = Holder(0, 0, "")


def read_holder(data: bytes) -> Holder:
    """Return the holder named by a lock file's first line (:data:`NO_HOLDER` when its
    pids are not numbers; a start time that is not a number is 0)."""
    words = data.split(b"\n", 1)[0].split()
    try:
        pid = int(words[0]) if words else 0
        pgid = int(words[1]) if len(words) > 1 else 0
    except ValueError:
        return NO_HOLDER
    run_id = words[2].decode("ascii", "replace") if len(words) > 2 else ""
    starts = [_number(word) for word in words[3:5]] + [0, 0]
    return Holder(max(pid, 0), max(pgid, 0), run_id, starts[0], starts[1])


def _number(word: bytes) -> int:
    try:
        return max(int(word), 0)
    except ValueError:
        return 0


def parse_holder(data: bytes) -> tuple[int, int, str]:
    """Return (shim pid, job process group, run id) from a lock file's first line;
    zeros and "" for what is missing or not a number."""
    holder = read_holder(data)
    return holder.pid, holder.pgid, holder.run_id


def read_lock_file(path: StrPath) -> tuple[Holder, Optional[int]]:
    """Return the holder line of the lock file ``path`` and the file's owner (the job's
    user); (:data:`NO_HOLDER`, None) when it cannot be read (a symlink or a FIFO is not
    read)."""
    try:
        fd = open_regular(path)
    except OSError:
        return NO_HOLDER, None
    try:
        return read_holder(os.pread(fd, HOLDER_LINE, 0)), os.fstat(fd).st_uid
    except OSError:
        return NO_HOLDER, None
    finally:
        os.close(fd)


def read_holder_file(path: StrPath) -> Holder:
    """Return the holder line of the lock file ``path`` (:data:`NO_HOLDER` when it
    cannot be read; a symlink or a FIFO is not read)."""
    return read_lock_file(path)[0]


class JobLock:
    """The lock of one job's runs.

    Args:
        path: the lock file (created 0600 if missing, narrowed to 0600 if it is ours
            and wider; its directory must exist).
        run_id: the run taking it (written into the holder line).

    Attributes:
        fd: while held, the locked descriptor (read-only; the job gets a copy).
        previous_holder: after :meth:`try_acquire` succeeded, the :class:`Holder` the
            file named before.
    """

    def __init__(self, path: StrPath, run_id: str = "") -> None:
        self.path = path
        self.run_id = run_id
        self.fd: Optional[int] = None
        self._writer: Optional[int] = None  # writes the holder line; never the job's
        self._start = 0
        self.previous_holder = NO_HOLDER

    @property
    def previous(self) -> tuple[int, int, str]:
        """(shim pid, job process group, run id) of the last holder."""
        holder = self.previous_holder
        return holder.pid, holder.pgid, holder.run_id

    def try_acquire(self, claim: bool = True) -> bool:
        """Take the lock if free; return whether we hold it.

        Args:
            claim: write our holder line at once; False leaves the previous holder's
                line for :meth:`claim` (a run that may still step back keeps it).

        Raises:
            OSError: the lock file cannot be opened (a symlink is refused).
        """
        flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(self.path, flags, LOCK_MODE)
        try:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", os.fspath(self.path))
            if found.st_mode & 0o077 and found.st_uid == os.geteuid():  # an older shim's
                with suppress(OSError):
                    os.fchmod(fd, LOCK_MODE)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            writer = self._open_writer(fd)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self.fd, self._writer = fd, writer
        with suppress(OSError):
            self.previous_holder = read_holder(os.pread(fd, HOLDER_LINE, 0))
        if claim:
            self.claim()
        return True

    def _open_writer(self, locked: int) -> int:
        """Open the lock file again for writing its line (the locked descriptor is
        read-only: a job cannot write through its copy); it must be the same file."""
        flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        writer = os.open(self.path, flags)
        first, second = os.fstat(locked), os.fstat(writer)
        if (first.st_dev, first.st_ino) != (second.st_dev, second.st_ino):
            os.close(writer)
            raise OSError(errno.EAGAIN, "replaced while being locked", os.fspath(self.path))
        return writer

    def claim(self) -> None:
        """Write our holder line (no process of the job runs yet) over the previous
        holder's, and cut what follows it."""
        self.note_holder(None)
        if self._writer is not None:
            with suppress(OSError):
                if os.fstat(self._writer).st_size > HOLDER_LINE:  # junk after the line
                    os.ftruncate(self._writer, HOLDER_LINE)

    def note_holder(self, job_pgid: Optional[int]) -> None:
        """Write our pid and start, the job's process group (once it runs; None: none
        runs) with its first process's start, and our run id into the file, as one
        fixed-width line in one write."""
        if self._writer is None:
            return
        if not self._start:
            self._start = process_start(os.getpid())
        job_start = process_start(job_pgid) if job_pgid else 0
        line = f"{os.getpid()} {job_pgid or 0} {self.run_id} {self._start} {job_start}"
        with suppress(OSError):
            os.pwrite(
                self._writer, line[: HOLDER_LINE - 1].ljust(HOLDER_LINE - 1).encode() + b"\n", 0
            )

    def current_holder(self) -> Holder:
        """Return the holder line the file has now."""
        return read_holder_file(self.path)

    def holder(self) -> tuple[int, int]:
        """Return (shim pid, job process group) of the current holder (0 if unknown)."""
        holder = self.current_holder()
        return holder.pid, holder.pgid

    def holder_line(self) -> tuple[int, int, str]:
        """Return (shim pid, job process group, run id) of the current holder."""
        holder = self.current_holder()
        return holder.pid, holder.pgid, holder.run_id

    def release(self) -> None:
        """Let go of the lock: closing our descriptor releases the flock unless a
        process of the job still holds its copy."""
        for fd in (self.fd, self._writer):
            if fd is not None:
                with suppress(OSError):
                    os.close(fd)
        self.fd = self._writer = None


def busy_reason(holder: Holder) -> str:
    """Why a run is skipped while ``holder``'s run (or what it left) holds the lock."""
    if holder.shim_alive() or not holder.run_id:
        return f"skipped: previous run still running (pid {holder.pid})"
    if holder.pgid:
        return (
            f"skipped: previous run {holder.run_id} still running, orphaned: its "
            f"cronsync-run (pid {holder.pid}) is gone, the job's processes "
            f"(group {holder.pgid}) live on"
        )
    return (
        f"skipped: processes left by run {holder.run_id} still hold its lock through "
        f"descriptor {JOB_LOCK_FD} (its cronsync-run, pid {holder.pid}, is gone)"
    )


def _signal(pid: int, signum: int, uid: int) -> None:
    """Send ``signum`` to process ``pid`` if it runs as ``uid`` (the job's user), never
    to ourselves or init; a pid from the lock file is only a hint."""
    if pid <= 1 or pid == os.getpid() or process_uid(pid) != uid:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _signal_group(holder: Holder, signum: int, uid: int) -> None:
    """Send ``signum`` to each live member of the job's recorded group that runs as
    ``uid`` (none when the group is no longer that one, or is our own)."""
    if holder.pgid == os.getpgrp():
        return
    for pid in group_members(holder.pgid, holder.job_start, uid):
        _signal(pid, signum, uid)


def _signal_left(lock: JobLock, holder: Holder, signum: int, uid: int) -> None:
    """Send ``signum`` to what a dead shim left, as far as it runs as ``uid``: the job's
    recorded group and every process holding the lock."""
    _signal_group(holder, signum, uid)
    for pid in flock_holders(lock.path):
        _signal(pid, signum, uid)


def replace_previous(lock: JobLock, grace: float, uid: int, poll: float = 0.1) -> bool:
    """Stop the run holding ``lock`` and take it over (not claimed: see
    :meth:`JobLock.claim`).

    Sends TERM to the previous shim (which passes it to its job, KILLs the job's
    process group after its own kill grace, and records the run as ended by a signal),
    or, when that shim is gone (or the line names a process of another user), to the
    job's group and the processes holding the lock; if the lock is still held after
    ``grace`` seconds, KILLs the job's process group it last recorded, the processes
    holding the lock and the shim; waits a little more. Only processes running as
    ``uid`` (the job's user) are signalled.

    Returns:
        True when we hold the lock.
    """
    holder = lock.current_holder()
    shim_alive = holder.shim_alive() and process_uid(holder.pid) == uid
    if shim_alive:
        _signal(holder.pid, signal.SIGTERM, uid)
    else:
        _signal_left(lock, holder, signal.SIGTERM, uid)
    deadline = time.monotonic() + grace
    killed = False
    while not lock.try_acquire(claim=False):
        if time.monotonic() > deadline:
            if killed:
                return False
            now = lock.current_holder()  # the job may have started since
            if (now.pid, now.run_id) == (holder.pid, holder.run_id):
                _signal_left(lock, now, signal.SIGKILL, uid)
            if shim_alive and holder.shim_alive():
                _signal(holder.pid, signal.SIGKILL, uid)
            killed, deadline = True, time.monotonic() + 5.0
        time.sleep(poll)
    return True


def stop_group(holder: Holder, grace: float, uid: int, poll: float = 0.1) -> bool:
    """Stop the job group a dead shim left (its processes closed the lock's
    descriptor), as far as it runs as ``uid`` (the job's user): TERM, then KILL after
    ``grace`` seconds, again while any is left (a process forked since is caught too);
    return whether none is left (within 5 more seconds)."""
    _signal_group(holder, signal.SIGTERM, uid)
    deadline = time.monotonic() + grace
    killed = False
    while holder.job_alive(uid):
        if time.monotonic() > deadline:
            if killed:
                return False
            killed, deadline = True, time.monotonic() + 5.0
        if killed:
            _signal_group(holder, signal.SIGKILL, uid)
        time.sleep(poll)
    return True
