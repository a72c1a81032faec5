"""The spool of CloudWatch Logs deliveries: the pending files (reading the logs they
point to is :mod:`cronsync.cloud.logreader`'s).

A run's local log is the spool itself; what is left to deliver is one small JSON file
per run log, ``<runs_dir>/<job>/pending/<run_id>.json`` (mode 0600, written
atomically), saying where the log is, where to send it and where delivery stopped,
how the stream ends as far as delivery knows, and which batch is in flight: written
before the batch is sent, so a delivery that finds it there (a crash, a lost reply)
looks at the stream before sending it again (see :mod:`cronsync.cloud.tailcheck`).
Files written before those two fields existed load with the stream's end unknown.

Whoever delivers a run log holds an exclusive ``flock`` on its own read-only
descriptor of the log, so the shim's live forwarder and ``cronsync flush`` never
deliver the same log at once; every rewrite of a pending file happens under that lock.

Root delivers files that job users control (``runs/<job>`` belongs to the job's user),
so a delivery goes through a :class:`PendingDir`: the real pending directory held
open, every file in it read, written, renamed and removed relative to that descriptor,
never through a symbolic link; and the log is opened by
:func:`cronsync.cloud.logreader.open_log` following no symbolic link that root (or the
delivering user) does not own.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Optional

from cronsync.cloud.batch import MAX_BATCH_EVENTS, Position
from cronsync.cloud.tailcheck import EMPTY_STREAM, StreamEnd
from cronsync.core import logformat
from cronsync.core.errors import InstallError
from cronsync.files.atomic import atomic_write

PENDING_FORMAT = "cronsync.pending/1"
PENDING_DIR = "pending"
_MAX_PENDING_BYTES = 64 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def stream_name(host: str, job: str, run_id: str) -> str:
    """Return the CloudWatch Logs stream of one run: ``HOST/JOB/RUN-ID``."""
    return f"{host}/{job}/{run_id}"


def _now_ms() -> int:
    """Return the wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class InFlight(NamedTuple):
    """A batch sent (or about to be) whose outcome is not known yet.

    It starts at the pending file's position; the events themselves are read again
    from the log when needed (they are not copied into the pending file).

    Attributes:
        events: how many events it holds.
        first_ms: its first event's timestamp as sent (the batcher's floor for it).
        after: the position just after it.
    """

    events: int
    first_ms: int
    after: Position


@dataclass(frozen=True)
class Pending:
    """What is left to deliver of one run log.

    Attributes:
        log_path: the run's local log.
        group, stream: the CloudWatch Logs group and stream to deliver to.
        offset, marker_stream, marker_epoch_ms, mid_line, skip_events: where to resume
            (see :class:`~cronsync.cloud.batch.Position`).
        finished: the run has ended; nothing more will be appended to the log.
        attempts: failed delivery attempts since the last delivered batch.
        last_error: the last failure (a one-line service or network message), or None.
        created_ms: when the run's delivery was set up (flush goes oldest first).
        stream_end: how the stream ends after what was delivered (a new run's stream
            is empty), or None when unknown (a file from before this field).
        in_flight: the batch sent whose outcome is not known yet, or None.
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
    stream_end: Optional[StreamEnd] = EMPTY_STREAM
    in_flight: Optional[InFlight] = None

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

    def delivered(self, position: Position, stream_end: Optional[StreamEnd]) -> Pending:
        """Return this pending delivery after a batch the service took: moved on to
        ``position``, the stream ending with ``stream_end``, nothing in flight."""
        return replace(self.at(position), stream_end=stream_end, in_flight=None)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object stored in the pending file."""
        data: dict[str, Any] = {"format": PENDING_FORMAT}
        data.update(self.__dict__)
        data["stream_end"] = None if self.stream_end is None else self.stream_end._asdict()
        flight = self.in_flight
        if flight is not None:
            data["in_flight"] = {**flight._asdict(), "after": flight.after._asdict()}
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
        end, flight = data.get("stream_end"), data.get("in_flight")
        return cls(
            **values,
            stream_end=None if end is None else _stream_end(end),
            in_flight=None if flight is None else _in_flight(flight),
        )


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


def _stream_end(data: Any) -> StreamEnd:
    """Return the ``stream_end`` of a pending file's JSON.

    Raises:
        ValueError: not an object of ``last_ms`` (an integer or null) and ``at_last``.
    """
    if not isinstance(data, dict):
        raise ValueError("stream_end: expected an object")
    last_ms = None if data.get("last_ms") is None else _checked(data, "last_ms", int)
    at_last = _checked(data, "at_last", int)
    if at_last < 0 or (last_ms is None) != (at_last == 0):
        raise ValueError("stream_end: at_last must count the events stamped last_ms")
    return StreamEnd(last_ms, at_last)


def _in_flight(data: Any) -> InFlight:
    """Return the ``in_flight`` of a pending file's JSON.

    Raises:
        ValueError: not an object of ``events``, ``first_ms`` and ``after`` (a position).
    """
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, dict):
        raise ValueError("in_flight: expected an object with a position 'after'")
    events = _checked(data, "events", int)
    if not 0 < events <= MAX_BATCH_EVENTS:
        raise ValueError(f"in_flight: events must be 1 to {MAX_BATCH_EVENTS}")
    kinds = {"offset": int, "stream": str, "epoch_ms": int, "mid_line": bool, "skip": int}
    position = Position(**{name: _checked(after, name, kind) for name, kind in kinds.items()})
    if position.stream not in logformat.STREAMS or min(position.offset, position.skip) < 0:
        raise ValueError("in_flight: not a valid position")
    return InFlight(events, _checked(data, "first_ms", int), position)


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

    For the file's own user (the shim setting up its run); a delivery rewrites pending
    files through :meth:`PendingDir.save` instead, which never follows a symlink.

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
    loaded = _read_pending(fd)
    return None if loaded is None else loaded[0]


def _read_pending(fd: int) -> Optional[tuple[Pending, os.stat_result]]:
    """Read the pending file open on ``fd`` and close it; None if it is not one."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_PENDING_BYTES:
            return None
        raw = os.read(fd, _MAX_PENDING_BYTES + 1)
        data = json.loads(raw)
        return (Pending.from_json(data), info) if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


class UnsafeEntry(PermissionError):
    """A directory entry cronsync refuses to go through (a symbolic link, a swap)."""


def same_file(one: os.stat_result, other: os.stat_result) -> bool:
    """Whether two statuses are of the same file."""
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def open_subdir(parent_fd: int, name: str) -> int:
    """Open the directory ``name`` of ``parent_fd`` itself, never through a symlink.

    Returns:
        A read-only descriptor of the directory (close it).

    Raises:
        FileNotFoundError: there is no such entry.
        UnsafeEntry: the entry is a symbolic link, or was replaced while being opened.
        NotADirectoryError: the entry is something else than a directory.
    """
    info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeEntry(f"{name} is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    if not same_file(os.fstat(fd), info):
        os.close(fd)
        raise UnsafeEntry(f"{name} was replaced while being opened")
    return fd


class PendingDir:
    """One pending directory held open: all access to its files goes through it.

    A job's user owns ``runs/<job>`` and may swap ``pending`` for a symbolic link or
    another directory at any moment. Reading, writing (a temporary name in the same
    directory, fsync, rename), renaming and removing relative to the descriptor keeps
    every change inside the real directory opened; before each change the descriptor
    is checked to still be the entry ``pending`` of its parent, so a swap stops the
    delivery instead of being written through.

    Args:
        parent_fd: the parent directory's descriptor (owned by this object from now).
        name: the directory's name in the parent.
        fd: the directory's descriptor (owned too).
        label: the directory's path, for messages.

    Attributes:
        owner_uid: the owner of the directory.
    """

    def __init__(self, parent_fd: int, name: str, fd: int, label: str) -> None:
        self.parent_fd = parent_fd
        self.name = name
        self.fd = fd
        self.label = label
        self.owner_uid = os.fstat(fd).st_uid

    @classmethod
    def open(cls, base: Path, *names: str) -> PendingDir:
        """Open ``base`` (the caller's own path, followed), then each of ``names``
        below it as a real directory (see :func:`open_subdir`), the last one held.

        Raises:
            OSError: as :func:`open_subdir` (FileNotFoundError when one is missing).
        """
        if not names:
            raise ValueError("no pending directory named")
        parent = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in names[:-1]:
                child = open_subdir(parent, name)
                os.close(parent)
                parent = child
            fd = open_subdir(parent, names[-1])
        except BaseException:
            os.close(parent)
            raise
        try:
            return cls(parent, names[-1], fd, str(base.joinpath(*names)))
        except BaseException:
            os.close(fd)
            os.close(parent)
            raise

    @classmethod
    def containing(cls, pending_file: Path) -> PendingDir:
        """Open the directory of ``pending_file`` (a symlink there is refused)."""
        directory = pending_file.parent
        return cls.open(directory.parent, directory.name)

    def __enter__(self) -> PendingDir:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close both descriptors."""
        for fd in (self.fd, self.parent_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fd = self.parent_fd = -1

    def names(self) -> list[str]:
        """Return the names in the directory, sorted."""
        return sorted(os.listdir(self.fd))

    def exists(self, name: str) -> bool:
        """Whether there is an entry ``name`` (of any kind)."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def load(self, name: str) -> Optional[tuple[Pending, os.stat_result]]:
        """Return the pending delivery in ``name`` and that file's status.

        Returns:
            None as :func:`load_pending` does.
        """
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except OSError:
            return None
        return _read_pending(fd)

    def check(self) -> None:
        """Make sure the descriptor is still the directory entry it was opened from.

        Raises:
            InstallError: the entry is gone or is another file now (a swap).
        """
        try:
            same = same_file(
                os.stat(self.name, dir_fd=self.parent_fd, follow_symlinks=False),
                os.fstat(self.fd),
            )
        except OSError:
            same = False
        if not same:
            raise InstallError(f"{self.label} was replaced meanwhile; not writing there")

    def save(self, name: str, pending: Pending, owner: Optional[tuple[int, int]]) -> None:
        """Write ``pending`` to ``name`` atomically, mode 0600.

        Args:
            owner: ``(uid, gid)`` for the file (root rewriting a job user's file), or None.

        Raises:
            InstallError: it could not be written, or the directory was swapped.
        """
        data = json.dumps(pending.to_json(), sort_keys=True).encode() + b"\n"
        self.check()
        tmp = f".{name}.{os.urandom(8).hex()}.tmp"
        try:
            fd = os.open(tmp, _WRITE_FLAGS, 0o600, dir_fd=self.fd)
            try:
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            self.check()
            os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            if isinstance(exc, OSError):
                reason = exc.strerror or exc
                raise InstallError(f"cannot write {self.label}/{name}: {reason}") from exc
            raise
        try:
            os.fsync(self.fd)
        except OSError as exc:  # some filesystems cannot fsync a directory: fine
            if exc.errno != errno.EINVAL:
                raise InstallError(f"cannot fsync {self.label}: {exc.strerror}") from exc

    def unlink(self, name: str) -> None:
        """Remove ``name``.

        Raises:
            FileNotFoundError: it is gone already.
            InstallError: the directory was swapped.
            OSError: it could not be removed.
        """
        self.check()
        os.unlink(name, dir_fd=self.fd)
