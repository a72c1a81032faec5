"""Evidence of life of a host's legacy cron entries: the adapter that looks at the host.

For the entries of an inventory it reads cron's log (``cronlogs``), and for each file
an entry writes to by redirection and each script it runs (``crontab.evidence.paths_of``)
the file's mtime and size below the host root, the last lines of the files it writes
to, and the last commit of a script that lives in a git checkout (``git log -1``, run
through the one git seam, never as a shell command; git itself refuses a checkout
another user owns). The verdicts are the pure ``cronsync.crontab.evidence``'s. Nothing
is written.

A crontab names those paths, and a user's crontab is not trusted: root must not read,
for its author, a file the author could not read. So a path with ``..`` in it, or whose
folder leads out of the host root, is not looked at; a file written to is only
``lstat``-ed (a symbolic link is reported as one, never followed); and its last lines
are read only from a regular file owned by the entry's user (or by root, for the
system crontabs root wrote, and root's own), opened without following a link. A
file of another owner is evidence for nobody else's entry (``PathFacts.trusted_by``).
A script is only ``stat``-ed (its mode, size and time; never its content).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from cronsync.crontab.commandfiles import paths_of, redirect_targets
from cronsync.crontab.evidence import Evidence, Named, PathFacts, judge
from cronsync.crontab.hostfiles import host_users
from cronsync.crontab.inventory import HostFacts
from cronsync.crontab.records import FileInventory, InventoryEntry
from cronsync.migrate.cronlogs import CronLogs, JournalReader, read_cron_logs

TAIL_BYTES = 8192  # of a job's own log: enough for its last lines
GIT_TIMEOUT = 20.0


def _stat(path: Path) -> Optional[os.stat_result]:
    try:
        return path.stat()
    except OSError:
        return None


def _tail(path: Path, seen: os.stat_result) -> tuple[str, ...]:
    """The last lines of the regular file ``seen`` (by ``lstat``) at ``path``: opened
    without following a link, and only if it is still that file (at most
    ``TAIL_BYTES`` read); () otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ()
    try:
        info = os.fstat(fd)
        same = (info.st_dev, info.st_ino, info.st_uid) == (seen.st_dev, seen.st_ino, seen.st_uid)
        if not same or not stat.S_ISREG(info.st_mode):
            return ()
        os.lseek(fd, max(0, info.st_size - TAIL_BYTES), os.SEEK_SET)
        data = os.read(fd, TAIL_BYTES)
    except OSError:
        return ()
    finally:
        os.close(fd)
    lines = data.decode("utf-8", "replace").splitlines()
    return tuple(lines[1:] if len(data) == TAIL_BYTES else lines)  # the first may be cut


Resolve = Callable[[Path], str]
"""``os.path.realpath``, or a memo of it for one gathering (a crontab names thousands
of files in a few folders: each realpath is an ``lstat`` per component)."""


def below_root(
    root: Path, host_path: str, resolve: Resolve = os.path.realpath
) -> tuple[Optional[Path], str]:
    """Return ``host_path`` below ``root``, or (None, why it is not looked at): it has
    ``..`` in it, or its folder leads out of a sandbox root through a symbolic link
    (``resolve``: how a folder's real path is found)."""
    if ".." in host_path.split("/"):
        return None, "has '..' in it: not looked at"
    path = root / host_path.lstrip("/")
    if root != Path("/"):
        real_root = resolve(root)
        folder = resolve(path.parent)
        if os.path.commonpath([folder, real_root]) != real_root:
            return None, "leads out of the host root (a symbolic link): not looked at"
    return path, ""


def _checkout_of(path: Path, root: Path) -> Optional[Path]:
    """The git work tree ``path`` lives in (below ``root``), or None."""
    folder = path.parent
    while folder != root and root in folder.parents:
        if (folder / ".git").exists():
            return folder
        folder = folder.parent
    return None


def _last_commit(path: Path, root: Path) -> Optional[str]:
    checkout = _checkout_of(path, root)
    if checkout is None:
        return None
    from cronsync.repo.gitrun import GitFailed, checkout_git

    relative = path.relative_to(checkout).as_posix()
    try:
        # core.fsmonitor off: a checkout's own config must not start a program
        found = checkout_git(
            checkout,
            *("-c", "core.fsmonitor=false", "log", "-1", "--format=%h %cs", "--", relative),
            timeout=GIT_TIMEOUT,
        )
    except GitFailed:
        return None
    return found or None


def script_facts(root: Path, host_path: str, resolve: Resolve = os.path.realpath) -> PathFacts:
    """What the host shows about the script ``host_path`` runs (below ``root``): whether
    it exists (a link is followed: cron's shell follows it too), its time and size, and
    its last commit; its content is never read."""
    path, why = below_root(root, host_path, resolve)
    if path is None:
        return PathFacts(False, withheld=why)
    info = _stat(path)
    if info is None:
        return PathFacts(False)
    commit = _last_commit(path, root) if stat.S_ISREG(info.st_mode) else None
    modified = datetime.fromtimestamp(info.st_mtime, timezone.utc)
    return PathFacts(True, modified, info.st_size, commit=commit, owner=info.st_uid)


def written_facts(
    root: Path,
    host_path: str,
    owners: Mapping[Named, frozenset[int]],
    resolve: Resolve = os.path.realpath,
) -> PathFacts:
    """What the host shows about a file entries write to (below ``root``).

    Args:
        root: the host root. host_path: the file, as the crontab names it.
        owners: each entry naming it -> the owners whose files are evidence for it.
        resolve: how a folder's real path is found (see :data:`Resolve`).
    Returns:
        its facts: ``lstat`` only (a link is not followed), the last lines read only
        when its owner is trusted by one of the entries; ``trusted_by`` the entries it
        is evidence for (all of them when it does not exist).
    """
    path, why = below_root(root, host_path, resolve)
    if path is None:
        return PathFacts(False, withheld=why)
    try:
        info = os.lstat(path)
    except OSError:
        return PathFacts(False, trusted_by=frozenset(owners))
    if stat.S_ISLNK(info.st_mode):
        return PathFacts(True, withheld="is a symbolic link: not followed")
    trusted = frozenset(name for name, uids in owners.items() if info.st_uid in uids)
    readable = bool(trusted) and stat.S_ISREG(info.st_mode)
    return PathFacts(
        True,
        datetime.fromtimestamp(info.st_mtime, timezone.utc),
        info.st_size,
        _tail(path, info) if readable else (),
        owner=info.st_uid,
        trusted_by=trusted,
    )


def host_root_uid(root: Path) -> int:
    """Root's uid on the host below ``root``: 0, or in a sandbox the owner of the
    sandbox root (who stands in for root, as when its crontabs are read)."""
    if root == Path("/"):
        return 0
    try:
        return root.stat().st_uid
    except OSError:
        return 0


def trusted_owners(
    entry: InventoryEntry, system: bool, users: Mapping[str, int], root_uid: int
) -> frozenset[int]:
    """The owners whose files are evidence for ``entry``: its user's, and root's for a
    system crontab (root wrote it) or a job of root's."""
    owners = {root_uid} if system or entry.user == "root" else set()
    if entry.user is not None and entry.user != "root" and entry.user in users:
        owners.add(users[entry.user])
    return frozenset(owners)


def gather_facts(
    root: Path, reports: Iterable[FileInventory], users: Mapping[str, int]
) -> dict[str, PathFacts]:
    """Return host path -> facts for every path the entries write to or run.

    Args:
        root: the host root. reports: the inventory (commented-out entries skipped).
        users: the host's users (name -> uid; ``crontab.hostfiles.host_users``).
    """
    root_uid = host_root_uid(root)
    written: dict[str, dict[Named, frozenset[int]]] = {}
    scripts: set[str] = set()
    for report in reports:
        for entry in report.entries:
            if entry.commented_out:
                continue
            owners = trusted_owners(entry, report.system, users, root_uid)
            targets = {r.path for r in redirect_targets(entry.shell_command)}
            for host_path in paths_of(entry):
                if host_path in targets:
                    written.setdefault(host_path, {})[(entry.source, entry.line)] = owners
                else:
                    scripts.add(host_path)
    resolve = functools.lru_cache(maxsize=None)(os.path.realpath)  # this gathering's only
    facts = {path: written_facts(root, path, owners, resolve) for path, owners in written.items()}
    for path in scripts - facts.keys():
        facts[path] = script_facts(root, path, resolve)
    return facts


def gather_evidence(
    root: Path,
    reports: Sequence[FileInventory],
    host: HostFacts,
    journal: Optional[JournalReader],
) -> tuple[Evidence, CronLogs]:
    """Judge every entry of ``reports`` that is not cronsync's own or commented out.

    Args:
        root: the host root. reports: the inventory. host: its time, zone and users.
        journal: the journal seam, or None not to read one.
    Returns:
        the evidence, and the log as read (its notes say what could not be read).
    Raises:
        UsageError: a journal file given by the operator cannot be read.
    """
    legacy = [report for report in reports if not report.managed]
    entries = [e for report in legacy for e in report.entries]
    logs = read_cron_logs(root, host.zone, journal)
    facts = gather_facts(root, legacy, host_users(root) or {})
    return judge(entries, logs.read, logs.sources, facts, host), logs
