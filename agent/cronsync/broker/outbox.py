"""Shipping job output and metrics from the local spool, on the privileged side.

The shim writes a run's output into its local log (the spool) with a pending file
beside it, and tells the broker a run started: :meth:`Outbox.started` starts a live
forwarder for that run (CloudWatch Logs within a poll interval of a line being
written). When the shim says the run ended, :meth:`Outbox.ended` queues the run for
a small pool of workers, which let its forwarder deliver the rest and publish its
metrics (:mod:`cronsync.broker.runmetrics`). Whatever is not delivered stays pending
for :meth:`Outbox.flush` (at the broker's start, every :data:`FLUSH_EVERY` seconds,
``cronsync flush``). A forwarder whose run went quiet (no output for
:data:`QUIET_AFTER` seconds, the shim killed say) is stopped; flush picks it up later.

One user cannot take the broker from the others: at most :data:`MAX_LIVE_PER_UID` of
its runs are forwarded live and :data:`MAX_ENDING_PER_UID` wait for their end (the rest
go through the spool, later); at most :data:`READERS` forwarders read a log at a time,
each for a round of at most :data:`ROUND_SECONDS`, so memory stays bounded.

Nothing is trusted from the job user's files without a check: the pending file must
belong to the owner of its job directory, its group and stream are the host's, the log
is opened following no link the user could plant (see :mod:`cronsync.cloud.spool`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from cronsync.broker.access import InstalledJobs
from cronsync.broker.journal import Log, log_to_stderr
from cronsync.broker.runmetrics import LEFT_AFTER, RunMetrics
from cronsync.cloud.logs import LiveForwarder, LogsSender, flush_pending
from cronsync.cloud.spoolstart import PENDING_DIR, stream_name
from cronsync.core import brokerwire
from cronsync.core.model import RepoSettings
from cronsync.host.config import AgentConfig
from cronsync.host.logline import ERROR, WARNING
from cronsync.run.jobspec import JobSpec, ShimError

FINISH_SECONDS = 60.0  # an ended run's rest gets this long, then flush takes over
QUIET_AFTER = 300.0
FLUSH_EVERY = 300.0
MAX_LIVE_PER_UID = 16
MAX_LIVE = 512
MAX_ENDING_PER_UID = 64
MAX_ENDING = 2048
ENDING_WORKERS = 2
READERS = 2  # forwarders reading a log (4 MiB at a time) and sending, at once
ROUND_SECONDS = 2.0  # then a reader lets the others have a turn

RunKey = tuple[str, str]  # (job, run id)
Ending = tuple[JobSpec, str, Optional[LiveForwarder]]  # a run to finish: job, run id, forwarder


class _Active:
    """A run being forwarded: its forwarder, its owner's uid, its log's last change."""

    def __init__(self, forwarder: LiveForwarder, uid: int, log_path: str) -> None:
        self.forwarder = forwarder
        self.uid = uid
        self.log_path = log_path
        self.seen = time.monotonic()
        self.size = -1


class Outbox:
    """Ships runs' output and metrics for the broker.

    Args:
        config: the host's agent config (paths, host name, AWS, what goes to CloudWatch).
        jobs: the installed release (its log group).
        log: where delivery problems are logged.
        poll_interval: seconds between looks at a live run's log.
    """

    def __init__(
        self,
        config: AgentConfig,
        jobs: InstalledJobs,
        log: Log = log_to_stderr,
        poll_interval: float = 0.5,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.runs_dir = config.paths.runs_dir
        self.log = log
        self.poll_interval = poll_interval
        self._active: dict[RunKey, _Active] = {}
        self._lock = threading.Lock()
        self._sender_lock = threading.Lock()
        self._sender: Optional[LogsSender] = None
        self.metrics = RunMetrics(config, jobs, log)
        self._readers = threading.BoundedSemaphore(READERS)
        self._ending: dict[RunKey, int] = {}  # queued or being finished -> uid
        self._queue: queue.Queue[Optional[Ending]] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flushed_at = time.monotonic()  # the daemon flushes once as it starts

    # -- requests -------------------------------------------------------------------

    def started(self, job: JobSpec, run_id: str, uid: int) -> Mapping[str, Any]:
        """Start forwarding run ``run_id`` of ``job`` (its user ``uid`` asked)."""
        if not self.config.run.logs_cloudwatch:
            reason = "this host's agent.toml does not send job output to CloudWatch ([logs])"
            return brokerwire.success(shipping=False, reason=reason)
        key = (job.name, run_id)
        with self._lock:
            if key in self._active:
                return brokerwire.success(shipping=True)
            mine = sum(1 for active in self._active.values() if active.uid == uid)
            if mine >= MAX_LIVE_PER_UID or len(self._active) >= MAX_LIVE:
                reason = "too many runs are being forwarded now; delivered later from the spool"
                self.log(f"not forwarding {job.name}/{run_id} live: {reason}", WARNING)
                return brokerwire.success(shipping=False, reason=reason)
            forwarder = self._forwarder(job, run_id)
            self._active[key] = _Active(forwarder, uid, self._log_path(job, run_id))
        forwarder.start()
        return brokerwire.success(shipping=True)

    def ended(self, job: JobSpec, run_id: str, uid: int) -> Mapping[str, Any]:
        """Queue run ``run_id`` of ``job``: its rest delivered, its metrics published
        by a worker. Over the limits, the run is left to the spool (the shim marks it)."""
        key = (job.name, run_id)
        with self._lock:
            if key in self._ending:
                return brokerwire.success(shipping=True)
            mine = sum(1 for owner in self._ending.values() if owner == uid)
            if mine >= MAX_ENDING_PER_UID or len(self._ending) >= MAX_ENDING:
                reason = "too many runs are ending now; shipped later from the spool"
                return brokerwire.success(shipping=False, reason=reason)
            self._ending[key] = uid
            active = self._active.pop(key, None)
        forwarder = active.forwarder if active is not None else None
        if forwarder is None and self.config.run.logs_cloudwatch:
            forwarder = self._forwarder(job, run_id)  # its start was missed (broker down)
        self._queue.put((job, run_id, forwarder))
        return brokerwire.success(shipping=True)  # its rest and its metrics, as configured

    # -- background -----------------------------------------------------------------

    def start(self) -> None:
        """Start the housekeeping thread (flush what is pending, stop quiet forwarders,
        publish left metrics) and the workers that finish ended runs."""
        threads = [threading.Thread(target=self._housekeeping, name="cronsync-outbox")]
        threads += [
            threading.Thread(target=self._finish_ended, name=f"cronsync-ended-{n}")
            for n in range(ENDING_WORKERS)
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        self._threads = threads

    def stop(self, seconds: float = 5.0) -> None:
        """Give every live forwarder ``seconds`` to deliver, then stop them all (what is
        left stays in the spool)."""
        self._stopping.set()
        for _ in range(ENDING_WORKERS):
            self._queue.put(None)  # wakes a worker to stop
        with self._lock:
            active, self._active = list(self._active.values()), {}
        deadline = time.monotonic() + seconds
        for run in active:
            run.forwarder.finish(deadline)

    @property
    def active_runs(self) -> int:
        """How many runs are being forwarded or finished now (a socket-activated broker
        stays up while there are any)."""
        with self._lock:
            return len(self._active) + len(self._ending)

    def flush(self, seconds: float = 60.0) -> dict[str, Any]:
        """Deliver what runs left pending (oldest first) for at most ``seconds``.

        Returns:
            The counts of :func:`cronsync.cloud.logs.flush_pending`, as a dict.
        """
        if not self.config.run.logs_cloudwatch:
            return {}
        try:
            settings = self.jobs.release().settings
        except ShimError:
            return {}  # nothing installed: no run could have spooled anything
        summary = flush_pending(
            self.runs_dir,
            self._get_sender(),
            time.monotonic() + seconds,
            host=self.config.host.name,
            log_group=str(settings.get("log_group") or RepoSettings.log_group),
        )
        for message in summary.messages:
            self.log(f"delivery: {message}", WARNING)  # each is a problem
        return {"delivered": summary.delivered, "left": summary.left, "errors": summary.errors}

    def _housekeeping(self) -> None:
        while not self._stopping.wait(min(self.poll_interval * 20, 10.0)):
            try:
                self._stop_quiet()
                if time.monotonic() - self._flushed_at >= FLUSH_EVERY:
                    self._flushed_at = time.monotonic()
                    self.flush()
                    self.publish_left_metrics()
            except Exception as exc:  # a bug must not end shipping for good: say it
                self.log(f"outbox: {type(exc).__name__}: {exc}", ERROR)

    def publish_left_metrics(self, min_age: float = LEFT_AFTER) -> int:
        """Publish the metrics of runs whose marker is still there, older than
        ``min_age`` seconds (see :meth:`~cronsync.broker.runmetrics.RunMetrics.publish_left`;
        a broker that just started passes 0: no run's end is on its way to it)."""
        with self._lock:
            busy = set(self._ending)
        return self.metrics.publish_left(busy, min_age)

    def _stop_quiet(self) -> None:
        """Finish forwarders whose run's log has not grown for QUIET_AFTER seconds."""
        now = time.monotonic()
        quiet: list[_Active] = []
        with self._lock:
            for key, active in list(self._active.items()):
                try:
                    size = os.stat(active.log_path).st_size
                except OSError:
                    size = -2
                if size != active.size:
                    active.size, active.seen = size, now
                elif now - active.seen > QUIET_AFTER:
                    quiet.append(self._active.pop(key))
        for active in quiet:
            active.forwarder.finish(time.monotonic() + 5.0)

    # -- pieces ---------------------------------------------------------------------

    def _finish_ended(self) -> None:
        """A worker: finish ended runs one after the other until stopped."""
        while True:
            item = self._queue.get()
            if item is None or self._stopping.is_set():
                return
            job, run_id, forwarder = item
            try:
                if forwarder is not None:
                    result = forwarder.finish(time.monotonic() + FINISH_SECONDS)
                    if result.error:
                        self.log(
                            f"delivery of {job.name}/{run_id}: {result.error} (left pending)",
                            WARNING,
                        )
                self.metrics.publish_run(job, run_id)
            except Exception as exc:  # a worker must not die: say it, go on
                self.log(f"after {job.name}/{run_id}: {type(exc).__name__}: {exc}", ERROR)
            finally:
                with self._lock:
                    self._ending.pop((job.name, run_id), None)

    def _forwarder(self, job: JobSpec, run_id: str) -> LiveForwarder:
        pending = Path(self.runs_dir, job.name, PENDING_DIR, f"{run_id}.json")
        group = str(job.release.settings.get("log_group") or RepoSettings.log_group)
        target = (group, stream_name(self.config.host.name, job.name, run_id))
        return LiveForwarder(
            pending,
            self._get_sender,
            self.poll_interval,
            target=target,
            gate=self._readers,
            round_seconds=ROUND_SECONDS,
        )

    def _log_path(self, job: JobSpec, run_id: str) -> str:
        log_dir = str(self.config.paths.log_dir)
        return os.path.join(log_dir, job.name, f"{run_id}.log")

    def _get_sender(self) -> LogsSender:
        with self._sender_lock:
            if self._sender is None:
                self._sender = LogsSender(self.config.run.aws)
            return self._sender
