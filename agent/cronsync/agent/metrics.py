"""The agent's metrics: heartbeat, sync results, drift, stale jobs (dimension Host), and
each job's staleness (``JobStale``, dimensions Host and Job).

Published with the host's ``[aws]`` settings and the installed repository's namespace
(``cronsync.toml`` ``[cloudwatch] metrics_namespace``). A metric never breaks, delays or
stops what reports it:

* the agent (:class:`AgentMetrics`) computes a cycle's figures in its main loop, every
  one guarded (a bad ``last.json`` costs that one figure and a log line) and cheap (the
  installed jobs document is parsed once per release, the crontab inventory counted at
  most every 5 minutes or when a crontab directory changes), and hands them to
  :class:`MetricsPublisher`: one daemon thread, one cached client with the short metrics
  timeouts, a bounded queue that drops the oldest batch when CloudWatch cannot keep up;
* the timer mode (``cronsync sync``, no agent) publishes a cycle's figures and the
  heartbeat synchronously with the same short timeouts (:func:`publish_sync`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from cronsync.cloud.metrics import Metric, metrics_client, problem_line, put
from cronsync.core.release import JOBS_FILE
from cronsync.core.state import AgentState
from cronsync.host.awsclients import AwsSettings
from cronsync.host.config import AgentConfig
from cronsync.host.logline import WARNING, Log

DEFAULT_NAMESPACE = "Cronsync"
UNMANAGED_EVERY = 300.0  # seconds between two counts of the host's crontabs
QUEUE_SIZE = 32  # batches waiting for CloudWatch (a heartbeat and a cycle a minute)
STOP_FLUSH = 2.0  # seconds the publisher may take to flush when the agent stops
# What the unmanaged count depends on (besides the content of files edited in place,
# which the periodic count catches): crontab directories and files, and the users.
CRONTAB_PLACES = ("etc/crontab", "etc/cron.d", "var/spool/cron/crontabs", "etc/passwd")

StatKey = Optional[tuple[int, int, int, int]]


def namespace_of(jobs_doc: Optional[dict[str, Any]]) -> str:
    """The metrics namespace of the installed release (the default before any)."""
    settings = (jobs_doc or {}).get("settings") or {}
    namespace = settings.get("metrics_namespace") if isinstance(settings, dict) else None
    return str(namespace) if namespace else DEFAULT_NAMESPACE


def stale_by_job(
    config: AgentConfig, jobs_doc: Optional[dict[str, Any]], state: AgentState
) -> dict[str, bool]:
    """Whether each installed job with a staleness window is stale now."""
    from cronsync.core.health import job_window, stale_jobs
    from cronsync.run.history import with_earlier_runs
    from cronsync.run.store import last_runs

    at = state.installed.at if state.installed else None
    runs_dir = config.paths.runs_dir
    runs = with_earlier_runs(runs_dir, last_runs(runs_dir, jobs_doc))  # a user changed
    stale = stale_jobs(jobs_doc, runs, at, datetime.now(timezone.utc))
    jobs = (jobs_doc or {}).get("jobs") or {}
    return {name: name in stale for name, job in jobs.items() if job_window(job) is not None}


def staleness_metrics(stale: dict[str, bool]) -> list[Metric]:
    """``StaleJobs`` (the count, dimension Host) and ``JobStale`` per job (1 stale, 0 not;
    dimensions Host and Job: what a per-job alarm watches)."""
    count = Metric("StaleJobs", float(sum(stale.values())))
    return [count, *(Metric("JobStale", float(stale[name]), job=name) for name in sorted(stale))]


def cycle_metrics(
    config: AgentConfig,
    synced: bool,
    failed: bool,
    jobs_doc: Optional[dict[str, Any]],
    unmanaged: Callable[[], int],
) -> tuple[list[Metric], list[tuple[str, str]]]:
    """One cycle's metrics, and (metric name, problem) for each figure that could not be
    computed (left out; the sync results are never left out).

    Args:
        config: the host's agent config.
        synced, failed: how the cycle ended.
        jobs_doc: the installed jobs document (None before the first install).
        unmanaged: returns the count of unmanaged crontab entries.
    """
    from cronsync.host.statefile import load_state

    metrics = [
        Metric("SyncSucceeded", 1.0 if synced else 0.0),
        Metric("SyncFailed", 1.0 if failed else 0.0),
    ]
    problems: list[tuple[str, str]] = []
    state = load_state(config.paths.state_file)  # never raises (a damaged file is empty)
    metrics.append(Metric("DriftDetected", float(len(state.drift))))
    try:
        metrics += staleness_metrics(stale_by_job(config, jobs_doc, state))
    except Exception as exc:
        problems.append(("StaleJobs", f"{type(exc).__name__}: {exc}"))
    try:
        metrics.append(Metric("UnmanagedEntries", float(unmanaged())))
    except Exception as exc:
        problems.append(("UnmanagedEntries", f"{type(exc).__name__}: {exc}"))
    return metrics, problems


def publish_sync(config: AgentConfig, synced: bool, failed: bool) -> list[str]:
    """Timer mode: publish one cycle's metrics and the heartbeat now, in one call with
    the short metrics timeouts; return lines to print (never raises)."""
    if not config.run.metrics_cloudwatch:
        return []
    from cronsync.host.view import installed_jobs, unmanaged_entries

    lines: list[str] = []
    try:
        jobs_doc = installed_jobs(config)
        metrics, problems = cycle_metrics(
            config, synced, failed, jobs_doc, lambda: unmanaged_entries(config)
        )
        lines += [f"metric {name} left out: {problem}" for name, problem in problems]
        metrics.append(Metric("Heartbeat", 1.0))
        client = metrics_client(config.run.aws)
        put(client, namespace_of(jobs_doc), metrics, {"Host": config.host.name})
    except Exception as exc:
        lines.append(problem_line(exc))
    return lines


# -- the agent's publisher ----------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One ``put_metric_data`` call waiting to be made."""

    aws: AwsSettings
    namespace: str
    host: str
    metrics: tuple[Metric, ...]


class MetricsPublisher:
    """Publishes batches from one daemon thread (started on the first batch) with one
    client, made again only when the ``[aws]`` settings change.

    Args:
        log: where to say what went wrong (called from the publisher's thread).
        make_client: returns a ``cloudwatch`` client for settings (tests pass theirs).
        size: the most batches waiting; a full queue drops its oldest (said once).
    """

    def __init__(
        self,
        log: Log,
        make_client: Callable[[AwsSettings], Any] = metrics_client,
        size: int = QUEUE_SIZE,
    ) -> None:
        self._log = log
        self._make_client = make_client
        self._size = size
        self._pending: deque[Batch] = deque()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._closing = False
        self._dropping = False  # said that batches are dropped (until one gets through)
        self._client: Any = None
        self._client_aws: Optional[AwsSettings] = None
        self._failing: Optional[str] = None  # the problem last logged
        self.published = 0  # batches that got through (for tests and the curious)

    def submit(self, batch: Batch) -> None:
        """Queue ``batch`` (never blocks)."""
        with self._cond:
            if self._closing:
                return
            if len(self._pending) >= self._size:
                self._pending.popleft()
                if not self._dropping:
                    self._dropping = True
                    self._log(
                        "metrics: CloudWatch is not keeping up; dropping the oldest "
                        f"waiting metrics (more than {self._size} batches)",
                        WARNING,
                    )
            self._pending.append(batch)
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cronsync-metrics", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = STOP_FLUSH) -> None:
        """Publish what waits for at most ``timeout`` seconds, then give up on it (the
        thread is a daemon: a hanging CloudWatch never holds the process)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            with self._cond:
                left = len(self._pending)
            self._log(
                f"metrics: CloudWatch did not answer within {timeout:g}s; stopping without "
                f"the metrics in flight{f' and {left} waiting' if left else ''}",
                WARNING,
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                batch = self._pending.popleft()
            self._send(batch)

    def _send(self, batch: Batch) -> None:
        try:
            if self._client is None or self._client_aws != batch.aws:
                self._client = None
                self._client = self._make_client(batch.aws)
                self._client_aws = batch.aws
            put(self._client, batch.namespace, batch.metrics, {"Host": batch.host})
        except Exception as exc:
            problem = problem_line(exc)
            if problem != self._failing:  # once per kind of failure, not every minute
                self._failing = problem
                self._log(problem, WARNING)
            return
        self.published += 1
        with self._cond:
            self._dropping = False
        if self._failing is not None:
            self._failing = None
            self._log("metrics: published again")


class AgentMetrics:
    """What the agent publishes, computed cheaply and sent in the background.

    Every method returns at once and never raises (a problem is logged, once until it
    changes).

    Args:
        log: the agent's log.
        publisher: the publisher (a new one by default).
        clock: monotonic seconds (for the unmanaged count's pacing).
    """

    def __init__(
        self,
        log: Log,
        publisher: Optional[MetricsPublisher] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self.publisher = publisher or MetricsPublisher(log)
        self._clock = clock
        self._jobs_key: StatKey = None
        self._jobs_path: Optional[Path] = None
        self._jobs_doc: Optional[dict[str, Any]] = None
        self._unmanaged: Optional[int] = None
        self._unmanaged_key: Optional[tuple[str, tuple[StatKey, ...]]] = None
        self._unmanaged_at = 0.0
        self._problems: dict[str, str] = {}

    # -- what the agent calls -------------------------------------------------------

    def cycle(self, config: AgentConfig, synced: bool, failed: bool) -> None:
        """A sync cycle's metrics."""
        if not config.run.metrics_cloudwatch:
            return
        try:
            jobs_doc = self.installed_jobs(config)
            metrics, problems = cycle_metrics(
                config, synced, failed, jobs_doc, lambda: self.unmanaged(config)
            )
        except Exception as exc:
            self._problem("cycle", f"{type(exc).__name__}: {exc}")
            return
        failed_now = dict(problems)
        for name in ("cycle", "StaleJobs", "UnmanagedEntries"):
            if name in failed_now:
                self._problem(name, failed_now[name])
            else:
                self._problems.pop(name, None)  # said again if it comes back
        self._submit(config, jobs_doc, metrics)

    def heartbeat(self, config: AgentConfig) -> None:
        """The heartbeat (the AgentSilent alarm's input)."""
        self._simple(config, Metric("Heartbeat", 1.0))

    def drift(self, config: AgentConfig, findings: int) -> None:
        """Drift found between syncs (the alarm should not wait for the next cycle)."""
        self._simple(config, Metric("DriftDetected", float(findings)))

    def stop(self, timeout: float = STOP_FLUSH) -> None:
        """Flush for at most ``timeout`` seconds."""
        self.publisher.stop(timeout)

    # -- the caches -------------------------------------------------------------------

    def installed_jobs(self, config: AgentConfig) -> Optional[dict[str, Any]]:
        """The installed jobs document, parsed again only when the file changed (a new
        release, or an edit by hand)."""
        from cronsync.host.view import installed_jobs

        path = config.paths.current / JOBS_FILE
        key = _stat_key(path)
        if key is None or key != self._jobs_key or path != self._jobs_path:
            self._jobs_doc = installed_jobs(config) if key is not None else None
            self._jobs_key, self._jobs_path = key, path
        return self._jobs_doc

    def unmanaged(self, config: AgentConfig) -> int:
        """The unmanaged crontab entries, counted again after UNMANAGED_EVERY seconds or
        when a crontab directory (or the user list) changed."""
        from cronsync.host.view import unmanaged_entries

        root = config.paths.root
        # the key is taken before counting: a change made during the count counts again
        key = (str(root), tuple(_stat_key(root / place) for place in CRONTAB_PLACES))
        now = self._clock()
        if (
            self._unmanaged is None
            or key != self._unmanaged_key
            or now - self._unmanaged_at >= UNMANAGED_EVERY
        ):
            self._unmanaged = None  # a count that raises is tried again next time
            self._unmanaged = unmanaged_entries(config)
            self._unmanaged_key, self._unmanaged_at = key, now
        return self._unmanaged

    # -- helpers ------------------------------------------------------------------

    def _simple(self, config: AgentConfig, metric: Metric) -> None:
        if not config.run.metrics_cloudwatch:
            return
        try:
            jobs_doc = self.installed_jobs(config)
        except Exception as exc:
            self._problem("namespace", f"{type(exc).__name__}: {exc}")
            jobs_doc = None
        self._submit(config, jobs_doc, [metric])

    def _submit(
        self, config: AgentConfig, jobs_doc: Optional[dict[str, Any]], metrics: list[Metric]
    ) -> None:
        batch = Batch(config.run.aws, namespace_of(jobs_doc), config.host.name, tuple(metrics))
        self.publisher.submit(batch)

    def _problem(self, what: str, problem: str) -> None:
        if self._problems.get(what) != problem:
            self._problems[what] = problem
            self._log(f"metrics: {what} not computed: {problem}", WARNING)


def _stat_key(path: Path) -> StatKey:
    """What changes when ``path`` is replaced or written (None when it is missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)
