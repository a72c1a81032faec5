"""The spool of CloudWatch Logs deliveries: pending files and incremental log reading.

A run's local log is the spool itself; what is left to deliver is one small JSON file
per run log, ``<runs_dir>/<job>/pending/<run_id>.json`` (mode 0600, written
atomically), saying where the log is, where to send it and where delivery stopped.

Whoever delivers a run log holds an exclusive ``flock`` on its own read-only
descriptor of the log, so the shim's live forwarder and ``cronsync flush`` never
deliver the same log at once; every rewrite of a pending file happens under that lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from cronsync import logformat
from cronsync.cloudbatch import Piece, Position, scan_pieces
from cronsync.errors import InstallError
from cronsync.fsutil import atomic_write

PENDING_FORMAT = "cronsync.pending/1"
PENDING_DIR = "pending"
# Reads of the log: large enough for a few thousand lines per system call, small
# enough to keep memory bounded (one chunk is alive at a time).
CHUNK_SIZE = 4 * 1024 * 1024
_MAX_PENDING_BYTES = 64 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK


def _now_ms() -> int:
    """Return the wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Pending:
    """What is left to deliver of one run log.

    Attributes:
        log_path: the run's local log.
        group, stream: the CloudWatch Logs group and stream to deliver to.
        offset, marker_stream, marker_epoch_ms, mid_line, skip_events: where to resume
            (see :class:`~cronsync.cloudbatch.Position`).
        finished: the run has ended; nothing more will be appended to the log.
        attempts: failed delivery attempts since the last delivered batch.
        last_error: the last failure (a one-line service or network message), or None.
        created_ms: when the run's delivery was set up (flush goes oldest first).
    """

    log_path: str
    group: str
    stream: str
    offset: int = 0
    marker_stream: str = logformat.OUT
    marker_epoch_ms: int = 0
    mid_line: bool = False
    skip_events: int = 0
    finished: bool = False
    attempts: int = 0
    last_error: Optional[str] = None
    created_ms: int = field(default_factory=_now_ms)

    @property
    def position(self) -> Position:
        """Where delivery resumes."""
        return Position(
            self.offset, self.marker_stream, self.marker_epoch_ms, self.mid_line, self.skip_events
        )

    def at(self, position: Position) -> Pending:
        """Return this pending delivery moved on to ``position`` (failures cleared)."""
        return replace(
            self,
            offset=position.offset,
            marker_stream=position.stream,
            marker_epoch_ms=position.epoch_ms,
            mid_line=position.mid_line,
            skip_events=position.skip,
            attempts=0,
            last_error=None,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object stored in the pending file."""
        data: dict[str, Any] = {"format": PENDING_FORMAT}
        data.update(self.__dict__)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pending:
        """Build from the JSON object of a pending file.

        Raises:
            ValueError: not a pending file of this format, or a field has a wrong type.
        """
        if data.get("format") != PENDING_FORMAT:
            raise ValueError("not a cronsync pending-delivery file")
        values = {name: _checked(data, name, kind) for name, kind in _FIELDS.items()}
        if values["marker_stream"] not in logformat.STREAMS:
            raise ValueError(f"marker_stream: unknown stream {values['marker_stream']!r}")
        if min(values["offset"], values["skip_events"], values["attempts"]) < 0:
            raise ValueError("offset, skip_events and attempts must not be negative")
        return cls(**values)


_FIELDS: dict[str, type] = {
    "log_path": str,
    "group": str,
    "stream": str,
    "offset": int,
    "marker_stream": str,
    "marker_epoch_ms": int,
    "mid_line": bool,
    "skip_events": int,
    "finished": bool,
    "attempts": int,
    "last_error": str,
    "created_ms": int,
}


def _checked(data: Mapping[str, Any], name: str, kind: type) -> Any:
    """Return ``data[name]`` if it is a ``kind`` (``last_error`` may be None).

    Raises:
        ValueError: missing or of another type (a bool is not an int here).
    """
    value = data.get(name)
    if name == "last_error" and value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {kind.__name__}")
    return value


def pending_path(runs_dir: Path, job: str, run_id: str) -> Path:
    """Return the pending file of run ``run_id`` of ``job``.

    Raises:
        ValueError: ``job`` or ``run_id`` is not a plain file name.
    """
    for name in (job, run_id):
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise ValueError(f"not a valid job or run name: {name!r}")
    return runs_dir / job / PENDING_DIR / f"{run_id}.json"


def save_pending(path: Path, pending: Pending, *, owner: Optional[tuple[int, int]] = None) -> None:
    """Write ``pending`` to ``path`` atomically, mode 0600 (its directory made, 0700).

    Args:
        path: see :func:`pending_path`.
        pending: what to write.
        owner: ``(uid, gid)`` for the file (root rewriting a job user's file), or None.

    Raises:
        InstallError: the file or its directory could not be written.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    data = json.dumps(pending.to_json(), sort_keys=True).encode() + b"\n"
    atomic_write(path, data, mode=0o600, owner=owner)


def load_pending(path: Path) -> Optional[Pending]:
    """Return the pending delivery in ``path``.

    Returns:
        None when the file is missing, not a regular file, unreadable, too large or not
        a pending file of this format (a foreign file is never trusted).
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_PENDING_BYTES:
            return None
        raw = os.read(fd, _MAX_PENDING_BYTES + 1)
        data = json.loads(raw)
        return Pending.from_json(data) if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def open_log(path: Path, owner_uid: int) -> int:
    """Open a run log for reading, refusing one that ``owner_uid`` does not own.

    A pending file is written by the job's user; checking that the log belongs to the
    same user keeps a forged pending file from making root ship someone else's file.

    Returns:
        A read-only descriptor (close it; closing releases the lock).

    Raises:
        FileNotFoundError: the log is gone.
        OSError: it cannot be opened, is a symlink, not a regular file, or not owned
            by ``owner_uid``.
    """
    _check_log(os.lstat(path), path, owner_uid)  # before opening: never open a device or fifo
    fd = os.open(path, _READ_FLAGS)
    try:
        _check_log(os.fstat(fd), path, owner_uid)  # still the file checked
    except OSError:
        os.close(fd)
        raise
    return fd


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
