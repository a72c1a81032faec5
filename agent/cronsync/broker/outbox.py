"""Shipping job output and metrics from the local spool, on the privileged side.

The shim writes a run's output into its local log (the spool) with a pending file
beside it, and tells the broker a run started: :meth:`Outbox.started` starts a live
forwarder for that run (CloudWatch Logs within a poll interval of a line being
written). When the shim says the run ended, :meth:`Outbox.ended` lets the forwarder
deliver the rest and publishes the job's metrics from its run record. Whatever is not
delivered stays pending for :meth:`Outbox.flush` (at the broker's start, every
:data:`FLUSH_EVERY` seconds, ``cronsync flush``). A forwarder whose run went quiet
(no record change and no output for :data:`QUIET_AFTER` seconds, the shim killed say)
is stopped; flush picks the run up later.

Nothing is trusted from the job user's files without a check: the pending file must
belong to the owner of its job directory, its group and stream are the host's, the log
is opened following no link the user could plant (see :mod:`cronsync.cloud.spool`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from cronsync.broker.access import InstalledJobs
from cronsync.broker.journal import Log, log_to_stderr
from cronsync.cloud.logs import LiveForwarder, LogsSender, flush_pending
from cronsync.cloud.metrics import job_metrics, metrics_client, publish
from cronsync.cloud.pending import stream_name
from cronsync.cloud.spool import PENDING_DIR, PendingDir
from cronsync.core import brokerwire
from cronsync.core.errors import CronsyncError
from cronsync.core.model import RepoSettings
from cronsync.host.config import AgentConfig
from cronsync.run.jobspec import JobSpec, Release, ShimError, find_job
from cronsync.run.record import RUNNING, SKIPPED, SUCCEEDED
from cronsync.run.store import read_record

FINISH_SECONDS = 60.0  # an ended run's rest gets this long, then flush takes over
QUIET_AFTER = 300.0
FLUSH_EVERY = 300.0
MAX_ACTIVE_PER_UID = 256
MAX_ACTIVE = 4096

RunKey = tuple[str, str]  # (job, run id)


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
        self._metrics_client: Any = None
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._flushed_at = -FLUSH_EVERY

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
            if mine >= MAX_ACTIVE_PER_UID or len(self._active) >= MAX_ACTIVE:
                reason = "too many runs are being forwarded now; delivered later from the spool"
                self.log(f"not forwarding {job.name}/{run_id} live: {reason}")
                return brokerwire.success(shipping=False, reason=reason)
            forwarder = self._forwarder(job, run_id)
            self._active[key] = _Active(forwarder, uid, self._log_path(job, run_id))
        forwarder.start()
        return brokerwire.success(shipping=True)

    def ended(self, job: JobSpec, run_id: str, uid: int) -> Mapping[str, Any]:
        """Deliver the rest of run ``run_id`` and publish its metrics, in the background."""
        with self._lock:
            active = self._active.pop((job.name, run_id), None)
        forwarder = active.forwarder if active is not None else None
        if forwarder is None and self.config.run.logs_cloudwatch:
            forwarder = self._forwarder(job, run_id)  # its start was missed (broker down)
        thread = threading.Thread(
            target=self._finish, args=(job, run_id, forwarder), name="cronsync-ended", daemon=True
        )
        thread.start()
        return brokerwire.success(shipping=True)  # its rest and its metrics, as configured

    # -- background -----------------------------------------------------------------

    def start(self) -> None:
        """Start the housekeeping thread: flush what is pending, stop quiet forwarders."""
        self._thread = threading.Thread(
            target=self._housekeeping, name="cronsync-outbox", daemon=True
        )
        self._thread.start()

    def stop(self, seconds: float = 5.0) -> None:
        """Give every live forwarder ``seconds`` to deliver, then stop them all."""
        self._stopping.set()
        with self._lock:
            active, self._active = list(self._active.values()), {}
        deadline = time.monotonic() + seconds
        for run in active:
            run.forwarder.finish(deadline)

    @property
    def active_runs(self) -> int:
        """How many runs are being forwarded now (a socket-activated broker stays up)."""
        with self._lock:
            return len(self._active)

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
            self.log(f"delivery: {message}")
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
                self.log(f"outbox: {type(exc).__name__}: {exc}")

    def publish_left_metrics(self) -> int:
        """Publish the metrics of runs whose end the broker did not hear of (their
        shim left a ``.metrics`` marker, see :data:`brokerwire.METRICS_MARKER`), then
        remove the markers. Only through real directories, never a symbolic link.

        Returns:
            How many runs' metrics were published.
        """
        if not self.config.run.metrics_cloudwatch:
            return 0
        try:
            release = self.jobs.release()
        except ShimError:
            return 0
        published = 0
        for job_name in _entries(self.runs_dir):
            try:
                spool = PendingDir.open(self.runs_dir, job_name, PENDING_DIR)
            except OSError:
                continue  # no pending folder (or a symlink there: refused)
            with spool:
                published += self._publish_markers(spool, release, job_name)
        return published

    def _publish_markers(self, spool: PendingDir, release: Release, job_name: str) -> int:
        markers = [n for n in spool.names() if n.endswith(brokerwire.METRICS_MARKER)]
        published = 0
        for name in markers:
            run_id = name[: -len(brokerwire.METRICS_MARKER)]
            try:
                job = find_job(release, job_name)
            except ShimError:
                job = None
            if job is not None and brokerwire.is_plain_name(run_id):
                self._publish_metrics(job, run_id)
                published += 1
            try:
                spool.unlink(name)
            except (OSError, CronsyncError) as exc:
                self.log(f"{job_name}/{name}: not removed: {exc}")
        return published

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

    def _finish(self, job: JobSpec, run_id: str, forwarder: Optional[LiveForwarder]) -> None:
        try:
            if forwarder is not None:
                result = forwarder.finish(time.monotonic() + FINISH_SECONDS)
                if result.error:
                    self.log(f"delivery of {job.name}/{run_id}: {result.error} (left pending)")
            self._publish_metrics(job, run_id)
        except Exception as exc:  # in a thread: say it, never a traceback
            self.log(f"after {job.name}/{run_id}: {type(exc).__name__}: {exc}")

    def _publish_metrics(self, job: JobSpec, run_id: str) -> None:
        if not self.config.run.metrics_cloudwatch:
            return
        record = read_record(self.runs_dir, job.name, run_id)
        if record is None or record.status in (RUNNING, SKIPPED):
            return
        if self._metrics_client is None:
            self._metrics_client = metrics_client(self.config.run.aws)
        metrics = job_metrics(record.status == SUCCEEDED, record.duration, record.timed_out)
        settings = dict(job.release.settings)
        settings["metrics"] = {"cloudwatch": True}
        problem = publish(
            settings,
            metrics,
            {"Host": self.config.host.name, "Job": job.name},
            client=self._metrics_client,
            host_level=True,
        )
        if problem:
            self.log(f"{job.name}/{run_id}: {problem}")

    def _forwarder(self, job: JobSpec, run_id: str) -> LiveForwarder:
        pending = Path(self.runs_dir, job.name, PENDING_DIR, f"{run_id}.json")
        group = str(job.release.settings.get("log_group") or RepoSettings.log_group)
        target = (group, stream_name(self.config.host.name, job.name, run_id))
        return LiveForwarder(pending, self._get_sender, self.poll_interval, target=target)

    def _log_path(self, job: JobSpec, run_id: str) -> str:
        log_dir = str(self.config.paths.log_dir)
        return os.path.join(log_dir, job.name, f"{run_id}.log")

    def _get_sender(self) -> LogsSender:
        with self._sender_lock:
            if self._sender is None:
                self._sender = LogsSender(self.config.run.aws)
            return self._sender


def _entries(directory: Path) -> list[str]:
    """The names in ``directory`` (none when it cannot be listed)."""
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []
