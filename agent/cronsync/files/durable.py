"""Making a freshly written tree durable with one ``syncfs(2)`` instead of an fsync per file.

A release's exported tree holds one file per job (10,000 and more): an fsync of each was
about a tenth of a sync's CPU, each one a journal commit of its own. ``syncfs`` of the
tree's filesystem writes back every dirty file and directory of that filesystem and
commits its journal once, which covers the same files and directory entries.

It is as safe as :func:`cronsync.files.atomic.fsync_tree` because of how errors are
reported: since Linux 5.8 ``syncfs`` returns the filesystem's writeback errors that
happened after the file descriptor it is called on was opened (``errseq`` on the
superblock). :class:`TreeFlush` opens the tree's own directory while it is still empty,
before anything is written below it, so every error in writing the tree's files is
reported to its :meth:`~TreeFlush.flush` (an error in another file of the filesystem is
reported too: the install then fails, and the last good release stays). Before 5.8
``syncfs`` returned 0 whatever happened, off Linux there is none: there every file is
fsynced as before. The files cron and the shim read (``jobs.json``, the crontab copy,
the cron file, ``current``) keep their own temp, fsync, rename.

Costs to know: ``syncfs`` also writes back other processes' dirty data on the same
filesystem (its wall time grows with what they wrote), and the writeback itself runs
in the kernel's flusher threads rather than in this process.
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path
from typing import Callable, Optional

from cronsync.core.errors import InstallError, os_reason
from cronsync.files.atomic import fsync_tree

SYNCFS_REPORTS_ERRORS = (5, 8)
"""The first Linux release whose ``syncfs`` returns writeback errors."""


def reports_writeback_errors(system: str, release: str) -> bool:
    """Whether ``syncfs`` on this kernel reports writeback errors.

    Args:
        system: ``os.uname().sysname``.
        release: ``os.uname().release`` (``"6.1.0-18-amd64"``).

    Returns:
        True on Linux 5.8 and later; False otherwise, also for a release string that
        does not start with ``MAJOR.MINOR``.
    """
    found = re.match(r"(\d+)\.(\d+)", release)
    if system != "Linux" or found is None:
        return False
    return (int(found.group(1)), int(found.group(2))) >= SYNCFS_REPORTS_ERRORS


def _load_syncfs() -> Optional[Callable[[int], int]]:
    """The C library's ``syncfs`` when this kernel's reports errors, else None."""
    uname = os.uname()
    if not reports_writeback_errors(uname.sysname, uname.release):
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


class TreeFlush:
    """Makes everything written below a new directory durable, at once.

    Open it on the directory while it is empty, write the tree, then call
    :meth:`flush` before the tree is renamed into place; :meth:`close` (or the
    ``with`` block) releases the directory.
    """

    def __init__(self, root: Path) -> None:
        """Open ``root`` (an existing, empty directory).

        Raises:
            InstallError: it cannot be opened.
        """
        self.root = root
        self._syncfs = _load_syncfs()
        try:
            self._fd: Optional[int] = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise InstallError(f"cannot open directory {root}: {os_reason(exc)}") from exc

    @property
    def one_call(self) -> bool:
        """True when :meth:`flush` is one ``syncfs``, False when it fsyncs every file."""
        return self._syncfs is not None

    def flush(self) -> None:
        """Make every file and directory written below ``root`` since it was opened
        durable (one ``syncfs``, or an fsync of each where that is not safe).

        Raises:
            InstallError: a writeback error, or the tree cannot be flushed.
        """
        if self._fd is None:
            raise InstallError(f"cannot flush {self.root}: already closed")
        if self._syncfs is None:
            fsync_tree(self.root)
            return
        if self._syncfs(self._fd) != 0:
            error = ctypes.get_errno()
            raise InstallError(f"cannot write {self.root} to disk: {os.strerror(error)}")

    def close(self) -> None:
        """Release the directory (again: nothing)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TreeFlush:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
