"""An exclusive, non-blocking lock on a lock file, held across processes.

The only place that takes a lock (the sync's, the agent's). Every ``OSError`` becomes an
:class:`~cronsync.core.errors.InstallError`, a held lock a
:class:`~cronsync.core.errors.LockBusyError` saying who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from cronsync.core.errors import InstallError, LockBusyError, os_reason

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ms
if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType
    from typing import Optional


class ExclusiveLock:
    """An exclusive, non-blocking lock on a lock file, held across processes.

    Use as a context manager. The holder writes its pid into the file so a second
    process can say who holds it. ``flock`` locks die with their process, so a
    crashed holder never leaves a stale lock behind.

    Args:
        path: the lock file (created with mode 0600, with its parent, if absent).
        what: what the holder does, for messages (e.g. "sync").
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: Optional[int] = None

    def __enter__(self) -> ExclusiveLock:
        """Take the lock.

        Returns:
            this lock.

        Raises:
            LockBusyError: another process (or another open of the file) holds it.
            InstallError: the lock file cannot be created or opened.
            RuntimeError: this object already holds the lock.
        """
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise LockBusyError(self._busy_message(holder)) from None
        except OSError as exc:
            os.close(fd)
            raise InstallError(f"cannot lock {self.path}: {os_reason(exc)}") from exc
        _write_pid(fd)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Release the lock (clearing the pid first) and close the file."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor releases the flock

    def _open(self) -> int:
        """Open (creating if needed) the lock file; raise InstallError on failure."""
        try:
            self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise InstallError(f"cannot open lock file {self.path}: {os_reason(exc)}") from exc

    def _busy_message(self, holder: Optional[int]) -> str:
        """Say who holds the lock, for LockBusyError."""
        who = f"pid {holder}" if holder is not None else "another process"
        return f"another {self.what} is running (lock {self.path} held by {who})"


def _write_pid(fd: int) -> None:
    """Replace the lock file's content with our pid; best effort (it is only a hint)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _read_pid(fd: int) -> Optional[int]:
    """Return the pid written in the lock file, or None if absent or unreadable."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
