"""A run's job metrics, published by the broker from the run's record.

The shim leaves ``runs/JOB/pending/RUN-ID.metrics`` (empty, see
:data:`cronsync.core.brokerwire.METRICS_MARKER`) before it tells the broker that the run
ended; the broker publishes ``JobRuns``, ``JobSucceeded``... (and ``FleetLeaseFailed``
for a one-host run whose lease could not be asked for, skipped or not) from the run
record, then
removes the marker. A marker whose run's end the broker never heard of (it was down,
or killed meanwhile) is found later by :meth:`RunMetrics.publish_left`. A marker whose
metrics cannot be published stays for the next look, for a day at most. Only through
real directories (never a symbolic link), and every name a job user wrote is checked.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Optional

from cronsync.broker.access import InstalledJobs
from cronsync.broker.journal import Log
from cronsync.cloud.metrics import Metric, job_metrics, metrics_client, publish
from cronsync.cloud.spool import PendingDir
from cronsync.cloud.spoolstart import PENDING_DIR
from cronsync.core import brokerwire
from cronsync.core.errors import CronsyncError
from cronsync.host.config import AgentConfig
from cronsync.host.logline import ERROR, WARNING
from cronsync.run.jobspec import JobSpec, Release, ShimError, find_job
from cronsync.run.record import RUNNING, SKIPPED, SUCCEEDED
from cronsync.run.store import read_record

LEFT_AFTER = 60.0  # a younger marker's run may still be on its way through `ended`
DROP_AFTER = 86400.0  # a marker whose metrics could not be published for this long goes

RunKey = tuple[str, str]  # (job, run id)
FLEET_LEASE_FAILED = "FleetLeaseFailed"  # a one-host run that could not ask for its lease


def fleet_lease_failed(extra: Mapping[str, Any]) -> bool:
    """Whether a run record's ``extra`` says its fleet lease could not be asked for
    (see :mod:`cronsync.run.fleet`): skipped, or run anyway."""
    fleet = extra.get("fleet")
    return isinstance(fleet, dict) and fleet.get("lease") == "failed"


class RunMetrics:
    """Publishes runs' job metrics for the broker.

    Args:
        config: the host's agent config (host name, AWS, whether metrics are on).
        jobs: the installed release.
        log: where problems are logged.
    """

    def __init__(self, config: AgentConfig, jobs: InstalledJobs, log: Log) -> None:
        self.config = config
        self.jobs = jobs
        self.runs_dir = config.paths.runs_dir
        self.log = log
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether this host publishes metrics at all."""
        return self.config.run.metrics_cloudwatch

    def publish_run(self, job: JobSpec, run_id: str) -> None:
        """Publish the metrics of one ended run, then remove its marker (kept when the
        metrics could not be published). Never raises."""
        if not self.enabled:
            return
        try:
            if self._publish(job, run_id):
                self._remove_marker(job.name, run_id)
        except Exception as exc:  # in a worker thread: say it, never a traceback
            self.log(f"metrics of {job.name}/{run_id}: {type(exc).__name__}: {exc}", ERROR)

    def publish_left(self, busy: Collection[RunKey] = (), min_age: float = LEFT_AFTER) -> int:
        """Publish the metrics of runs whose markers are still there (older than
        ``min_age`` seconds, and not in ``busy``: runs whose end is being handled).

        Returns:
            How many runs' metrics were published.
        """
        if not self.enabled:
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
                published += self._publish_markers(spool, release, job_name, busy, min_age)
        return published

    def _publish_markers(
        self,
        spool: PendingDir,
        release: Release,
        job_name: str,
        busy: Collection[RunKey],
        min_age: float,
    ) -> int:
        published = 0
        now = time.time()
        for name in spool.names():
            run_id = name[: -len(brokerwire.METRICS_MARKER)]
            if not name.endswith(brokerwire.METRICS_MARKER) or (job_name, run_id) in busy:
                continue
            age = _age(spool, name, now)
            if age is None or age < min_age:
                continue
            job = _job_of(release, job_name)
            done = False
            if job is not None and brokerwire.is_plain_name(run_id):
                done = self._publish(job, run_id)
                published += done
            if done or job is None or age > DROP_AFTER or not brokerwire.is_plain_name(run_id):
                try:
                    spool.unlink(name)
                except (OSError, CronsyncError) as exc:
                    self.log(f"{job_name!r}/{name!r}: marker not removed: {exc}", WARNING)
        return published

    def _publish(self, job: JobSpec, run_id: str) -> bool:
        """Publish the run's metrics from its record; whether that is done (a run with
        no ended record has none to publish: done too)."""
        record = read_record(self.runs_dir, job.name, run_id)
        if record is None or record.status == RUNNING:
            return True
        lease_failed = fleet_lease_failed(record.extra)
        if record.status == SKIPPED and not lease_failed:
            return True
        metrics = []
        if record.status != SKIPPED:
            metrics = job_metrics(record.status == SUCCEEDED, record.duration, record.timed_out)
        if lease_failed:
            metrics.append(Metric(FLEET_LEASE_FAILED, 1.0))
        settings = dict(job.release.settings)
        settings["metrics"] = {"cloudwatch": True}
        problem = publish(
            settings,
            metrics,
            {"Host": self.config.host.name, "Job": job.name},
            client=self._metrics_client(),
            host_level=True,
        )
        if problem:
            self.log(f"{job.name}/{run_id}: {problem}", WARNING)
        return problem is None

    def _metrics_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = metrics_client(self.config.run.aws)
            return self._client

    def _remove_marker(self, job_name: str, run_id: str) -> None:
        try:
            with PendingDir.open(self.runs_dir, job_name, PENDING_DIR) as spool:
                spool.unlink(f"{run_id}{brokerwire.METRICS_MARKER}")
        except FileNotFoundError:
            pass  # no marker (a shim of an older version), or removed already
        except (OSError, CronsyncError) as exc:
            self.log(f"{job_name}/{run_id}: metrics marker not removed: {exc}", WARNING)


def _age(spool: PendingDir, name: str, now: float) -> Optional[float]:
    """Seconds since the marker ``name`` changed (None: gone, or not a regular file)."""
    try:
        info = os.stat(name, dir_fd=spool.fd, follow_symlinks=False)
    except OSError:
        return None
    return now - info.st_mtime if stat.S_ISREG(info.st_mode) else None


def _job_of(release: Release, name: str) -> Optional[JobSpec]:
    try:
        return find_job(release, name)
    except ShimError:
        return None


def _entries(directory: Path) -> list[str]:
    """The names in ``directory`` (none when it cannot be listed)."""
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []
