"""One delivery of one pending file: the log read from its saved position, under its lock.

:func:`open_delivery` loads a pending file, opens its log and takes the log's delivery
lock; :meth:`Delivery.run` sends what the log holds past the saved position batch by
batch and saves the position after each batch the service took, so a crash resends at
most the one unacknowledged batch. Used by :mod:`cronsync.cloudlogs` (``deliver``,
``flush_pending`` and the shim's live forwarder).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Union

from cronsync.cloudbatch import Batch, Batcher, Position
from cronsync.cloudsend import DeliveryError, LogsSender, one_line
from cronsync.cloudspool import (
    Pending,
    load_pending,
    log_mtime,
    open_log,
    read_pieces,
    save_pending,
    try_lock,
)
from cronsync.errors import CronsyncError


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery of a pending file did.

    Attributes:
        sent_events, sent_batches: what the service took.
        rejected_events: events it refused as too old or too new (they are not resent).
        complete: everything was delivered and the pending file removed.
        busy: another delivery holds the log (nothing done).
        stopped: the deadline came first.
        error: why delivery failed (one line, no secrets), or None.
        unreachable: the failure concerns the service as a whole.
    """

    sent_events: int = 0
    sent_batches: int = 0
    rejected_events: int = 0
    complete: bool = False
    busy: bool = False
    stopped: bool = False
    error: Optional[str] = None
    unreachable: bool = False

    def then(self, later: DeliveryResult) -> DeliveryResult:
        """Return this result followed by ``later`` (counts summed, first error kept)."""
        return replace(
            later,
            sent_events=self.sent_events + later.sent_events,
            sent_batches=self.sent_batches + later.sent_batches,
            rejected_events=self.rejected_events + later.rejected_events,
            error=self.error or later.error,
            unreachable=self.unreachable or later.unreachable,
        )


class Delivery:
    """Delivers one pending file while holding its log's lock (close() releases it).

    Args:
        pending_file, pending: the pending file and its content.
        fd: the open, locked log.
        sender: where to send.
        owner: ``(uid, gid)`` to give the rewritten pending file (root delivering a
            job user's file keeps it theirs), or None.
    """

    def __init__(
        self,
        pending_file: Path,
        pending: Pending,
        fd: int,
        sender: LogsSender,
        owner: Optional[tuple[int, int]] = None,
    ) -> None:
        self.pending_file = pending_file
        self.owner = owner
        self.pending = pending
        self.fd = fd
        self.sender = sender
        self._events = 0
        self._batches = 0

    def close(self) -> None:
        """Close the log (releasing the lock)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def mark_finished(self) -> None:
        """Record that nothing more will be appended to the log.

        Raises:
            InstallError: the pending file could not be saved.
        """
        if not self.pending.finished:
            self.pending = replace(self.pending, finished=True)
            save_pending(self.pending_file, self.pending, owner=self.owner)

    def abandoned(self, stale_after: float) -> bool:
        """Whether the log is unfinished but has not grown for ``stale_after`` seconds."""
        return not self.pending.finished and time.time() - log_mtime(self.fd) > stale_after

    def run(self, should_stop: Callable[[], bool]) -> DeliveryResult:
        """Send what the log holds past the saved position, batch by batch.

        Returns:
            The result; a failure is recorded in the pending file (attempts, last_error).
        """
        self._events = self._batches = 0
        rejected = self.sender.rejected_events
        try:
            reached_end = self._send_all(should_stop)
            complete = reached_end and self.pending.finished
            if complete:
                self._discard()
            return self._result(rejected, complete=complete, stopped=not reached_end)
        except DeliveryError as exc:
            self._record_failure(exc.message)
            return self._result(rejected, error=exc.message, unreachable=exc.unreachable)
        except (CronsyncError, OSError) as exc:
            return self._result(rejected, error=one_line(f"{self.pending.log_path}: {exc}"))

    def _result(self, rejected_before: int, **fields: Any) -> DeliveryResult:
        """Return a result with this run's counts and ``fields``."""
        rejected = self.sender.rejected_events - rejected_before
        return DeliveryResult(self._events, self._batches, rejected, **fields)

    def _send_all(self, should_stop: Callable[[], bool]) -> bool:
        """Send every piece past the saved position; False when stopped by the deadline."""
        batcher: Batcher[Position] = Batcher()
        pieces = read_pieces(self.fd, self.pending.position, final=self.pending.finished)
        for piece in pieces:
            events = piece.events()
            last = len(events) - 1
            for index in range(piece.start.skip, len(events)):
                tag = piece.after if index == last else piece.start._replace(skip=index + 1)
                closed = batcher.add(events[index], tag)
                if closed is not None and not self._send(closed, should_stop):
                    return False
        closed = batcher.flush()
        return closed is None or self._send(closed, should_stop)

    def _send(self, batch: Batch[Position], should_stop: Callable[[], bool]) -> bool:
        """Send one batch and save the position after it; False if it is too late."""
        if should_stop():
            return False
        self.sender.send(self.pending.group, self.pending.stream, batch.events)
        self.pending = self.pending.at(batch.tag)
        save_pending(self.pending_file, self.pending, owner=self.owner)
        self._events += len(batch.events)
        self._batches += 1
        return True

    def _record_failure(self, message: str) -> None:
        """Count a failed attempt in the pending file (best effort)."""
        self.pending = replace(self.pending, attempts=self.pending.attempts + 1, last_error=message)
        with contextlib.suppress(CronsyncError):
            save_pending(self.pending_file, self.pending, owner=self.owner)

    def _discard(self) -> None:
        """Remove the pending file: the whole log is delivered."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pending_file)


def _owner_to_keep(info: os.stat_result) -> Optional[tuple[int, int]]:
    """Return the pending file's owner when we run as root (so rewrites keep it)."""
    return (info.st_uid, info.st_gid) if os.geteuid() == 0 else None


def _open_log(
    pending_file: Path, pending: Pending, drop_after: Optional[float]
) -> Union[tuple[int, os.stat_result], DeliveryResult]:
    """Open the log of ``pending`` (owned by the pending file's owner).

    Returns:
        The descriptor and the pending file's status, or the result when it cannot be
        opened. When the log is gone and the pending file has not changed for
        ``drop_after`` seconds, the pending file is dropped (retention removed the log).
    """
    try:
        info = os.lstat(pending_file)
    except OSError:
        return DeliveryResult(complete=True)  # delivered and removed meanwhile
    try:
        return open_log(Path(pending.log_path), info.st_uid), info
    except FileNotFoundError:
        if drop_after is None or time.time() - info.st_mtime <= drop_after:
            return DeliveryResult(error=f"{pending.log_path} does not exist")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pending_file)
        return DeliveryResult(error=f"{pending.log_path} is gone; its delivery was dropped")
    except OSError as exc:
        return DeliveryResult(error=one_line(f"cannot open {pending.log_path}: {exc}"))


def open_delivery(
    pending_file: Path, sender: LogsSender, *, drop_after: Optional[float] = None
) -> Union[Delivery, DeliveryResult]:
    """Load ``pending_file``, open and lock its log.

    Args:
        pending_file: the pending file.
        sender: where the delivery will send.
        drop_after: drop a pending file whose log is gone once the file is this many
            seconds old (None: never; a live run's log may not be created yet).

    Returns:
        The delivery, holding the lock; or the result when there is nothing to do now
        (busy, vanished, unreadable, log gone).
    """
    pending = load_pending(pending_file)
    if pending is None:
        if not os.path.lexists(pending_file):
            return DeliveryResult(complete=True)
        return DeliveryResult(error=f"{pending_file}: not a readable pending delivery")
    opened = _open_log(pending_file, pending, drop_after)
    if isinstance(opened, DeliveryResult):
        return opened
    fd, info = opened
    delivery = Delivery(pending_file, pending, fd, sender, _owner_to_keep(info))
    try:
        if not try_lock(fd):
            delivery.close()
            return DeliveryResult(busy=True)
    except OSError as exc:
        delivery.close()
        return DeliveryResult(error=one_line(f"cannot lock {pending.log_path}: {exc}"))
    reloaded = load_pending(pending_file)  # it may have moved on before we got the lock
    if reloaded is None or reloaded.log_path != pending.log_path:
        delivery.close()
        return DeliveryResult(complete=reloaded is None)
    delivery.pending = reloaded
    return delivery
