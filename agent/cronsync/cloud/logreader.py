"""Reading a run log for delivery: opened safely for root, locked, read piece by piece.

Root delivers logs named by pending files that job users write, so :func:`open_log`
follows no symbolic link that root (or the delivering user) does not own and opens
only a regular file of the pending file's owner. Whoever delivers a log holds an
exclusive ``flock`` on its own descriptor of it (:func:`try_lock`), so the shim's live
forwarder and ``cronsync flush`` never deliver the same log at once.
:func:`read_pieces` reads from a saved position a chunk at a time (memory stays
bounded whatever the log's size).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cronsync.cloud.batch import Piece, Position, scan_pieces
from cronsync.cloud.spool import UnsafeEntry, same_file

# Reads of the log: large enough for a few thousand lines per system call, small
# enough to keep memory bounded (one chunk is alive at a time).
CHUNK_SIZE = 4 * 1024 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
# Walking a log's path needs only search permission on its directories (Linux: O_PATH).
_WALK_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40  # symbolic links followed in one log path, as the kernel allows


def open_log(path: Path, owner_uid: int) -> int:
    """Open a run log for reading, refusing one that ``owner_uid`` does not own.

    A pending file is written by the job's user; checking that the log belongs to the
    same user keeps a forged pending file from making root ship someone else's file.
    No symbolic link is followed unless root (or we) own it: neither the log itself
    nor a directory on its way (see :func:`_open_parent`).

    Returns:
        A read-only descriptor (close it; closing releases the lock).

    Raises:
        FileNotFoundError: the log (or a directory on its way) is gone.
        OSError: it cannot be opened, is a symlink, not a regular file, not owned
            by ``owner_uid``, or its path goes through another user's symlink.
    """
    parent, name = _open_parent(str(path))
    try:
        # before opening: never open a device or fifo
        _check_log(os.stat(name, dir_fd=parent, follow_symlinks=False), path, owner_uid)
        fd = os.open(name, _READ_FLAGS, dir_fd=parent)
    finally:
        os.close(parent)
    try:
        _check_log(os.fstat(fd), path, owner_uid)  # still the file checked
    except OSError:
        os.close(fd)
        raise
    return fd


def _open_parent(path: str) -> tuple[int, str]:
    """Open the directory holding ``path``, walking it one directory at a time.

    A symbolic link on the way is followed only when root or we own it (one a job
    user made could lead root anywhere); each directory is opened without following
    and checked to be the entry just looked at.

    Returns:
        The directory's descriptor (close it) and the last component of ``path``.

    Raises:
        FileNotFoundError, NotADirectoryError: a component is missing or not a
            directory.
        UnsafeEntry: a symbolic link of another user, too many links, or a swap.
    """
    head, _slash, last = path.rpartition("/")
    if last in ("", ".", ".."):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    trusted = (0, os.geteuid())
    todo = head.split("/")[::-1]  # a stack: the next component last
    fd = os.open("/" if path.startswith("/") else ".", _WALK_FLAGS)
    links = 0
    try:
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if info.st_uid not in trusted or links > _MAX_LINKS:
                    raise UnsafeEntry(f"{path}: not following the symbolic link {part!r}")
                target = os.readlink(part, dir_fd=fd)
                if target.startswith("/"):
                    root = os.open("/", _WALK_FLAGS)
                    os.close(fd)
                    fd = root
                todo.extend(target.split("/")[::-1])
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            child = os.open(part, _WALK_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            if not same_file(os.fstat(fd), info):
                raise UnsafeEntry(f"{path}: {part!r} was replaced while being opened")
    except BaseException:
        os.close(fd)
        raise
    return fd, last


def _check_log(info: os.stat_result, path: Path, owner_uid: int) -> None:
    """Raise PermissionError unless ``info`` is a regular file owned by ``owner_uid``."""
    if not stat.S_ISREG(info.st_mode) or info.st_uid != owner_uid:
        raise PermissionError(f"{path} is not a regular file of uid {owner_uid}")


def try_lock(fd: int) -> bool:
    """Take the delivery lock on an open log without waiting.

    Returns:
        True when taken, False when another delivery holds it.

    Raises:
        OSError: the lock could not be taken for another reason.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_pieces(fd: int, start: Position, *, final: bool) -> Iterator[Piece]:
    """Yield the log's pieces of output from ``start``, reading a chunk at a time.

    Args:
        fd: the open log.
        start: where to resume.
        final: nothing more will be appended, so a last line without its newline is
            yielded too; otherwise only complete lines (and whole pieces of very long
            ones) are, and the rest waits for a later call.

    Raises:
        OSError: the log could not be read.
    """
    position = start
    while True:
        data = os.pread(fd, CHUNK_SIZE, position.offset)
        short = len(data) < CHUNK_SIZE
        progressed = False
        for piece in scan_pieces(data, position, complete=final and short):
            progressed = True
            yield piece
            position = piece.after
        del data
        if short or not progressed:
            return


def log_mtime(fd: int) -> float:
    """Return the last modification time of the open log (seconds since the epoch)."""
    return os.fstat(fd).st_mtime
