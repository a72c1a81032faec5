"""Install a release on the host: release directory, ``current`` link, cron file.

Each step is atomic (temp name, fsync, rename) and they run in that order, so at every
instant cron reads a complete file and the shim a complete release. Leftovers of an
interrupted sync (``.tmp-*`` directories) are never mistaken for a release.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from cronsync.core.drift import Observed, release_link
from cronsync.core.errors import InstallError
from cronsync.core.release import JOBS_FILE
from cronsync.core.render import HEADER
from cronsync.files.atomic import atomic_symlink, atomic_write, fsync_dir
from cronsync.files.durable import TreeFlush
from cronsync.files.tree import remove_tree
from cronsync.host.config import Paths

TEMP_PREFIX = ".tmp-"
CRONTAB_FILE = "crontab"


def sha256_hex(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def release_name(commit: str, jobs_json: bytes) -> str:
    """Name a release after its commit and the digest of its compiled jobs, so the same
    commit compiled for another host config is another (immutable) release."""
    return f"{commit[:12]}-{sha256_hex(jobs_json)[:8]}"


def new_staging_dir(paths: Paths, commit: str) -> Path:
    """Create a fresh, empty staging directory under ``releases/`` and return it.

    Raises:
        InstallError: the releases directory cannot be created.
    """
    make_dir(paths.releases, 0o755)
    staging = paths.releases / f"{TEMP_PREFIX}{commit[:12]}-{os.getpid()}"
    remove_tree(staging)
    make_dir(staging, 0o755)
    return staging


def finish_release(
    paths: Paths, staging: Path, commit: str, jobs_json: bytes, cron_text: str, flush: TreeFlush
) -> str:
    """Write jobs.json and the rendered crontab into a staged release, make the whole
    tree durable through ``flush`` (opened on ``staging`` before anything was written in
    it) and move it into place (the crontab copy lets a revert restore the cron file
    without git).

    Returns:
        The release name. When a release of that name already exists with the same
        files (same commit, same compiled jobs) it is kept and the staging directory is
        removed; one whose files were changed by hand is replaced.

    Raises:
        InstallError: writing or renaming failed; the staging directory is removed.
    """
    name = release_name(commit, jobs_json)
    final = paths.releases / name
    try:
        atomic_write(staging / JOBS_FILE, jobs_json, mode=0o644)
        atomic_write(staging / CRONTAB_FILE, cron_text.encode(), mode=0o644)
        if final.is_dir() and release_digest(final) == release_digest(staging):
            remove_tree(staging)
            return name
        flush.flush()
        _replace_dir(final, staging)
        fsync_dir(paths.releases)
    except OSError as exc:
        remove_tree(staging)
        raise InstallError(f"cannot install release {final}: {exc.strerror or exc}") from exc
    except InstallError:  # atomic_write's, which names the file (a full disk...)
        remove_tree(staging)
        raise
    return name


def _replace_dir(final: Path, staging: Path) -> None:
    """Move ``staging`` to ``final``; a damaged ``final`` is moved aside first (two
    renames: ``current`` dangles only between them) and removed after."""
    if not os.path.lexists(final):
        os.rename(staging, final)
        return
    aside = final.with_name(f"{TEMP_PREFIX}damaged-{final.name}-{os.getpid()}")
    os.rename(final, aside)
    os.rename(staging, final)
    remove_tree(aside)


def switch_current(paths: Paths, release: str) -> None:
    """Point ``current`` at a release, atomically.

    Raises:
        InstallError: the link cannot be replaced.
    """
    atomic_symlink(paths.current, release_link(release))


def cron_file_owner() -> Optional[tuple[int, int]]:
    """Return root:root when we can set it (cron refuses files not owned by root)."""
    return (0, 0) if os.geteuid() == 0 else None


def write_cron_file(path: Path, text: str) -> str:
    """Write the managed cron file as Debian cron wants it: dot-free name, 0644,
    root-owned when running as root, ending in a newline.

    Returns:
        The SHA-256 of what was written.

    Raises:
        InstallError: the file cannot be written; the previous one stays.
    """
    data = text.encode()
    if not data.endswith(b"\n"):
        data += b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {path.parent}: {exc.strerror}") from exc
    atomic_write(path, data, mode=0o644, owner=cron_file_owner())
    make_cron_notice(path.parent)
    return sha256_hex(data)


# Debian's cron looks at /etc/cron.d at the top of each minute (on a busy host a little
# later): this many seconds into a minute, it may have looked in the same second.
CRON_LOOKS_WITHIN = 3


def make_cron_notice(
    directory: Path,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Make sure cron rereads ``directory`` after a file was just written there.

    Cron rereads /etc/cron.d (and the crontab spool) when the folder's modification
    time, in whole seconds, differs from what it saw at its last look. A write that
    lands in the same second as that look (its temporary file made before the look,
    renamed after) leaves the time unchanged, and cron would not read the new file
    until the folder changes again. So when the folder changed early in a minute, when
    cron looks, touch it again in a later second. Best effort: a folder we may not
    touch is left.

    Returns:
        True when the folder was touched.
    """
    try:
        changed = int(os.stat(directory).st_mtime)
    except OSError:
        return False
    if changed % 60 >= CRON_LOOKS_WITHIN:
        return False
    now = clock()
    if int(now) <= changed:
        sleep(changed + 1 - now)
    try:
        os.utime(directory)
    except OSError:
        return False
    return True


def read_cron_file(path: Path) -> Optional[bytes]:
    """Return the cron file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from exc


def observe(paths: Paths, cron_file: Path, full: bool = False) -> Observed:
    """Look at what is installed now: cheap (one small read, one readlink, one stat), or
    with ``full`` also every file of the current release (its digest)."""
    data = read_cron_file(cron_file)
    try:
        target: Optional[str] = os.readlink(paths.current)
    except OSError:
        target = None
    complete = target is not None and (paths.state_dir / target / JOBS_FILE).is_file()
    digest = None
    if full and complete and target is not None:
        digest = release_digest(paths.state_dir / target)
    return Observed(
        cron_sha256=None if data is None else sha256_hex(data),
        current_target=target,
        release_complete=complete,
        release_digest=digest,
    )


def release_digest(release: Path) -> str:
    """Hash every file of a release: relative path, mode, content (a symlink's target),
    in a stable order. Unreadable entries count as their error, so a change shows."""
    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(release):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, release)
            digest.update(f"{relative}\0".encode())
            _hash_entry(digest, path)
    return digest.hexdigest()


def _hash_entry(digest: Any, path: str) -> None:
    """Feed one entry's mode and content (a link's target) to ``digest``, in chunks."""
    try:
        info = os.lstat(path)
        digest.update(f"{info.st_mode:o}\0".encode())
        if stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode())
            return
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        digest.update(f"unreadable: {exc.strerror}".encode())


def prune_releases(paths: Paths, keep: int, current: str) -> list[str]:
    """Remove staging leftovers and all but the ``keep`` newest old releases.

    Call only while holding the sync lock (no staging directory is then in use).

    Returns:
        The names removed.
    """
    try:
        entries = list(paths.releases.iterdir())
    except OSError:
        return []
    removed = []
    old = []
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX):
            remove_tree(entry)
            removed.append(entry.name)
        elif entry.name != current and entry.is_dir():
            old.append(entry)
    old.sort(key=lambda item: item.stat().st_mtime, reverse=True)
    for entry in old[keep:]:
        remove_tree(entry)
        removed.append(entry.name)
    return removed


def restore_release(paths: Paths, release: str, cron_file: Path) -> str:
    """Put an installed release back as it was written: ``current`` and the cron file.

    Returns:
        The SHA-256 of the cron file written.

    Raises:
        InstallError: the release has no rendered crontab, or writing failed.
    """
    try:
        text = (paths.releases / release / CRONTAB_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot restore release {release}: {exc}") from exc
    switch_current(paths, release)
    return write_cron_file(cron_file, text)


def retire_cron_file(path: Path) -> bool:
    """Remove a cron file cronsync wrote before (it starts with our header line), e.g.
    after ``cron.file`` changed, so no job runs twice.

    Returns:
        True when a file was removed; a file without our header is left alone.

    Raises:
        InstallError: it is ours but cannot be removed.
    """
    data = read_cron_file(path)
    if data is None or not data.startswith(HEADER.encode()):
        return False
    try:
        path.unlink()
        fsync_dir(path.parent)
    except OSError as exc:
        raise InstallError(f"cannot remove the old cron file {path}: {exc.strerror}") from exc
    return True


def make_dir(path: Path, mode: int) -> None:
    """Create ``path`` (and missing parents) and give it exactly ``mode``, whatever the
    umask (the shim and operators read what cronsync writes).

    Raises:
        InstallError: it cannot be created.
    """
    try:
        _ensure_dir(path, mode, None)
    except OSError as exc:
        verb = "prepare" if path.is_dir() else "create"
        raise InstallError(f"cannot {verb} {path}: {exc.strerror or exc}") from exc


def _ensure_dir(path: Path, mode: int, owner: Optional[tuple[int, int]]) -> None:
    """Create ``path`` if missing; give it ``mode`` and ``owner`` where they differ (an
    existing, right directory is left alone: a user who may not change it may use it)."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    status = path.stat()
    if stat.S_IMODE(status.st_mode) != mode:
        os.chmod(path, mode)
    if owner is not None and (status.st_uid, status.st_gid) != owner:
        os.chown(path, *owner)
