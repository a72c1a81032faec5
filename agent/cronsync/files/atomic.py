"""Filesystem primitives: atomic writes and symlinks, fsync, tree removal, locks.

This is the only module that writes files atomically or takes locks. Every write a
reader may see half-done (the cron file, the ``current`` link, state files) goes
through :func:`atomic_write` or :func:`atomic_symlink`: a dot-prefixed temp file in
the same directory (Debian cron ignores names with a dot), created with its final
mode, fsynced, renamed over the target, and the directory fsynced.

Every ``OSError`` is translated into :class:`~cronsync.core.errors.InstallError` (or
:class:`~cronsync.core.errors.LockBusyError` for a held lock) with a one-line message
naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import sys

from cronsync.core.errors import InstallError, LockBusyError

# Annotations only: the shim writes its run records through this module, and importing
# pathlib and typing would cost its every start milliseconds (not `typing.TYPE_CHECKING`
# for the same reason).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType
    from typing import Any, Callable, Optional, Union

    StrPath = Union[str, os.PathLike[str]]

# Longest part of the target's name kept in a temp name, so that
# ".{name}.tmp-{pid}-{hex}" stays under NAME_MAX (255) for any valid name.
_TEMP_NAME_KEEP = 200


def _reason(exc: OSError) -> str:
    """Return the OS's short reason for ``exc`` (e.g. "Permission denied")."""
    return exc.strerror or str(exc)


def path_str(*parts: StrPath) -> str:
    """Return ``str(PurePosixPath(*parts))`` without importing pathlib.

    The same string: the parts joined (an absolute part starts over), empty and ``.``
    components dropped, ``..`` kept, a leading ``//`` kept as POSIX allows, and ``.``
    for nothing at all. The shim builds its paths with this and ``os`` only.
    """
    joined = os.path.join(*(os.fspath(part) for part in parts)) if parts else ""
    if joined.startswith("//") and not joined.startswith("///"):
        lead = "//"
    elif joined.startswith("/"):
        lead = "/"
    else:
        lead = ""
    return lead + "/".join(part for part in joined.split("/") if part and part != ".") or "."


def _parent(path: StrPath) -> str:
    """Return ``str(Path(path).parent)``."""
    return os.path.dirname(path_str(path)) or "."


def _temp_name(path: StrPath, kind: str = "tmp") -> str:
    """:func:`temp_sibling` as a str (no pathlib on the shim's path)."""
    token = os.urandom(4).hex()  # not `secrets`: its import costs the shim ms
    parent, name = os.path.split(path_str(path))
    return path_str(parent, f".{name[:_TEMP_NAME_KEEP]}.{kind}-{os.getpid()}-{token}")


def temp_sibling(path: StrPath, kind: str = "tmp") -> Path:
    """Return a fresh, unused-looking dot-prefixed name next to ``path``.

    Args:
        path: the final path the temp object will be renamed to.
        kind: a word saying what the temp object is for ("tmp", "clone", ...).

    Returns:
        ``path.parent / ".{name}.{kind}-{pid}-{random}"``; nothing is created.
    """
    from pathlib import Path

    return Path(_temp_name(path, kind))


def _discard(path: StrPath) -> None:
    """Remove the file or link ``path`` if it exists; ignore every error."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def _write_new_file(
    path: StrPath, data: bytes, mode: int, owner: Optional[tuple[int, int]], durable: bool = True
) -> None:
    """Create ``path`` (which must not exist) with ``mode``/``owner``, write ``data``, and
    (when ``durable``) fsync it.

    Raises:
        OSError: from any step.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    with open(fd, "wb", closefd=True) as handle:
        if owner is not None:
            os.fchown(fd, owner[0], owner[1])
        # fchmod after fchown (chown may clear mode bits) and to defeat the umask.
        os.fchmod(fd, mode)
        handle.write(data)
        handle.flush()
        if durable:
            os.fsync(fd)


def atomic_write(
    path: StrPath,
    data: bytes,
    *,
    mode: int = 0o644,
    owner: Optional[tuple[int, int]] = None,
    durable: bool = True,
) -> None:
    """Replace ``path`` with a file holding exactly ``data``, atomically.

    Readers see either the old file or the complete new one, never a partial one.

    Args:
        path: the file to write; its directory must exist.
        data: the complete new content.
        mode: the file's permission bits, applied regardless of the umask.
        owner: ``(uid, gid)`` to give the file, or None to keep the creator's.
        durable: fsync the file and its directory, so it survives a power cut. Without
            it the write is still atomic for readers (the shim's run records: a record
            lost in a crash costs less than 6 fsyncs on every run).

    Raises:
        InstallError: the file could not be written (the temp file is removed).
    """
    tmp = _temp_name(path)
    try:
        _write_new_file(tmp, data, mode, owner, durable)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise InstallError(f"cannot write {path}: {_reason(exc)}") from exc
    except BaseException:
        _discard(tmp)
        raise
    if durable:
        fsync_dir(_parent(path))


def fsync_dir(path: StrPath) -> None:
    """Flush the directory ``path`` itself (its entries: creations, renames) to disk.

    Raises:
        InstallError: the directory cannot be opened or flushed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InstallError(f"cannot open directory {path}: {_reason(exc)}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems cannot fsync a directory; their renames are durable anyway.
        if exc.errno != errno.EINVAL:
            raise InstallError(f"cannot fsync directory {path}: {_reason(exc)}") from exc
    finally:
        os.close(fd)


def atomic_symlink(link: StrPath, target: str) -> None:
    """Make ``link`` a symlink to ``target``, replacing any link there atomically.

    Args:
        link: where the link lives; its directory must exist. An existing file or
            link there is replaced; an existing directory is an error.
        target: the link's content, stored verbatim (relative targets stay relative).

    Raises:
        InstallError: the link could not be created or renamed into place.
    """
    tmp = _temp_name(link)
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as exc:
        _discard(tmp)
        raise InstallError(f"cannot point {link} at {target}: {_reason(exc)}") from exc
    fsync_dir(_parent(link))


def _fsync_file(path: str) -> None:
    """Fsync the regular file ``path`` without following a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: StrPath) -> None:
    """Fsync every regular file and every directory below ``root``, and ``root`` itself.

    Symlinks are not followed. Used before renaming a finished release into place,
    so the rename never publishes a tree whose content is still only in memory.

    Raises:
        InstallError: a file or directory could not be opened or flushed.
    """
    try:
        for dirpath, _dirnames, filenames in os.walk(root, topdown=False, onerror=_raise):
            for name in filenames:
                full = os.path.join(dirpath, name)
                if stat.S_ISREG(os.lstat(full).st_mode):
                    _fsync_file(full)
            fsync_dir(path_str(dirpath))
    except OSError as exc:
        raise InstallError(f"cannot fsync {exc.filename or root}: {_reason(exc)}") from exc


def _raise(exc: OSError) -> None:
    """``os.walk`` error hook: make walk errors fatal instead of silently skipped."""
    raise exc


def _add_owner_rwx(path: str) -> None:
    """Give the owner rwx on the directory ``path`` (so its entries can be removed)."""
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        os.chmod(path, stat.S_IMODE(mode) | stat.S_IRWXU)


class _UnlockAndRetry:
    """``shutil.rmtree`` error hooks: unlock read-only directories and retry.

    Only directories inside ``root`` (or ``root`` itself) are ever chmod-ed; a path
    that vanished meanwhile is fine; other errors are re-raised.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def run(self, path: str) -> None:
        """Remove ``path`` with these hooks, on every Python we support."""
        if sys.version_info >= (3, 12):
            import shutil  # only removals need it; the shim never removes trees

            shutil.rmtree(path, onexc=self.onexc)
        else:
            import shutil

            shutil.rmtree(path, onerror=self.onerror)

    def onexc(self, func: Callable[..., Any], failed: str, exc: BaseException) -> None:
        """Hook for Python >= 3.12: see the class docstring."""
        if isinstance(exc, FileNotFoundError):
            return
        removing = func in (os.unlink, os.remove, os.rmdir)
        # Removing an entry needs a writable parent; listing a directory needs it readable.
        locked = os.path.dirname(failed) if removing else failed
        if not isinstance(exc, PermissionError) or not self._inside(locked):
            raise exc
        _add_owner_rwx(locked)
        if removing:
            func(failed)
        else:
            self.run(failed)

    def onerror(self, func: Callable[..., Any], failed: str, info: Any) -> None:
        """Hook for Python < 3.12 (``exc_info`` instead of the exception)."""
        self.onexc(func, failed, info[1])

    def _inside(self, path: str) -> bool:
        """Whether ``path`` is ``root`` or below it."""
        return path == self.root or path.startswith(self.root.rstrip(os.sep) + os.sep)


def remove_tree(path: StrPath) -> None:
    """Remove ``path`` and everything below it, if it exists.

    A missing path is fine; a file or symlink is unlinked (a link's target is never
    touched); read-only files and directories are removed too.

    Raises:
        InstallError: something could not be removed.
    """
    try:
        if not os.path.lexists(path):
            return
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
            return
        _UnlockAndRetry(os.path.abspath(path)).run(os.path.abspath(path))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InstallError(f"cannot remove {path}: {_reason(exc)}") from exc


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
            raise InstallError(f"cannot lock {self.path}: {_reason(exc)}") from exc
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
            raise InstallError(f"cannot open lock file {self.path}: {_reason(exc)}") from exc

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
