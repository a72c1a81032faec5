"""Atomic writes and symlinks, and fsync of files, directories and trees.

This is the only module that writes files atomically. Every write a reader may see
half-done (the cron file, the ``current`` link, state files, run records) goes through
:func:`atomic_write` or :func:`atomic_symlink`: a dot-prefixed temp file in the same
directory (Debian cron ignores names with a dot), created with its final mode, fsynced,
renamed over the target, and the directory fsynced.

Every ``OSError`` is translated into :class:`~cronsync.core.errors.InstallError` with a
one-line message naming the path.
"""

from __future__ import annotations

import errno
import os
import stat

from cronsync.core.errors import InstallError, os_reason
from cronsync.core.suppress import suppress
from cronsync.files.paths import path_str

# Annotations only: the shim writes its run records through this module, and importing
# pathlib and typing would cost its every start milliseconds (not `typing.TYPE_CHECKING`
# for the same reason).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Optional

    from cronsync.files.paths import StrPath

# Longest part of the target's name kept in a temp name, so that
# ".{name}.tmp-{pid}-{hex}" stays under NAME_MAX (255) for any valid name.
_TEMP_NAME_KEEP = 200


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
    with suppress(OSError):
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
        raise InstallError(f"cannot write {path}: {os_reason(exc)}") from exc
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
        raise InstallError(f"cannot open directory {path}: {os_reason(exc)}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems cannot fsync a directory; their renames are durable anyway.
        if exc.errno != errno.EINVAL:
            raise InstallError(f"cannot fsync directory {path}: {os_reason(exc)}") from exc
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
        raise InstallError(f"cannot point {link} at {target}: {os_reason(exc)}") from exc
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
        raise InstallError(f"cannot fsync {exc.filename or root}: {os_reason(exc)}") from exc


def _raise(exc: OSError) -> None:
    """``os.walk`` error hook: make walk errors fatal instead of silently skipped."""
    raise exc
