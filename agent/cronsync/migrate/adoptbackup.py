"""``cronsync adopt``'s backups: root-only copies of the crontabs it rewrites, and their purge.

The backups hold the original lines, secrets and all, so they are private:
``ROOT/var/lib/cronsync/adopt-backups/STAMP/<host path>``, every file mode 0600 owned
by the user adopt runs as (root), every folder mode 0700, each created so (never wider
for a moment) and each file written atomically (:func:`~cronsync.files.atomic.atomic_write`).

An existing ``adopt-backups`` folder is checked first: one owned by adopt's user but
wider than 0700 (made by hand, or by an older cronsync) is tightened to 0700 — that
also hides whatever older backups it holds; a symlink, a non-folder or one owned by
another user is refused, since someone else may read what goes in.

``cronsync adopt --purge-backups`` removes the ``STAMP`` folders and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

from cronsync.core.errors import CronsyncError, InstallError, os_reason
from cronsync.core.textshow import visible
from cronsync.files.atomic import atomic_write, fsync_dir
from cronsync.files.tree import remove_tree

BACKUPS = "var/lib/cronsync/adopt-backups"
PRIVATE = 0o700
_STAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z(?:-[0-9]+)?")


class BackupFolderRefused(CronsyncError):
    """``adopt-backups`` is not a private folder of adopt's user: nothing goes in or out."""


def backup_base(root: Path) -> Path:
    """Return the folder that holds adopt's backups on the host below ``root``."""
    return root / BACKUPS


def backup_folder_problem(root: Path) -> tuple[Optional[str], Optional[str]]:
    """Check the backup folder before adopt writes into it (it may not exist yet).

    Returns:
        (problem, note): ``problem`` ("is a symlink", "is owned by uid 1001, not by
        uid 0", ...) when no backup may go in; ``note`` when it is adopt's but wider
        than 0700 (:func:`make_backup_folder` tightens it). Both None when it is fine
        or missing.
    """
    base = backup_base(root)
    try:
        info = base.lstat()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return f"cannot be read ({os_reason(exc)})", None
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink", None
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder", None
    if info.st_uid != os.geteuid():
        return f"is owned by uid {info.st_uid}, not by uid {os.geteuid()}", None
    mode = stat.S_IMODE(info.st_mode)
    if mode == PRIVATE:
        return None, None
    return None, f"the backup folder {base} is mode {mode:04o}: adopt makes it 0700 first"


def _mkdir_private(path: Path, dir_fd: Optional[int] = None) -> None:
    """Create the folder ``path`` mode 0700 (from the start: the umask only narrows it).

    Raises:
        FileExistsError: it exists. OSError: it cannot be made.
    """
    os.mkdir(path, PRIVATE, dir_fd=dir_fd)
    os.chmod(path, PRIVATE, dir_fd=dir_fd)  # an umask such as 0277 narrows it too much


def make_backup_folder(root: Path, now: datetime) -> Path:
    """Create a fresh backup folder ``adopt-backups/STAMP`` (0700, parents made).

    Args:
        root: the host root. now: the time (UTC) the folder is named after.
    Returns:
        the new, empty folder (``STAMP-2``, ``-3``... when one of that second exists).
    Raises:
        InstallError: the folder could not be made or opened (a symlink is never
            followed); nothing is written then.
        BackupFolderRefused: ``adopt-backups`` belongs to another user.
    """
    base = backup_base(root)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            _mkdir_private(base)
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise InstallError(f"cannot make the backup folder {base}: {os_reason(exc)}") from exc
    try:
        name = _make_stamp_folder(base, fd, now.strftime("%Y%m%dT%H%M%SZ"))
    finally:
        os.close(fd)
    fsync_dir(base)
    return base / name


def _make_stamp_folder(base: Path, fd: int, stamp: str) -> str:
    """Tighten the open ``base`` to 0700 if it is adopt's, then make a new folder in it."""
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            owner = f"is owned by uid {info.st_uid}, not by uid {os.geteuid()}"
            raise BackupFolderRefused(f"the backup folder {base} {owner}: nothing written")
        if stat.S_IMODE(info.st_mode) != PRIVATE:
            os.fchmod(fd, PRIVATE)
        number = 1
        while True:
            name = stamp if number == 1 else f"{stamp}-{number}"
            try:
                _mkdir_private(Path(name), dir_fd=fd)
                return name
            except FileExistsError:
                number += 1
    except OSError as exc:
        raise InstallError(f"cannot make a backup folder in {base}: {os_reason(exc)}") from exc


def write_backup(folder: Path, source: str, data: bytes, original: os.stat_result) -> Path:
    """Write one crontab's backup into ``folder`` (mode 0600, adopt's user, atomically)
    with the original's access and modification times.

    Args:
        folder: from :func:`make_backup_folder`. source: the crontab's host path.
        data: its content before adopt. original: its stat before adopt.
    Returns:
        the backup's path (``folder/<host path>``).
    Raises:
        InstallError: it could not be written, or ``source`` is no plain absolute path
            (a ``..``, ``.`` or empty part): its backup would leave ``folder``.
    """
    parts = source.split("/")
    if parts[0] != "" or not set(parts[1:]).isdisjoint({"", ".", ".."}):
        raise InstallError(
            f"refusing to write a backup of {visible(source)} outside the backup folder "
            f"{folder}: not a plain absolute path"
        )
    backup = folder / source.lstrip("/")
    missing = []
    for parent in backup.relative_to(folder).parents:
        if parent != Path(".") and not (folder / parent).is_dir():
            missing.append(folder / parent)
    try:
        for path in reversed(missing):
            _mkdir_private(path)
        atomic_write(backup, data, mode=0o600)
        os.utime(backup, ns=(original.st_atime_ns, original.st_mtime_ns))
    except OSError as exc:
        raise InstallError(f"cannot write the backup {backup}: {os_reason(exc)}") from exc
    return backup


def restore_command(backup: Path, original: Path) -> str:
    """Return the shell command that puts ``backup`` back over ``original`` atomically,
    with the owner and mode ``original`` has now (adopt keeps them): the copy goes to
    a dot-named file beside it (cron ignores those) and is renamed over it.

    Raises:
        InstallError: ``original`` cannot be read (its owner and mode are unknown).
    """
    try:
        info = original.stat()
    except OSError as exc:
        raise InstallError(f"cannot read {original}: {os_reason(exc)}") from exc
    temp = original.parent / f".{original.name}.cronsync-restore"
    mode, uid, gid = f"{stat.S_IMODE(info.st_mode):04o}", str(info.st_uid), str(info.st_gid)
    install = ["install", "-m", mode, "-o", uid, "-g", gid, str(backup), str(temp)]
    return f"{shlex.join(install)} && {shlex.join(['mv', '-f', str(temp), str(original)])}"


@dataclass
class Purge:
    """What ``adopt --purge-backups`` did.

    Attributes:
        base: the backup folder. removed: each backup removed, with its file count.
        left: what is in ``base`` but is no adopt backup (never removed), with why.
    """

    base: Path
    removed: list[tuple[Path, int]] = field(default_factory=list)
    left: list[tuple[Path, str]] = field(default_factory=list)


def _files_below(folder: str) -> int:
    return sum(len(files) for _dirs, _subdirs, files in os.walk(folder))


def purge_backups(root: Path) -> Purge:
    """Remove every backup adopt made on the host below ``root``, and nothing else.

    A backup is a folder of ``adopt-backups`` named as adopt names them (``STAMP`` or
    ``STAMP-N``) and owned by adopt's user; anything else there is left alone.
    Returns:
        what was removed and what was left (``base`` missing: nothing either).
    Raises:
        BackupFolderRefused: ``adopt-backups`` is not adopt's folder (nothing removed).
        InstallError: a backup could not be removed.
    """
    base = backup_base(root)
    problem, _note = backup_folder_problem(root)
    if problem is not None:
        raise BackupFolderRefused(f"the backup folder {base} {problem}: nothing removed")
    done = Purge(base)
    if not base.exists():
        return done
    with os.scandir(base) as entries:
        found = sorted(entries, key=lambda entry: entry.name)
    for entry in found:
        info = entry.stat(follow_symlinks=False)
        path = base / entry.name
        ours = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
        if ours and _STAMP.fullmatch(entry.name):
            count = _files_below(entry.path)
            remove_tree(path)
            done.removed.append((path, count))
        else:
            done.left.append((path, "not an adopt backup"))
    fsync_dir(base)
    return done
