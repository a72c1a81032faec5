"""One delivery of one pending file: the log read from its saved position, under its lock.

:func:`open_delivery` loads a pending file from its (open) :class:`PendingDir`, checks
whose it is, aims it at the host's group and stream, opens its log and takes the log's
delivery lock; :meth:`Delivery.run` sends what the log holds past the saved position,
batch by batch.

Before a batch is sent, the pending file records it as in flight (with the position
reached so far); a delivery that finds a batch in flight (the last one crashed, or its
reply was lost and the stream could not be read) first reads the batch again from the
log and asks the stream whether it arrived (:meth:`LogsSender.find_batch`), and sends it
only when it did not: nothing is stored twice, nothing is skipped. The position after
a batch is saved with the next batch's in-flight record, or at the end of the run.
Used by :mod:`cronsync.cloud.logs` (``deliver``, ``flush_pending`` and the shim's live
forwarder).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Union

from cronsync.cloud.batch import Batch, Batcher, Event, Position
from cronsync.cloud.failures import DeliveryError, one_line
from cronsync.cloud.logreader import log_mtime, open_log, read_pieces, try_lock
from cronsync.cloud.pending import InFlight, Pending
from cronsync.cloud.send import LogsSender
from cronsync.cloud.spool import PendingDir
from cronsync.core.errors import CronsyncError

# Where a run's log goes: (log group, stream).
Target = tuple[str, str]


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
        spool, name: the pending file: its open directory (the caller closes it, after
            this delivery) and its name there.
        pending: its content.
        fd: the open, locked log.
        sender: where to send.
        owner: ``(uid, gid)`` to give the rewritten pending file (root delivering a
            job user's file keeps it theirs), or None.
        target: the group and stream to send to (what the pending file names when
            None; :func:`open_delivery` aims the file at it).
    """

    def __init__(
        self,
        spool: PendingDir,
        name: str,
        pending: Pending,
        fd: int,
        sender: LogsSender,
        owner: Optional[tuple[int, int]] = None,
        target: Optional[Target] = None,
    ) -> None:
        self.spool = spool
        self.name = name
        self.owner = owner
        self.pending = pending
        self.target = target or (pending.group, pending.stream)
        self.fd = fd
        self.sender = sender
        self._events = 0
        self._batches = 0
        self._unsaved = False

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
            self.spool.save(self.name, self.pending, self.owner)

    def abandoned(self, stale_after: float) -> bool:
        """Whether the log is unfinished but has not grown for ``stale_after`` seconds."""
        return not self.pending.finished and time.time() - log_mtime(self.fd) > stale_after

    def run(self, should_stop: Callable[[], bool]) -> DeliveryResult:
        """Send what the log holds past the saved position, batch by batch (after
        finding out whether a batch left in flight arrived).

        Returns:
            The result; a failure is recorded in the pending file (attempts, last_error).
        """
        self._events = self._batches = 0
        rejected = self.sender.rejected_events
        try:
            self.sender.assume_stream_end(*self.target, self.pending.stream_end)
            if self.pending.in_flight is not None:
                self._settle(self.pending.in_flight)
            reached_end = self._send_all(should_stop)
            complete = reached_end and self.pending.finished
            if complete:
                self._discard()
            elif self._unsaved:
                self._save()
            return self._result(rejected, complete=complete, stopped=not reached_end)
        except DeliveryError as exc:
            self._record_failure(exc.message)
            return self._result(rejected, error=exc.message, unreachable=exc.unreachable)
        except (CronsyncError, OSError) as exc:
            if self._unsaved:
                with contextlib.suppress(CronsyncError):
                    self._save()
            return self._result(rejected, error=one_line(f"{self.pending.log_path}: {exc}"))

    def _result(self, rejected_before: int, **fields: Any) -> DeliveryResult:
        """Return a result with this run's counts and ``fields``."""
        rejected = self.sender.rejected_events - rejected_before
        return DeliveryResult(self._events, self._batches, rejected, **fields)

    def _save(self) -> None:
        """Write the pending file as it is now.

        Raises:
            InstallError: it could not be written.
        """
        self.spool.save(self.name, self.pending, self.owner)
        self._unsaved = False

    def _tagged_events(self, start: Position) -> Iterator[tuple[Event, Position]]:
        """Yield the log's events from ``start``, each with the position after it."""
        for piece in read_pieces(self.fd, start, final=self.pending.finished):
            events = piece.events()
            last = len(events) - 1
            for index in range(piece.start.skip, len(events)):
                tag = piece.after if index == last else piece.start._replace(skip=index + 1)
                yield events[index], tag

    def _settle(self, flight: InFlight) -> None:
        """Find out whether the batch left in flight arrived; move past it if so.

        Raises:
            DeliveryError: the stream cannot be read now (the batch stays in flight).
            OSError: the log could not be read.
        """
        group, stream = self.target
        if self.sender.find_batch(group, stream, self._rebuild(flight)):
            self.pending = self.pending.at(flight.after)
        end = self.sender.stream_end(group, stream)
        self.pending = replace(self.pending, stream_end=end, in_flight=None)
        self._unsaved = True

    def _rebuild(self, flight: InFlight) -> Optional[list[Event]]:
        """Return the batch in flight as it was sent, read again from the log (None
        when the log does not give the same batch back)."""
        batcher: Batcher[Position] = Batcher(max_events=flight.events, floor_ms=flight.first_ms)
        batch = None
        for event, tag in self._tagged_events(self.pending.position):
            batch = batcher.add(event, tag)
            if batch is not None:
                break
        else:
            batch = batcher.flush()
        if batch is None or (len(batch.events), batch.tag) != (flight.events, flight.after):
            return None
        return batch.events if batch.events[0].timestamp_ms == flight.first_ms else None

    def _send_all(self, should_stop: Callable[[], bool]) -> bool:
        """Send every event past the saved position; False when stopped by the deadline.

        Timestamps never go below the newest already in the stream (the batcher's
        floor), so the stream stays in the order it was sent in.
        """
        end = self.sender.stream_end(*self.target)
        batcher: Batcher[Position] = Batcher(floor_ms=None if end is None else end.last_ms)
        for event, tag in self._tagged_events(self.pending.position):
            closed = batcher.add(event, tag)
            if closed is not None and not self._send(closed, should_stop):
                return False
        closed = batcher.flush()
        return closed is None or self._send(closed, should_stop)

    def _send(self, batch: Batch[Position], should_stop: Callable[[], bool]) -> bool:
        """Send one batch, recorded in flight first; False if it is too late.

        Raises:
            DeliveryError: it was not stored (still in flight when it may have been).
            InstallError: the pending file could not be saved.
        """
        if should_stop():
            return False
        group, stream = self.target
        flight = InFlight(len(batch.events), batch.events[0].timestamp_ms, batch.tag)
        self.pending = replace(self.pending, in_flight=flight)
        self._save()
        try:
            self.sender.send(group, stream, batch.events)
        except DeliveryError as exc:
            if not exc.in_doubt:
                self.pending = replace(self.pending, in_flight=None)
            raise
        self.pending = self.pending.delivered(batch.tag, self.sender.stream_end(group, stream))
        self._unsaved = True
        self._events += len(batch.events)
        self._batches += 1
        return True

    def _record_failure(self, message: str) -> None:
        """Count a failed attempt in the pending file (best effort)."""
        self.pending = replace(self.pending, attempts=self.pending.attempts + 1, last_error=message)
        with contextlib.suppress(CronsyncError):
            self.spool.save(self.name, self.pending, self.owner)

    def _discard(self) -> None:
        """Remove the pending file: the whole log is delivered."""
        with contextlib.suppress(FileNotFoundError):
            self.spool.unlink(self.name)


def _owner_to_keep(info: os.stat_result) -> Optional[tuple[int, int]]:
    """Return the pending file's owner when we run as root (so rewrites keep it)."""
    return (info.st_uid, info.st_gid) if os.geteuid() == 0 else None


def _refusal(
    spool: PendingDir, pending: Pending, info: os.stat_result, target: Optional[Target]
) -> Optional[str]:
    """Return why the pending file must not be delivered, or None.

    Its owner must own its directory (or root must: a file another user slipped into a
    job user's directory is not that job's).
    """
    if spool.owner_uid not in (0, info.st_uid):
        return f"refused: owned by uid {info.st_uid}, its directory by uid {spool.owner_uid}"
    return None


def aimed_at(pending: Pending, target: Optional[Target]) -> Pending:
    """Return ``pending`` sending to ``target`` (when given) whatever group and stream
    it names: the file is its user's to write, where it goes is the host's to say. A
    file written before the host was renamed or the log group changed is delivered to
    the stream its run has now, not left behind."""
    if target is None or (pending.group, pending.stream) == target:
        return pending
    # what the file knows of its stream, and its batch in flight, concern another one
    return replace(pending, group=target[0], stream=target[1], stream_end=None, in_flight=None)


def _open_log(
    spool: PendingDir,
    name: str,
    pending: Pending,
    info: os.stat_result,
    drop_after: Optional[float],
) -> Union[int, DeliveryResult]:
    """Open the log of ``pending`` (owned by the pending file's owner, ``info``).

    Returns:
        The descriptor, or the result when it cannot be opened. When the log is gone
        and the pending file has not changed for ``drop_after`` seconds, the pending
        file is dropped (retention removed the log).
    """
    try:
        return open_log(Path(pending.log_path), info.st_uid)
    except FileNotFoundError:
        if drop_after is None or time.time() - info.st_mtime <= drop_after:
            return DeliveryResult(error=f"{pending.log_path} does not exist")
        try:
            with contextlib.suppress(FileNotFoundError):
                spool.unlink(name)
        except (CronsyncError, OSError) as exc:
            return DeliveryResult(error=one_line(f"{pending.log_path} is gone: {exc}"))
        return DeliveryResult(error=f"{pending.log_path} is gone; its delivery was dropped")
    except OSError as exc:
        return DeliveryResult(error=one_line(f"cannot open {pending.log_path}: {exc}"))


def open_delivery(
    spool: PendingDir,
    name: str,
    sender: LogsSender,
    *,
    target: Optional[Target] = None,
    drop_after: Optional[float] = None,
) -> Union[Delivery, DeliveryResult]:
    """Load the pending file ``name`` of ``spool``, open and lock its log.

    Args:
        spool: the pending file's directory, open (the caller closes it after the
            delivery).
        name: the pending file's name.
        sender: where the delivery will send.
        target: the ``(group, stream)`` to send to whatever the file names (it is
            rewritten to name them), or None to trust the file (its own user delivering).
        drop_after: drop a pending file whose log is gone once the file is this many
            seconds old (None: never; a live run's log may not be created yet).

    Returns:
        The delivery, holding the lock; or the result when there is nothing to do now
        (busy, vanished, unreadable, refused, log gone).
    """
    loaded = spool.load(name)
    if loaded is None:
        if not spool.exists(name):
            return DeliveryResult(complete=True)
        return DeliveryResult(error=f"{spool.label}/{name}: not a readable pending delivery")
    pending, info = loaded
    refused = _refusal(spool, pending, info, target)
    if refused is not None:
        return DeliveryResult(error=refused)
    opened = _open_log(spool, name, pending, info, drop_after)
    if isinstance(opened, DeliveryResult):
        return opened
    delivery = Delivery(
        spool, name, aimed_at(pending, target), opened, sender, _owner_to_keep(info), target
    )
    try:
        if not try_lock(opened):
            delivery.close()
            return DeliveryResult(busy=True)
    except OSError as exc:
        delivery.close()
        return DeliveryResult(error=one_line(f"cannot lock {pending.log_path}: {exc}"))
    reloaded = spool.load(name)  # it may have moved on before we got the lock
    if reloaded is None or reloaded[0].log_path != pending.log_path:
        delivery.close()
        return DeliveryResult(complete=reloaded is None)
    if reloaded[1].st_uid != info.st_uid:
        delivery.close()
        return DeliveryResult(error="refused: the pending file changed owner")
    refused = _refusal(spool, reloaded[0], reloaded[1], target)
    if refused is not None:
        delivery.close()
        return DeliveryResult(error=refused)
    delivery.pending = aimed_at(reloaded[0], target)
    return delivery
