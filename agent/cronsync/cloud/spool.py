"""The spool of CloudWatch Logs deliveries: where the pending files are and how they
are read and written (what one holds is :mod:`cronsync.cloud.pending`'s; reading the
logs they point to is :mod:`cronsync.cloud.logreader`'s).

A run's local log is the spool itself; what is left to deliver is one small JSON file
per run log, ``<runs_dir>/<job>/pending/<run_id>.json`` (mode 0600, written
atomically).

Whoever delivers a run log holds an exclusive ``flock`` on its own read-only
descriptor of the log, so the shim's live forwarder and ``cronsync flush`` never
deliver the same log at once; every rewrite of a pending file happens under that lock.

Root delivers files that job users control (``runs/<job>`` belongs to the job's user),
so a delivery goes through a :class:`PendingDir`: the real pending directory held
open, every file in it read, written, renamed and removed relative to that descriptor,
never through a symbolic link; and the log is opened by
:func:`cronsync.cloud.logreader.open_log` following no symbolic link that root (or the
delivering user) does not own.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path
from typing import Optional

from cronsync.cloud.pending import Pending
from cronsync.cloud.spoolstart import PENDING_DIR
from cronsync.core.errors import InstallError
from cronsync.files.atomic import atomic_write

_MAX_PENDING_BYTES = 64 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def pending_path(runs_dir: Path, job: str, run_id: str) -> Path:
    """Return the pending file of run ``run_id`` of ``job``.

    Raises:
        ValueError: ``job`` or ``run_id`` is not a plain file name.
    """
    for name in (job, run_id):
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise ValueError(f"not a valid job or run name: {name!r}")
    return runs_dir / job / PENDING_DIR / f"{run_id}.json"


def save_pending(path: Path, pending: Pending, *, owner: Optional[tuple[int, int]] = None) -> None:
    """Write ``pending`` to ``path`` atomically, mode 0600 (its directory made, 0700).

    For the file's own user (the shim setting up its run); a delivery rewrites pending
    files through :meth:`PendingDir.save` instead, which never follows a symlink.

    Args:
        path: see :func:`pending_path`.
        pending: what to write.
        owner: ``(uid, gid)`` for the file (root rewriting a job user's file), or None.

    Raises:
        InstallError: the file or its directory could not be written.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    data = json.dumps(pending.to_json(), sort_keys=True).encode() + b"\n"
    atomic_write(path, data, mode=0o600, owner=owner)


def load_pending(path: Path) -> Optional[Pending]:
    """Return the pending delivery in ``path``.

    Returns:
        None when the file is missing, not a regular file, unreadable, too large or not
        a pending file of this format (a foreign file is never trusted).
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    loaded = _read_pending(fd)
    return None if loaded is None else loaded[0]


def _read_pending(fd: int) -> Optional[tuple[Pending, os.stat_result]]:
    """Read the pending file open on ``fd`` and close it; None if it is not one."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_PENDING_BYTES:
            return None
        raw = os.read(fd, _MAX_PENDING_BYTES + 1)
        data = json.loads(raw)
        return (Pending.from_json(data), info) if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


class UnsafeEntry(PermissionError):
    """A directory entry cronsync refuses to go through (a symbolic link, a swap)."""


def same_file(one: os.stat_result, other: os.stat_result) -> bool:
    """Whether two statuses are of the same file."""
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def open_subdir(parent_fd: int, name: str) -> int:
    """Open the directory ``name`` of ``parent_fd`` itself, never through a symlink.

    Returns:
        A read-only descriptor of the directory (close it).

    Raises:
        FileNotFoundError: there is no such entry.
        UnsafeEntry: the entry is a symbolic link, or was replaced while being opened.
        NotADirectoryError: the entry is something else than a directory.
    """
    info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeEntry(f"{name} is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    if not same_file(os.fstat(fd), info):
        os.close(fd)
        raise UnsafeEntry(f"{name} was replaced while being opened")
    return fd


class PendingDir:
    """One pending directory held open: all access to its files goes through it.

    A job's user owns ``runs/<job>`` and may swap ``pending`` for a symbolic link or
    another directory at any moment. Reading, writing (a temporary name in the same
    directory, fsync, rename), renaming and removing relative to the descriptor keeps
    every change inside the real directory opened; before each change the descriptor
    is checked to still be the entry ``pending`` of its parent, so a swap stops the
    delivery instead of being written through.

    Args:
        parent_fd: the parent directory's descriptor (owned by this object from now).
        name: the directory's name in the parent.
        fd: the directory's descriptor (owned too).
        label: the directory's path, for messages.

    Attributes:
        owner_uid: the owner of the directory.
    """

    def __init__(self, parent_fd: int, name: str, fd: int, label: str) -> None:
        self.parent_fd = parent_fd
        self.name = name
        self.fd = fd
        self.label = label
        self.owner_uid = os.fstat(fd).st_uid

    @classmethod
    def open(cls, base: Path, *names: str) -> PendingDir:
        """Open ``base`` (the caller's own path, followed), then each of ``names``
        below it as a real directory (see :func:`open_subdir`), the last one held.

        Raises:
            OSError: as :func:`open_subdir` (FileNotFoundError when one is missing).
        """
        if not names:
            raise ValueError("no pending directory named")
        parent = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in names[:-1]:
                child = open_subdir(parent, name)
                os.close(parent)
                parent = child
            fd = open_subdir(parent, names[-1])
        except BaseException:
            os.close(parent)
            raise
        try:
            return cls(parent, names[-1], fd, str(base.joinpath(*names)))
        except BaseException:
            os.close(fd)
            os.close(parent)
            raise

    @classmethod
    def containing(cls, pending_file: Path) -> PendingDir:
        """Open the directory of ``pending_file`` (a symlink there is refused)."""
        directory = pending_file.parent
        return cls.open(directory.parent, directory.name)

    def __enter__(self) -> PendingDir:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close both descriptors."""
        for fd in (self.fd, self.parent_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fd = self.parent_fd = -1

    def names(self) -> list[str]:
        """Return the names in the directory, sorted."""
        return sorted(os.listdir(self.fd))

    def exists(self, name: str) -> bool:
        """Whether there is an entry ``name`` (of any kind)."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def load(self, name: str) -> Optional[tuple[Pending, os.stat_result]]:
        """Return the pending delivery in ``name`` and that file's status.

        Returns:
            None as :func:`load_pending` does.
        """
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except OSError:
            return None
        return _read_pending(fd)

    def check(self) -> None:
        """Make sure the descriptor is still the directory entry it was opened from.

        Raises:
            InstallError: the entry is gone or is another file now (a swap).
        """
        try:
            same = same_file(
                os.stat(self.name, dir_fd=self.parent_fd, follow_symlinks=False),
                os.fstat(self.fd),
            )
        except OSError:
            same = False
        if not same:
            raise InstallError(f"{self.label} was replaced meanwhile; not writing there")

    def save(self, name: str, pending: Pending, owner: Optional[tuple[int, int]]) -> None:
        """Write ``pending`` to ``name`` atomically, mode 0600.

        Args:
            owner: ``(uid, gid)`` for the file (root rewriting a job user's file), or None.

        Raises:
            InstallError: it could not be written, or the directory was swapped.
        """
        data = json.dumps(pending.to_json(), sort_keys=True).encode() + b"\n"
        self.check()
        tmp = f".{name}.{os.urandom(8).hex()}.tmp"
        try:
            fd = os.open(tmp, _WRITE_FLAGS, 0o600, dir_fd=self.fd)
            try:
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            self.check()
            os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            if isinstance(exc, OSError):
                reason = exc.strerror or exc
                raise InstallError(f"cannot write {self.label}/{name}: {reason}") from exc
            raise
        try:
            os.fsync(self.fd)
        except OSError as exc:  # some filesystems cannot fsync a directory: fine
            if exc.errno != errno.EINVAL:
                raise InstallError(f"cannot fsync {self.label}: {exc.strerror}") from exc

    def unlink(self, name: str) -> None:
        """Remove ``name``.

        Raises:
            FileNotFoundError: it is gone already.
            InstallError: the directory was swapped.
            OSError: it could not be removed.
        """
        self.check()
        os.unlink(name, dir_fd=self.fd)
