"""Each installed job's run-record and log folders: made for its user, and set aside
when its user changes.

``runs/<job>`` is 0755 (records are readable by operators, writable only by the job's
user: no job can forge another's history); ``<log_dir>/<job>`` is 0700 (output stays
with the job's user and root, even where job users share a group).

When a job's ``user`` changes, what its old user left there (run records, logs,
output not yet delivered) is not handed to the new user: each folder that holds any
of it moves, as it is (owners and modes kept, nothing followed), into a root-only
history folder (:mod:`cronsync.core.runhistory`), and the new user gets a fresh one.
Neither user can read or change the other's runs; ``cronsync history``, ``logs`` and
``status`` show them to root. A folder with nothing but its lock and an empty
``pending`` folder is simply handed over, with a fresh lock file: the old user may
still hold a descriptor on the old one, through which it could write a holder line
naming any process group for the new user's runs to stop or wait for.

The lock file (``runs/<job>/lock``) is the job's user's only, 0600: anyone who can open
it can ``flock`` it and hold every ``forbid`` run back. A wider one (an older
cronsync's) is narrowed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from cronsync.core.errors import InstallError
from cronsync.core.runhistory import HISTORY_DIR, HISTORY_MODE, STAMP_FORMAT, entry_name
from cronsync.host.install import make_dir

# what a run creates in runs/<job> that the next run must be able to write: when one of
# them has another owner than its directory should, the whole tree is given again
RUN_FILES = ("lock", "pending")
LOCK_FILE = "lock"  # cronsync.run.lock's name and mode for it
LOCK_MODE = 0o600
_MAX_ATTEMPTS = 100


def owner_of(user: str) -> Optional[tuple[int, int]]:
    """Return (uid, gid) of ``user`` when we are root and the user exists, else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _owned_by(path: Path, owner: tuple[int, int]) -> bool:
    """Whether ``path`` (not followed if a symlink; missing counts as owned) is owner's."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return True
    return (status.st_uid, status.st_gid) == owner


def _give_tree(path: Path, mode: int, owner: tuple[int, int], files: tuple[str, ...]) -> None:
    """Create the directory ``path`` with ``mode`` and make sure it and everything in it
    belong to ``owner``.

    When it (or one of ``files`` in it) has another owner, every entry below it is
    given to ``owner`` first, then the directory itself (so an interrupted sync is
    finished by the next one). Only called on a folder that holds no other user's
    history (see :func:`_set_aside`). The walk never follows a symlink (``os.fwalk``,
    safe against a tree its old owner changes meanwhile) and a symlink itself is given
    with ``lchown``; modes are kept.
    """
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    os.chmod(path, mode)
    if _owned_by(path, owner) and all(_owned_by(path / name, owner) for name in files):
        return
    for _top, dirs, names, dir_fd in os.fwalk(path, follow_symlinks=False):
        for name in (*dirs, *names):
            try:
                os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:  # removed meanwhile (its old owner's run)
                continue
    os.chown(path, *owner)


def _users_lock(path: Path, uid: int) -> bool:
    """Whether ``path`` is a regular file of ``uid`` with no other hard link (not
    followed if a symlink); one wider than :data:`LOCK_MODE` is narrowed."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return False
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != uid or info.st_nlink != 1:
            return False
        if stat.S_IMODE(info.st_mode) & ~LOCK_MODE:
            os.fchmod(fd, LOCK_MODE)
        return True
    finally:
        os.close(fd)


def _fresh_lock(folder: Path, owner: tuple[int, int]) -> None:
    """Make sure the lock file in ``folder`` (a job's run folder), if there is one, is
    ``owner``'s only and was made for it (a missing one is left for the shim to make).

    Anything else there under that name (an earlier user's lock, on which it may still
    hold a descriptor; not a regular file; hard-linked) is removed and a new, empty
    file made in its place, after the folder itself is given to ``owner`` (so nobody
    else can put a file there meanwhile). An interrupted sync leaves the old file to
    the next one, which replaces it. A directory of that name is left alone: the shim
    refuses it, and an earlier user's is set aside with its folder (see
    :func:`_holds_history`).

    Raises:
        OSError: it cannot be checked, removed or made.
    """
    path = folder / LOCK_FILE
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(found.st_mode) or _users_lock(path, owner[0]):
        return
    os.chown(folder, *owner, follow_symlinks=False)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, LOCK_MODE)
    except FileExistsError:  # the job's shim made it meanwhile (the folder is its)
        return
    try:
        os.fchown(fd, *owner)
        os.fchmod(fd, LOCK_MODE)
    finally:
        os.close(fd)


def _other_owner(folder: Path, uid: int) -> Optional[int]:
    """The uid owning ``folder`` when it is a real directory of another user than
    ``uid`` (None: missing, not a directory, or ``uid``'s)."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid == uid:
        return None
    return info.st_uid


def _is_empty_dir(path: str) -> bool:
    """Whether ``path`` is a real directory with nothing in it."""
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        return False
    with os.scandir(path) as entries:
        return next(entries, None) is None


def _holds_history(folder: Path, ignored: tuple[str, ...]) -> bool:
    """Whether ``folder`` holds anything but the names in ``ignored`` (a run's lock
    file, not a directory; its ``pending`` folder when empty)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name not in ignored:
                return True
            if entry.name == LOCK_FILE:
                if entry.is_dir(follow_symlinks=False):  # no lock: something kept there
                    return True
            elif not _is_empty_dir(entry.path):
                return True
    return False


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def _set_aside(top: Path, job: str, old_uid: int, stamp: str) -> Path:
    """Move ``top/<job>`` (a folder of the user ``old_uid``) to a new entry of
    ``top/.history/<job>/``, a root-only folder.

    Returns:
        Where it went.

    Raises:
        OSError: it cannot be moved.
    """
    place = top / HISTORY_DIR / job
    make_dir(place.parent, HISTORY_MODE)
    make_dir(place, HISTORY_MODE)
    owner = _user_name(old_uid)
    for attempt in range(_MAX_ATTEMPTS):
        target = place / entry_name(stamp, owner, attempt)
        if not os.path.lexists(target):  # a rename would replace an empty directory
            os.rename(top / job, target)
            return target
    raise FileExistsError(f"{place}: {_MAX_ATTEMPTS} entries named {stamp}-{owner}")


def _keep_history(top: Path, job: str, uid: int, ignored: tuple[str, ...]) -> Optional[str]:
    """When ``top/<job>`` belongs to another user than ``uid`` and holds history, set
    it aside; return a note saying where it went (None: nothing moved)."""
    old_uid = _other_owner(top / job, uid)
    if old_uid is None or not _holds_history(top / job, ignored):
        return None
    target = _set_aside(top, job, old_uid, time.strftime(STAMP_FORMAT, time.gmtime()))
    return f"{_user_name(old_uid)}'s runs in {target}"


def _prepare_job_dirs(
    runs_dir: Path, log_dir: Path, job: str, user: str, owner: Optional[tuple[int, int]]
) -> Optional[str]:
    """Create one job's run-record and log folders for ``user`` (see the module), whose
    uid and gid are ``owner`` (None: not root, or no such user here).

    Returns:
        A note when an earlier user's runs were set aside, else None.

    Raises:
        OSError: a folder cannot be created, moved or given to its user.
        InstallError: as :func:`cronsync.host.install.make_dir`.
    """
    if owner is None:  # not root, or no such user here: nothing to give
        make_dir(runs_dir / job, 0o755)
        make_dir(log_dir / job, 0o700)
        return None
    moved = [
        _keep_history(runs_dir, job, owner[0], RUN_FILES),
        _keep_history(log_dir, job, owner[0], ()),
    ]
    _fresh_lock(runs_dir / job, owner)
    _give_tree(runs_dir / job, 0o755, owner, RUN_FILES)
    _give_tree(log_dir / job, 0o700, owner, ())
    kept = [note for note in moved if note]
    if not kept:
        return None
    return f"{job}: now run as {user}; kept for root only: " + "; ".join(kept)


def ensure_job_dirs(runs_dir: Path, log_dir: Path, users: Mapping[str, str]) -> list[str]:
    """Create each installed job's run-record and log folders, owned by its user; an
    earlier user's runs are set aside (see the module).

    Args:
        users: job name -> the user it runs as.

    Returns:
        One note per job whose earlier user's runs were set aside.

    Raises:
        InstallError: a folder cannot be created, set aside or given to its user.
    """
    notes = []
    owners: dict[str, Optional[tuple[int, int]]] = {}  # one look-up per user, this call
    try:
        for top in (runs_dir, log_dir):
            make_dir(top, 0o755)
        for job, user in users.items():
            if user not in owners:
                owners[user] = owner_of(user)
            note = _prepare_job_dirs(runs_dir, log_dir, job, user, owners[user])
            if note:
                notes.append(note)
    except OSError as exc:
        raise InstallError(
            f"cannot prepare the run directories in {runs_dir} and {log_dir}: {exc.strerror or exc}"
        ) from exc
    return notes
