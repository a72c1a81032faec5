"""This host's processes as Linux's ``/proc`` shows them, for the run lock to tell a live
run from a dead one: when a process started (which tells it from a later process given
the same pid), which user it runs as, whether a process group still has a live member
(of a given user), which processes hold an ``flock`` on a file, and whether anyone
holds one.

Nothing here signals or changes a process. A zombie (ended, not yet reaped by its
parent, which for an orphan is init) counts as gone. Without ``/proc`` the answers are
cautious: see each function. On the shim's start-up path: ``os`` only.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Optional

    from cronsync.files.paths import StrPath

_STATE, _PGRP, _START = 0, 2, 19  # in the fields of /proc/PID/stat after the ")"


def _read_proc(pid: int, name: str, size: int) -> Optional[bytes]:
    """Return up to ``size`` bytes of ``/proc/PID/NAME`` (one read: the kernel writes
    these files whole), or None when there is no such process or it cannot be read."""
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _stat_fields(pid: int) -> Optional[list[bytes]]:
    """Return the fields of ``/proc/PID/stat`` after the command name (state first),
    or None when there is no such process or it cannot be read."""
    data = _read_proc(pid, "stat", 4096)
    if data is None:
        return None
    fields = data.rpartition(b")")[2].split()  # the name may hold spaces and ")"
    return fields if len(fields) > _START else None


def process_start(pid: int) -> int:
    """Return when process ``pid`` started, in clock ticks after boot (field 22 of
    ``/proc/PID/stat``); 0 when no such live process exists (a zombie counts as gone),
    ``pid`` is not above 0, or ``/proc`` cannot say."""
    fields = _stat_fields(pid) if pid > 0 else None
    if fields is None or fields[_STATE] == b"Z":
        return 0
    try:
        return int(fields[_START])
    except ValueError:
        return 0


def process_uid(pid: int) -> Optional[int]:
    """Return the real uid of process ``pid`` (the ``Uid:`` line of
    ``/proc/PID/status``); None when there is no such process or it cannot be read."""
    data = _read_proc(pid, "status", 8192)
    if data is None:
        return None
    for line in data.split(b"\n"):  # the name, first, has its newlines escaped
        if line.startswith(b"Uid:"):
            words = line.split()
            return int(words[1]) if len(words) > 1 and words[1].isdigit() else None
    return None


def _member(fields: Optional[list[bytes]], pid: int, pgid: int, uid: Optional[int]) -> bool:
    """Whether process ``pid`` (its stat ``fields``) is a live member of group ``pgid``
    run by ``uid`` (None: any user)."""
    if fields is None or fields[_STATE] == b"Z" or fields[_PGRP] != b"%d" % pgid:
        return False
    return uid is None or process_uid(pid) == uid


def _leader_reused(pgid: int, leader_start: int) -> bool:
    """Whether the pid ``pgid`` now belongs to a process that started at another time
    than the group's first process (``leader_start``; 0: unknown)."""
    leader = _stat_fields(pgid)
    if leader is None or not leader_start:
        return False
    try:
        return int(leader[_START]) != leader_start
    except ValueError:
        return True


def group_members(pgid: int, leader_start: int = 0, uid: Optional[int] = None) -> list[int]:
    """Return the live members of process group ``pgid`` run by ``uid`` (None: by any
    user), sorted; [] when the pid ``pgid`` was given out again (see
    :func:`group_alive`) or ``/proc`` cannot be listed."""
    if pgid <= 1 or _leader_reused(pgid, leader_start):
        return []
    try:
        names = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    return sorted(pid for pid in names if _member(_stat_fields(pid), pid, pgid, uid))


def group_alive(pgid: int, leader_start: int = 0, uid: Optional[int] = None) -> bool:
    """Whether process group ``pgid`` still has a live (not zombie) member run by
    ``uid``.

    Args:
        pgid: the group (its first process's pid); 0 or 1 is no group of a job.
        leader_start: that first process's start (:func:`process_start`), 0 when not
            known. A process holding the pid ``pgid`` now that started at another time
            proves the number was given out again after the group had ended: then no
            group of ours is alive, whoever is in the group of that number now.
        uid: the job's user (real uid; None: any user). A group none of whose live
            members runs as that user is not the job's (a holder line may name any
            group: only the job's own processes count).

    Returns:
        False when nothing of the group (of that user) lives; True when a member lives,
        or when ``/proc`` cannot be listed and the group answers signal 0 (cautious).
    """
    if pgid <= 1:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's member: it exists
        pass
    if _leader_reused(pgid, leader_start):
        return False
    if _member(_stat_fields(pgid), pgid, pgid, uid):
        return True
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    return any(
        _member(_stat_fields(int(name)), int(name), pgid, uid) for name in names if name.isdigit()
    )


def _file_key(path: StrPath) -> Optional[tuple[int, int]]:
    try:
        found = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def flock_holders(path: StrPath) -> list[int]:
    """Return the processes holding an ``flock`` on the file ``path`` through one of
    their descriptors (its ``/proc/PID/fdinfo`` entry shows the lock), sorted. Only
    processes this user may inspect are seen (all of them for root); [] when the file
    is missing or ``/proc`` cannot be listed."""
    key = _file_key(path)
    if key is None:
        return []
    try:
        names = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    return sorted(int(name) for name in names if _holds(name, key))


def _holds(pid: str, key: tuple[int, int]) -> bool:
    """Whether process ``pid`` has a descriptor on the file ``key`` that holds an flock."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            found = os.stat(f"/proc/{pid}/fd/{fd}")
            if (found.st_dev, found.st_ino) != key:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as info:
                if b"FLOCK" in info.read():
                    return True
        except OSError:
            continue
    return False


def flock_held(path: StrPath) -> Optional[bool]:
    """Whether anyone holds an ``flock`` on the file ``path``, from ``/proc/locks``
    (which any user may read), without touching the lock; None when it cannot be told
    (no such file, no ``/proc/locks``)."""
    key = _file_key(path)
    if key is None:
        return None
    wanted = f"{os.major(key[0]):02x}:{os.minor(key[0]):02x}:{key[1]}".encode()
    try:
        with open("/proc/locks", "rb") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; "1: -> FLOCK ..." waits
        if len(words) > 5 and words[1] == b"FLOCK" and words[5] == wanted:
            return True
    return False
