"""Forwarding run logs to CloudWatch Logs: delivery from the spool, the live forwarder.

The run's local log is the durable spool (see :mod:`cronsync.cloudspool`): delivery
reads it from the position saved in its pending file, sends batch by batch (see
:mod:`cronsync.cloudbatch`, :mod:`cronsync.cloudsend`) and saves the new position after
each batch the service took. A crash therefore resends at most the one unacknowledged
batch (at least once, in order per stream); an unreachable service loses nothing: the
rest stays pending for ``cronsync flush`` or the next run.

boto3 is imported only when a batch is first sent, and in the shim that happens in the
forwarder's own thread, so a job never waits for it. Nothing here raises for a
delivery failure: results say what happened.
"""

from __future__ import annotations

import math
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cronsync.clouddelivery import Delivery, DeliveryResult, open_delivery
from cronsync.cloudsend import DeliveryError, LogsSender, one_line
from cronsync.cloudspool import PENDING_DIR, Pending, load_pending, pending_path, save_pending
from cronsync.errors import CronsyncError

__all__ = [
    "DeliveryError",
    "DeliveryResult",
    "FlushSummary",
    "LiveForwarder",
    "LogsSender",
    "Pending",
    "deliver",
    "flush_pending",
    "load_pending",
    "pending_path",
    "save_pending",
]

# A run whose delivery is not marked finished, whose log nobody holds and which has not
# grown for this long lost its shim (killed): flush treats its log as complete.
STALE_AFTER = 300.0
# How long finish() waits past its deadline for a send already under way.
FINISH_GRACE = 0.25


def _deliver_file(
    pending_file: Path, sender: LogsSender, deadline: float, stale_after: Optional[float]
) -> DeliveryResult:
    """Deliver one pending file until ``deadline`` (see :func:`deliver`)."""
    opened = open_delivery(pending_file, sender, drop_after=stale_after)
    if isinstance(opened, DeliveryResult):
        return opened
    try:
        if stale_after is not None and opened.abandoned(stale_after):
            opened.mark_finished()
        return opened.run(lambda: time.monotonic() > deadline)
    except (CronsyncError, OSError) as exc:
        return DeliveryResult(error=one_line(f"{pending_file}: {exc}"))
    finally:
        opened.close()


def deliver(pending_file: Path, sender: LogsSender, deadline: float) -> DeliveryResult:
    """Deliver the run log of ``pending_file`` from its saved position.

    Sends batch by batch, saving the position after each batch the service took; when
    the run is finished and everything is delivered, removes the pending file.

    Args:
        pending_file: a file written by :func:`save_pending`.
        sender: where to send.
        deadline: a ``time.monotonic()`` value; no batch is sent after it.

    Returns:
        What was done. Never raises for a delivery failure: the error is in the result
        and recorded in the pending file (attempts, last_error), which is kept.
    """
    return _deliver_file(pending_file, sender, deadline, stale_after=None)


@dataclass(frozen=True)
class FlushSummary:
    """What :func:`flush_pending` did.

    Attributes:
        delivered: pending files completed (removed).
        left: pending files still there (not finished, failed, busy, or out of time).
        errors: pending files whose delivery failed this time.
        skipped: files not owned by ``only_uid``, or not pending files at all.
        sent_events: events the service took.
        messages: one line per error, ``JOB/RUN_ID: reason``.
    """

    delivered: int = 0
    left: int = 0
    errors: int = 0
    skipped: int = 0
    sent_events: int = 0
    messages: tuple[str, ...] = ()


def _pending_files(runs_dir: Path, only_uid: Optional[int]) -> tuple[list[Path], int]:
    """Return the pending files under ``runs_dir`` oldest first, and how many were skipped."""
    found: list[tuple[int, str, Path]] = []
    skipped = 0
    for path in runs_dir.glob(f"*/{PENDING_DIR}/*.json"):
        if path.name.startswith("."):
            continue
        try:
            info = os.lstat(path)
        except OSError:
            continue
        pending = load_pending(path) if stat.S_ISREG(info.st_mode) else None
        if pending is None or (only_uid is not None and info.st_uid != only_uid):
            skipped += 1
            continue
        found.append((pending.created_ms, str(path), path))
    found.sort()
    return [path for _created, _name, path in found], skipped


def flush_pending(
    runs_dir: Path,
    sender: LogsSender,
    deadline: float,
    *,
    only_uid: Optional[int] = None,
    stale_after: float = STALE_AFTER,
) -> FlushSummary:
    """Deliver every pending file under ``runs_dir/*/pending/``, oldest first.

    One failing file does not stop the others, but once the service is unreachable
    the rest are left for later (each would only wait for its own timeouts).

    Args:
        runs_dir: the runs directory (one subdirectory per job).
        sender: where to send.
        deadline: a ``time.monotonic()`` value; nothing is sent after it.
        only_uid: deliver only files owned by this user (a job's shim can update only
            its own user's files); None for all.
        stale_after: seconds after which an unfinished, unlocked, unchanged log is
            treated as finished (its shim died).

    Returns:
        The counts. Never raises.
    """
    files, skipped = _pending_files(runs_dir, only_uid)
    delivered = left = sent = 0
    messages: list[str] = []
    reachable = True
    for path in files:
        if not reachable or time.monotonic() > deadline:
            left += 1
            continue
        try:
            result = _deliver_file(path, sender, deadline, stale_after)
        except Exception as exc:  # one broken file must not stop the others
            result = DeliveryResult(error=one_line(f"{type(exc).__name__}: {exc}"))
        sent += result.sent_events
        delivered += result.complete
        left += not result.complete
        if result.error is not None:
            messages.append(f"{path.parent.parent.name}/{path.stem}: {result.error}")
        reachable = not result.unreachable
    return FlushSummary(delivered, left, len(messages), skipped, sent, tuple(messages))


class LiveForwarder:
    """Forwards a run's log to CloudWatch Logs while the shim appends to it.

    A daemon thread tails the log (complete lines only) every ``poll_interval`` seconds
    and holds the log's delivery lock for the whole run. On the first delivery error
    it stops sending for this run: the rest stays pending for ``cronsync flush`` or the
    next run, so an unreachable service costs the job nothing.

    Args:
        pending_file: the run's pending file (already saved by the shim).
        sender_factory: makes the sender, called in the forwarder's thread.
        poll_interval: seconds between looks at the log.
    """

    def __init__(
        self,
        pending_file: Path,
        sender_factory: Callable[[], LogsSender],
        poll_interval: float = 0.5,
    ) -> None:
        self.pending_file = pending_file
        self._sender_factory = sender_factory
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._finishing = False
        self._deadline = math.inf
        self._thread: Optional[threading.Thread] = None
        self._result: Optional[DeliveryResult] = None

    def start(self) -> None:
        """Start the background thread (returns at once; boto3 is imported there)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="cronsync-cloudlogs", daemon=True
            )
            self._thread.start()

    def finish(self, deadline: float) -> DeliveryResult:
        """Mark the run finished, deliver what is left until ``deadline``, stop.

        Args:
            deadline: a ``time.monotonic()`` value; returns by then (plus a short grace
                for a send under way), whatever CloudWatch does.

        Returns:
            The whole run's delivery. Never raises.
        """
        try:
            self._deadline = deadline
            self._finishing = True  # set before waking: the thread reads it after waking
            self._wake.set()
            if self._thread is None:
                self._run()
            else:
                self._thread.join(max(0.0, deadline - time.monotonic()) + FINISH_GRACE)
        except Exception as exc:
            return DeliveryResult(error=one_line(f"log forwarding failed: {exc}"))
        result = self._result
        if result is None:
            return DeliveryResult(stopped=True, error="CloudWatch Logs delivery still under way")
        return result

    def _should_stop(self) -> bool:
        """Whether the run is finishing and its deadline has passed."""
        return self._finishing and time.monotonic() > self._deadline

    def _run(self) -> None:
        """The thread's body: forward, and keep the outcome for finish()."""
        try:
            self._result = self._forward()
        except Exception as exc:  # a bug here must never disturb the job
            self._result = DeliveryResult(error=one_line(f"log forwarding failed: {exc!r}"))

    def _forward(self) -> DeliveryResult:
        """Deliver round after round until finished; return the summed result."""
        sender: Optional[LogsSender] = None
        delivery: Optional[Delivery] = None
        not_opened = DeliveryResult()
        total = DeliveryResult()
        try:
            while True:
                finishing = self._finishing
                if delivery is None:
                    sender = sender or self._sender_factory()
                    opened = open_delivery(self.pending_file, sender)
                    if isinstance(opened, DeliveryResult):
                        not_opened = opened  # busy or unreadable: try again next round
                    else:
                        delivery = opened
                if delivery is not None:
                    total = total.then(self._round(delivery, finishing, total.error is None))
                if finishing:
                    return total if delivery is not None else not_opened
                self._wake.wait(self._poll_interval)
                self._wake.clear()
        finally:
            if delivery is not None:
                delivery.close()

    def _round(self, delivery: Delivery, finishing: bool, sending: bool) -> DeliveryResult:
        """One look at the log: mark it finished if so, then send unless failed before."""
        try:
            if finishing:
                delivery.mark_finished()
        except CronsyncError as exc:
            return DeliveryResult(error=exc.message)
        if not sending:
            return DeliveryResult()
        return delivery.run(self._should_stop)
