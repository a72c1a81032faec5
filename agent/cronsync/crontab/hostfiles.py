"""Read the crontabs of a host (adapter: files and the user database, read only).

:func:`read_host_crontabs` reads what Debian's cron reads below a root: ``/etc/crontab``,
every file in ``/etc/cron.d`` and the user crontabs in ``/var/spool/cron/crontabs``,
and notes what cron checks before it reads a file (observed on cron 3.0pl1-162):

* ``/etc/cron.d`` names outside ``[A-Za-z0-9_-]`` are skipped silently (``backup.sh``,
  ``job~``, ``.swp`` files); they are listed here, marked ignored.
* System crontabs: owner root ("WRONG FILE OWNER"), not group/other-writable
  ("INSECURE MODE"), one hard link; a symlink must be owned by root and so must its
  target.
* User crontabs: the file name is a user ("ORPHAN" otherwise), owned by that user or
  root, mode exactly 0600, one hard link, not a symlink.

Below a sandbox root (anything but ``/``) the owner of the root directory stands in for
root, so an unprivileged sandbox reads like a host. Nothing is ever written. A file that
cannot be read becomes a :class:`~cronsync.crontab.inventory.CrontabFile` with ``text`` None
and the reason in ``problems``.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from collections.abc import Container, Iterator, Mapping
from pathlib import Path
from typing import Optional

from cronsync.crontab.inventory import CrontabFile
from cronsync.crontab.records import FILE_IGNORED

SYSTEM_CRONTAB = "etc/crontab"
CRON_D = "etc/cron.d"
SPOOL = "var/spool/cron/crontabs"
MAX_BYTES = 4 * 1024 * 1024
_CRON_D_NAME = re.compile(r"[A-Za-z0-9_-]+")


def host_users(root: Path) -> Optional[dict[str, int]]:
    """Return the host's users (name -> uid), or None when they cannot be known.

    Args:
        root: the host root; ``/`` asks the user database (NSS included), any other
            root reads ``ROOT/etc/passwd``.
    """
    if root == Path("/"):
        return {entry.pw_name: entry.pw_uid for entry in pwd.getpwall()}
    try:
        text = (root / "etc/passwd").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    users: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            users.setdefault(parts[0], int(parts[2]))
    return users


class PasswdLookup:
    """This host's user database, asked one name at a time (``pwd.getpwnam``, so users
    of a directory service that does not list them count too); answers are kept.
    ``name in PasswdLookup()`` is whether the user exists."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name not in self._known:
            try:
                pwd.getpwnam(name)
                self._known[name] = True
            except (KeyError, ValueError):  # ValueError: a NUL in the name
                self._known[name] = False
        return self._known[name]


def user_lookup(root: Path) -> Optional[Container[str]]:
    """Return who exists on the host, for ``name in users`` checks.

    Args:
        root: the host root; ``/`` asks the user database (:class:`PasswdLookup`), any
            other root reads ``ROOT/etc/passwd``.
    Returns:
        the lookup, or None when the users cannot be known (no readable passwd file).
    """
    if root == Path("/"):
        return PasswdLookup()
    users = host_users(root)
    return frozenset(users) if users is not None else None


def read_host_crontabs(root: Path, users: Optional[Mapping[str, int]] = None) -> list[CrontabFile]:
    """Read every crontab Debian's cron would look at below ``root``.

    Args:
        root: the host root (``/``, or a sandbox).
        users: name -> uid of the host's users (default: :func:`host_users`); None
            inside means unknown, and user checks are skipped.
    Returns:
        ``/etc/crontab`` (if present), the files of ``/etc/cron.d`` and of the spool,
        sorted by name within each; sources are shown as host paths (``/etc/crontab``).
    """
    known = dict(users) if users is not None else host_users(root)
    root_uid = 0 if root == Path("/") else _owner_or_zero(root)
    found: list[CrontabFile] = []
    system = root / SYSTEM_CRONTAB
    if system.exists() or system.is_symlink():
        found.append(_read_system(system, "/" + SYSTEM_CRONTAB, root_uid, ()))
    found += _read_cron_d(root / CRON_D, root_uid)
    found += _read_spool(root / SPOOL, root_uid, known)
    return found


def read_crontab_file(
    path: Path,
    user: Optional[str] = None,
    system: bool = False,
    users: Optional[Container[str]] = None,
) -> CrontabFile:
    """Read a crontab given on the command line (e.g. a ``crontab -l`` dump).

    Args:
        path: the file. user: whose crontab it is, if known (user crontabs).
        system: the file has a user field (``/etc/crontab`` format).
        users: who exists on this host (:func:`user_lookup`); None: not checked.
    Returns:
        the file, marked ignored when ``user`` does not exist in ``users`` (cron
        skips the crontab of a user it does not have: ORPHAN); no owner or mode check
        (it is a copy, not what cron reads).
    """
    text, problems = _read_text(path, follow=True)
    owner = None if system else user
    if owner is not None and users is not None and owner not in users:
        orphan = f"{FILE_IGNORED}: there is no user '{owner}' (ORPHAN)"
        return CrontabFile(str(path), text, system, owner, (orphan, *problems), ignored=True)
    return CrontabFile(str(path), text, system, owner, problems)


def _owner_or_zero(path: Path) -> int:
    try:
        return path.stat().st_uid
    except OSError:
        return 0


def _read_text(path: Path, *, follow: bool) -> tuple[Optional[str], tuple[str, ...]]:
    """Return the file's text (UTF-8, undecodable bytes as U+FFFD) and problems."""
    flags = os.O_RDONLY | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, (f"cannot read: {exc.strerror or exc}",)
    problems: tuple[str, ...] = ()
    if len(data) > MAX_BYTES:
        return None, (f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not read",)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        problems = ("not UTF-8: undecodable bytes are shown as U+FFFD",)
    return text, problems


def _read_cron_d(directory: Path, root_uid: int) -> Iterator[CrontabFile]:
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    except OSError as exc:
        yield CrontabFile("/" + CRON_D, None, True, problems=(f"cannot list: {exc.strerror}",))
        return
    for name in names:
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            continue
        naming = _name_problem(name)
        crontab = _read_system(path, f"/{CRON_D}/{name}", root_uid, naming)
        if naming and crontab.text is not None and not _has_lines(crontab.text):
            continue  # e.g. Debian's .placeholder: cron skips it, and it holds nothing
        yield crontab


def _has_lines(text: str) -> bool:
    """Whether ``text`` has a line that is neither blank nor a comment."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def _name_problem(name: str) -> tuple[str, ...]:
    if _CRON_D_NAME.fullmatch(name):
        return ()
    bad = "".join(dict.fromkeys(c for c in name if not _CRON_D_NAME.fullmatch(c)))
    quoted = ", ".join(repr(c) for c in bad)
    return (
        f"{FILE_IGNORED}: its name contains {quoted} (cron.d names may only use "
        "letters, digits, '-' and '_')",
    )


def _read_system(path: Path, source: str, root_uid: int, naming: tuple[str, ...]) -> CrontabFile:
    text, read_problems = _read_text(path, follow=True)
    refusals = list(naming)
    try:
        refusals += _system_refusals(path, root_uid)
    except OSError as exc:
        read_problems = read_problems or (f"cannot read: {exc.strerror}",)
    problems = tuple(refusals) + read_problems
    return CrontabFile(source, text, True, None, problems, ignored=bool(refusals))


def _system_refusals(path: Path, root_uid: int) -> list[str]:
    """What makes cron refuse a system crontab (owner, mode, links, symlink owner)."""
    refusals = []
    link = path.lstat()
    if stat.S_ISLNK(link.st_mode) and link.st_uid != root_uid:
        refusals.append(f"{FILE_IGNORED}: it is a symlink not owned by root (WRONG SYMLINK OWNER)")
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        return [*refusals, f"{FILE_IGNORED}: not a regular file"]
    if info.st_uid != root_uid:
        refusals.append(
            f"{FILE_IGNORED}: owned by {_user_name(info.st_uid)}, not root (WRONG FILE OWNER)"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        refusals.append(
            f"{FILE_IGNORED}: mode {stat.S_IMODE(info.st_mode):04o} is group/other-writable "
            "(INSECURE MODE)"
        )
    if info.st_nlink > 1:
        refusals.append(f"{FILE_IGNORED}: it has {info.st_nlink} hard links (more than 1)")
    return refusals


def _read_spool(
    directory: Path, root_uid: int, users: Optional[Mapping[str, int]]
) -> Iterator[CrontabFile]:
    source = "/" + SPOOL
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    except OSError as exc:
        reason = f"cannot list: {exc.strerror} (user crontabs need root to read)"
        yield CrontabFile(source, None, False, problems=(reason,))
        return
    for name in names:
        path = directory / name
        if name.startswith(".") or (path.is_dir() and not path.is_symlink()):
            continue  # crontab(1)'s temp files; cron skips them as orphans anyway
        text, problems = _read_text(path, follow=False)
        refusals = _spool_refusals(path, name, root_uid, users)
        yield CrontabFile(
            f"{source}/{name}", text, False, name, tuple(refusals) + problems, bool(refusals)
        )


def _spool_refusals(
    path: Path, user: str, root_uid: int, users: Optional[Mapping[str, int]]
) -> list[str]:
    """What makes cron refuse a user crontab (orphan, symlink, owner, mode, links)."""
    try:
        info = path.lstat()
    except OSError:
        return []
    if users is not None and user not in users:
        return [f"{FILE_IGNORED}: there is no user '{user}' (ORPHAN)"]
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        return [f"{FILE_IGNORED}: a user crontab must be a regular file, not a symlink"]
    refusals = []
    allowed = {root_uid} | ({users[user]} if users is not None else set())
    if users is not None and info.st_uid not in allowed:
        refusals.append(
            f"{FILE_IGNORED}: owned by {_user_name(info.st_uid)}, not by {user} or root "
            "(WRONG FILE OWNER)"
        )
    if stat.S_IMODE(info.st_mode) != 0o600:
        refusals.append(
            f"{FILE_IGNORED}: mode {stat.S_IMODE(info.st_mode):04o}, cron wants exactly 0600 "
            "(INSECURE MODE)"
        )
    if info.st_nlink > 1:
        refusals.append(f"{FILE_IGNORED}: it has {info.st_nlink} hard links (more than 1)")
    return refusals


def _user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
