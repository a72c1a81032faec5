"""Forwarding run logs to CloudWatch Logs: delivery from the spool, the live forwarder.

The run's local log is the durable spool (see :mod:`cronsync.cloud.spool`): delivery
reads it from the position saved in its pending file, sends batch by batch (see
:mod:`cronsync.cloud.batch`, :mod:`cronsync.cloud.send`), records each batch in flight
before sending it and the new position once the service took it. A batch whose outcome
is unknown (a crash, a lost reply) is looked for in its stream before it is sent again
(:mod:`cronsync.cloud.tailcheck`): each event is stored once, in order per stream, as
long as the stream can be read (``logs:GetLogEvents``); when it cannot, the batch is
sent again (at least once). An unreachable service loses nothing: the rest stays
pending for ``cronsync flush`` or the next run.

Root's flush goes only through real directories held open (:class:`PendingDir`), and
delivers a pending file only to the configured group and the stream of its own job
directory and run (``HOST/JOB/RUN-ID``), whatever the file says: job users write their
pending files.

boto3 is imported only when a batch is first sent, and in the shim that happens in the
forwarder's own thread, so a job never waits for it. Nothing here raises for a
delivery failure: results say what happened.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from cronsync.cloud.delivery import Delivery, DeliveryResult, Target, open_delivery
from cronsync.cloud.failures import DeliveryError, one_line
from cronsync.cloud.pending import Pending
from cronsync.cloud.send import LogsSender
from cronsync.cloud.spool import (
    PendingDir,
    UnsafeEntry,
    load_pending,
    pending_path,
    save_pending,
)
from cronsync.cloud.spoolstart import PENDING_DIR, stream_name
from cronsync.core.errors import CronsyncError

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
    "stream_name",
]

# A run whose delivery is not marked finished, whose log nobody holds and which has not
# grown for this long lost its shim (killed): flush treats its log as complete.
STALE_AFTER = 300.0
# How long finish() waits past its deadline for a send already under way.
FINISH_GRACE = 0.25


def _deliver_file(
    spool: PendingDir,
    name: str,
    sender: LogsSender,
    deadline: float,
    stale_after: Optional[float],
    target: Optional[Target],
) -> DeliveryResult:
    """Deliver the pending file ``name`` of ``spool`` until ``deadline`` (see
    :func:`deliver`)."""
    opened = open_delivery(spool, name, sender, target=target, drop_after=stale_after)
    if isinstance(opened, DeliveryResult):
        return opened
    try:
        if stale_after is not None and opened.abandoned(stale_after):
            opened.mark_finished()
        return opened.run(lambda: time.monotonic() > deadline)
    except (CronsyncError, OSError) as exc:
        return DeliveryResult(error=one_line(f"{spool.label}/{name}: {exc}"))
    finally:
        opened.close()


def _open_spool(pending_file: Path) -> Union[PendingDir, DeliveryResult]:
    """Open the directory of ``pending_file``, or return the result when it cannot be."""
    try:
        return PendingDir.containing(pending_file)
    except FileNotFoundError:
        return DeliveryResult(complete=True)  # nothing pending there
    except (OSError, ValueError) as exc:
        return DeliveryResult(error=one_line(f"cannot open {pending_file.parent}: {exc}"))


def deliver(
    pending_file: Path, sender: LogsSender, deadline: float, *, target: Optional[Target] = None
) -> DeliveryResult:
    """Deliver the run log of ``pending_file`` from its saved position.

    Sends batch by batch (a batch left in flight by an earlier delivery is looked for
    in the stream first), saving the position as the service takes them; when the run
    is finished and everything is delivered, removes the pending file.

    Args:
        pending_file: a file written by :func:`save_pending` (its directory must not be
            a symbolic link).
        sender: where to send.
        deadline: a ``time.monotonic()`` value; no batch is sent after it.
        target: the ``(group, stream)`` to send to whatever the file names, or None
            to trust the file (its own user delivering it).

    Returns:
        What was done. Never raises for a delivery failure: the error is in the result
        and recorded in the pending file (attempts, last_error), which is kept.
    """
    spool = _open_spool(pending_file)
    if isinstance(spool, DeliveryResult):
        return spool
    with spool:
        return _deliver_file(spool, pending_file.name, sender, deadline, None, target)


@dataclass(frozen=True)
class FlushSummary:
    """What :func:`flush_pending` did.

    Attributes:
        delivered: pending files completed (removed).
        left: pending files still there (not finished, failed, busy, or out of time).
        errors: pending files whose delivery failed or was refused this time, and job
            directories refused (a symbolic link where a directory belongs).
        skipped: files not owned by ``only_uid``, or not pending files at all.
        sent_events: events the service took.
        messages: one line per error, ``JOB/RUN_ID: reason`` (``JOB: reason`` for a
            refused directory).
    """

    delivered: int = 0
    left: int = 0
    errors: int = 0
    skipped: int = 0
    sent_events: int = 0
    messages: tuple[str, ...] = ()


def _job_names(runs_dir: Path) -> list[str]:
    """Return the entries of ``runs_dir`` (none when it cannot be listed)."""
    try:
        return sorted(os.listdir(runs_dir))
    except OSError:
        return []


def _scan(
    runs_dir: Path, only_uid: Optional[int]
) -> tuple[list[tuple[int, str, str]], int, list[str]]:
    """Find the pending files under ``runs_dir``, never through a symbolic link.

    Returns:
        ``(changed_ms, job, name)`` of each file to deliver, oldest first; how many
        were skipped; one message per refused directory.
    """
    found: list[tuple[int, str, str]] = []
    skipped = 0
    messages: list[str] = []
    for job in _job_names(runs_dir):
        try:
            spool = PendingDir.open(runs_dir, job, PENDING_DIR)
        except UnsafeEntry as exc:
            messages.append(f"{job}: refused: {exc}")
            continue
        except PermissionError as exc:
            if only_uid is None:  # a job's shim cannot look into other users' files
                messages.append(one_line(f"{job}: {exc}"))
            continue
        except OSError:  # not a job directory, or nothing pending
            continue
        with spool:
            for name in spool.names():
                if name.startswith(".") or not name.endswith(".json"):
                    continue
                loaded = spool.load(name)
                if loaded is None or (only_uid is not None and loaded[1].st_uid != only_uid):
                    skipped += 1
                    continue
                # by when the file last changed as the kernel says (its ``created_ms``
                # is its user's to write: a user must not put its files first forever)
                found.append((loaded[1].st_ctime_ns // 1_000_000, job, name))
    found.sort()
    return found, skipped, messages


def flush_pending(
    runs_dir: Path,
    sender: LogsSender,
    deadline: float,
    *,
    host: str,
    log_group: str,
    only_uid: Optional[int] = None,
    stale_after: float = STALE_AFTER,
) -> FlushSummary:
    """Deliver every pending file under ``runs_dir/*/pending/``, oldest first.

    One failing file does not stop the others, but once the service is unreachable
    the rest are left for later (each would only wait for its own timeouts).

    Every job directory and its ``pending`` directory must be real directories (a
    symbolic link is refused), and all access to a pending file goes through its
    directory held open, so root never writes or removes anything elsewhere. A
    pending file is delivered only to ``log_group`` and the stream of its own job and
    run, ``HOST/JOB/RUN-ID``, whatever group or stream it names (a file written before
    the host was renamed or the log group changed is not left behind).

    Args:
        runs_dir: the runs directory (one subdirectory per job).
        sender: where to send.
        deadline: a ``time.monotonic()`` value; nothing is sent after it.
        host: this host's name (the first part of every stream).
        log_group: the configured log group, the only one delivered to.
        only_uid: deliver only files owned by this user (a job's shim can update only
            its own user's files); None for all.
        stale_after: seconds after which an unfinished, unlocked, unchanged log is
            treated as finished (its shim died).

    Returns:
        The counts (a refused file or directory is an error). Never raises.
    """
    try:
        files, skipped, messages = _scan(runs_dir, only_uid)
    except Exception as exc:  # never raises
        files, skipped, messages = [], 0, [one_line(f"{runs_dir}: {type(exc).__name__}: {exc}")]
    delivered = left = sent = 0
    reachable = True
    for _created, job, name in files:
        if not reachable or time.monotonic() > deadline:
            left += 1
            continue
        run_id = name[: -len(".json")]
        target = (log_group, stream_name(host, job, run_id))
        try:
            with PendingDir.open(runs_dir, job, PENDING_DIR) as spool:
                result = _deliver_file(spool, name, sender, deadline, stale_after, target)
        except FileNotFoundError:
            result = DeliveryResult(complete=True)  # removed meanwhile
        except UnsafeEntry as exc:  # swapped for a symlink since the scan
            result = DeliveryResult(error=f"refused: {exc}")
        except Exception as exc:  # one broken file must not stop the others
            result = DeliveryResult(error=one_line(f"{type(exc).__name__}: {exc}"))
        sent += result.sent_events
        delivered += result.complete
        left += not result.complete
        if result.error is not None:
            messages.append(f"{job}/{run_id}: {result.error}")
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
        target: the ``(group, stream)`` to send to whatever the file names, or None to
            trust the file.
        gate: shared by forwarders that must not read and send all at once (the
            broker's: memory stays bounded); a round waits for it.
        round_seconds: a round holding the gate sends for at most this long, then
            lets the others have a turn (None: until the log's end).
    """

    def __init__(
        self,
        pending_file: Path,
        sender_factory: Callable[[], LogsSender],
        poll_interval: float = 0.5,
        *,
        target: Optional[Target] = None,
        gate: Optional[threading.Semaphore] = None,
        round_seconds: Optional[float] = None,
    ) -> None:
        self.pending_file = pending_file
        self.target = target
        self._gate = gate
        self._round_seconds = round_seconds
        self._spool: Optional[PendingDir] = None
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
                    opened = self._open(sender)
                    if isinstance(opened, DeliveryResult):
                        not_opened = opened  # busy or unreadable: try again next round
                    else:
                        delivery = opened
                more = False  # the round's time ran out before the log's end: go on
                if delivery is not None:
                    result = self._round(delivery, finishing, total.error is None)
                    total = total.then(result)
                    more = result.stopped and not self._should_stop()
                if finishing and not more:
                    return total if delivery is not None else not_opened
                if not more:
                    self._wake.wait(self._poll_interval)
                    self._wake.clear()
        finally:
            if delivery is not None:
                delivery.close()
            if self._spool is not None:
                self._spool.close()
                self._spool = None

    def _open(self, sender: LogsSender) -> Union[Delivery, DeliveryResult]:
        """Open the pending file's directory (once, held for the run) and the delivery."""
        if self._spool is None:
            spool = _open_spool(self.pending_file)
            if isinstance(spool, DeliveryResult):
                return spool
            self._spool = spool
        return open_delivery(self._spool, self.pending_file.name, sender, target=self.target)

    def _round(self, delivery: Delivery, finishing: bool, sending: bool) -> DeliveryResult:
        """One look at the log: mark it finished if so, then send unless failed before."""
        try:
            if finishing:
                delivery.mark_finished()
        except CronsyncError as exc:
            return DeliveryResult(error=exc.message)
        if not sending:
            return DeliveryResult()
        if self._gate is None:
            return self._send_round(delivery)
        wait = self._deadline - time.monotonic() if finishing else self._poll_interval
        if not self._gate.acquire(timeout=max(0.0, wait)):
            return DeliveryResult(stopped=finishing)  # others' turn; try again
        try:
            return self._send_round(delivery)
        finally:
            self._gate.release()

    def _send_round(self, delivery: Delivery) -> DeliveryResult:
        """Send what the log holds, for at most ``round_seconds`` (or the deadline)."""
        budget = self._round_seconds
        if budget is None:
            return delivery.run(self._should_stop)
        ends = time.monotonic() + budget
        return delivery.run(lambda: self._should_stop() or time.monotonic() > ends)
