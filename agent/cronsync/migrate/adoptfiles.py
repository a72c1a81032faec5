"""The crontabs ``cronsync adopt`` may change, and how it reads and rewrites them.

The crontab an origin names comes from a job file, and whoever can push writes those:
so adopt touches only a file cron reads as a crontab, named exactly as cron names it
(:func:`source_problem`): ``/etc/crontab``, ``/etc/cron.d/NAME`` (NAME as cron wants
it, ``[A-Za-z0-9_-]+``) or ``/var/spool/cron/crontabs/USER`` — an absolute path with
no ``..``, ``.`` or empty part, which is where it is below the host root.

It reaches the file from the root through folder descriptors, each folder opened with
``O_NOFOLLOW`` and the file too (:func:`read_crontab`, :func:`replace_crontab`): a
symlink anywhere below the root (a linked ``/etc/cron.d``, a crontab that is a link)
is refused, also one put there between the plan and the write. The root itself is the
operator's (``--root`` or agent.toml) and is followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from cronsync.core.errors import CronsyncError, InstallError, os_reason
from cronsync.core.textshow import visible
from cronsync.crontab.hostfiles import CRON_D, SPOOL, SYSTEM_CRONTAB
from cronsync.files.atomic import atomic_write

WHICH = "adopt changes only /etc/crontab, /etc/cron.d/NAME and /var/spool/cron/crontabs/USER"
"""What :func:`source_problem` says of any other path."""
_FOLDERS = {
    "/" + CRON_D: re.compile(r"[A-Za-z0-9_-]+"),  # cron skips other names (FACTS.md)
    # a user's name: no '/', no blank or control, not dot-led (crontab(1)'s temp files)
    "/" + SPOOL: re.compile(r"[^./\x00-\x20\x7f][^/\x00-\x20\x7f]*"),
}
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO put in the crontab's place must not hang adopt at open
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class CrontabRefused(CronsyncError):
    """A crontab adopt may not read or change (a symlink on the way, not a file...)."""


def source_problem(source: str) -> Optional[str]:
    """Say why adopt may not touch the crontab ``source`` (a host path from a job file).

    Returns:
        None for ``/etc/crontab``, ``/etc/cron.d/NAME`` and
        ``/var/spool/cron/crontabs/USER`` spelled exactly so, else the reason.
    """
    if source == "/" + SYSTEM_CRONTAB:
        return None
    folder, _slash, name = source.rpartition("/")
    pattern = _FOLDERS.get(folder)
    if pattern is not None and pattern.fullmatch(name):
        return None
    return f"is no crontab cron reads: {WHICH}"


@contextlib.contextmanager
def _folder_of(root: Path, source: str) -> Iterator[tuple[int, str]]:
    """Open the folder of ``source`` below ``root`` one folder at a time, following no
    symlink, and yield (its descriptor, the file's name); closed on exit.

    Raises:
        CrontabRefused: ``source`` is no crontab adopt changes, or a folder on the way
            is a symlink. OSError: a folder cannot be opened.
    """
    problem = source_problem(source)
    if problem is not None:
        raise CrontabRefused(f"{visible(source)} {problem}")
    *folders, name = source.split("/")[1:]
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for number, folder in enumerate(folders, 1):
            below = _open_below(fd, folder, "/" + "/".join(folders[:number]), _FOLDER)
            os.close(fd)
            fd = below
        yield fd, name
    finally:
        os.close(fd)


def _open_below(fd: int, name: str, shown: str, flags: int) -> int:
    """Open ``name`` in the folder ``fd`` with ``flags`` (``O_NOFOLLOW`` among them).

    Raises:
        CrontabRefused: it is a symlink. OSError: it cannot be opened.
    """
    try:
        return os.open(name, flags, dir_fd=fd)
    except OSError as exc:
        is_link = exc.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
            os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        )
        if is_link:
            raise CrontabRefused(
                f"{shown} is a symlink: adopt follows none (comment the lines out by hand)"
            ) from exc
        raise


def _read_in(fd: int, name: str, source: str) -> tuple[bytes, os.stat_result]:
    """Return the bytes and stat of the regular file ``name`` in the folder ``fd``.

    Raises:
        CrontabRefused: it is a symlink or no regular file. OSError: it cannot be read.
    """
    with open(_open_below(fd, name, source, _FILE), "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CrontabRefused(f"{source} is not a regular file")
        return handle.read(), info


def read_crontab(root: Path, source: str) -> tuple[bytes, os.stat_result]:
    """Read the crontab ``source`` (a host path) below ``root``, following no symlink.

    Returns:
        its bytes and its stat (owner and mode, for the backup and the rewrite).
    Raises:
        CrontabRefused: it is no crontab adopt changes, or a symlink is on the way.
        OSError: it cannot be read.
    """
    with _folder_of(root, source) as (fd, name):
        return _read_in(fd, name, visible(source))


def replace_crontab(root: Path, source: str, data: bytes, owner: bool) -> None:
    """Replace the crontab ``source`` below ``root`` with ``data``, atomically, keeping
    its mode (and its owner when ``owner``), in the folder reached without a symlink.

    The write goes through ``/proc/self/fd`` of the open folder, so a symlink put on
    the way after the folder was opened is not followed either.

    Raises:
        CrontabRefused: as :func:`read_crontab`. InstallError: it cannot be written.
    """
    shown = f"{root}{visible(source)}"
    try:
        with _folder_of(root, source) as (fd, name):
            _data, info = _read_in(fd, name, visible(source))
            ids = (info.st_uid, info.st_gid) if owner else None
            target = f"/proc/self/fd/{fd}/{name}"
            try:
                atomic_write(target, data, mode=stat.S_IMODE(info.st_mode), owner=ids)
            except InstallError as exc:
                cause = exc.__cause__
                why = os_reason(cause) if isinstance(cause, OSError) else exc.message
                raise InstallError(f"cannot write {shown}: {why}") from exc
    except OSError as exc:
        raise InstallError(f"cannot write {shown}: {os_reason(exc)}") from exc
