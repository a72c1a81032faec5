"""The agent's status item in the fleet table (``[fleet] table``), after every cycle.

The item (:class:`cronsync.core.fleetitem.HostSummary`) is computed in the agent's main
thread from what ``cronsync status`` reads (the state file, the installed release, the
run records) and written by one daemon thread with the short metrics timeouts: a hanging
or unreachable DynamoDB never delays a sync, a drift check or a stop, and never fails a
cycle. Only the newest item waits (an older one is worth nothing once a newer exists).
A failed write is logged once per kind of failure and counted (``failed``); the first
write that gets through again says so, with the count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

from cronsync import __version__
from cronsync.core.fleetitem import ONE_HOST, HostSummary, summary_item
from cronsync.core.health import next_delay
from cronsync.core.state import AgentState
from cronsync.core.urls import redact_url
from cronsync.core.views import host_health
from cronsync.host.awsclients import AwsSettings
from cronsync.host.config import AgentConfig, AgentSettings
from cronsync.host.fleettable import fleet_client, put_host_item

Log = Callable[[str], None]
JobsDoc = Optional[dict[str, Any]]
STOP_FLUSH = 2.0  # seconds the writer may take to write the last item at a stop


def due_within(agent: AgentSettings, failures: int) -> int:
    """Seconds until the next cycle at the latest: the interval (doubled per failed
    cycle up to ``max_backoff``, as the agent backs off) plus the whole splay."""
    return int(next_delay(agent.interval, 0, failures, agent.max_backoff)) + agent.splay


def last_fetch(state: AgentState) -> tuple[Optional[str], Optional[str]]:
    """(commit, when its cycle started) of the newest sync that fetched the branch (a
    record with a commit), or (None, None)."""
    for record in reversed(state.history):
        if record.commit:
            return record.commit, record.started
    return None, None


def one_host_jobs(jobs_doc: JobsDoc) -> tuple[str, ...]:
    """The installed jobs of the release that run on one host of the fleet."""
    jobs = (jobs_doc or {}).get("jobs") or {}
    return tuple(
        sorted(
            name
            for name, job in jobs.items()
            if isinstance(job, Mapping) and job.get("installed") and job.get("run_on") == ONE_HOST
        )
    )


def host_summary(
    config: AgentConfig,
    state: AgentState,
    jobs_doc: JobsDoc,
    stale: Mapping[str, bool],
    now: datetime,
    interval: int,
) -> HostSummary:
    """This host's status item as of ``now`` (``interval``: see :func:`due_within`)."""
    fetched_commit, fetched_at = last_fetch(state)
    last = state.last_sync
    return HostSummary(
        host=config.host.name,
        groups=tuple(config.host.groups),
        repo=redact_url(config.repo_url),
        branch=config.branch,
        installed_commit=state.installed.commit if state.installed else None,
        health=host_health(state, jobs_doc, stale),
        last_sync_result=last.result if last else None,
        last_sync_at=last.finished if last else None,
        drift=len(state.drift),
        stale_jobs=tuple(sorted(name for name, is_stale in stale.items() if is_stale)),
        version=__version__,
        heartbeat=now.isoformat(timespec="seconds"),
        interval=interval,
        fetched_commit=fetched_commit,
        fetched_at=fetched_at,
        one_host_jobs=one_host_jobs(jobs_doc),
    )


@dataclass(frozen=True)
class PendingItem:
    """One item waiting to be written, and where."""

    aws: AwsSettings
    table: str
    item: dict[str, Any]


class FleetWriter:
    """Writes the newest item from one daemon thread (started on the first item) with
    one client, made again only when the ``[aws]`` settings change.

    Args:
        log: where to say what went wrong (called from the writer's thread).
        make_client: returns a ``dynamodb`` client for settings (tests may pass theirs).
    """

    def __init__(
        self,
        log: Log,
        make_client: Callable[[AwsSettings], Any] = lambda aws: fleet_client(aws, short=True),
    ) -> None:
        self._log = log
        self._make_client = make_client
        self._pending: Optional[PendingItem] = None
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._closing = False
        self._client: Any = None
        self._client_aws: Optional[AwsSettings] = None
        self._failing: Optional[str] = None  # the problem last logged
        self.written = 0  # items that got through
        self.failed = 0  # writes that failed (all of them, logged or not)
        self._failed_since = 0  # since the last write that got through

    def submit(self, pending: PendingItem) -> None:
        """Make ``pending`` the item to write next (never blocks)."""
        with self._cond:
            if self._closing:
                return
            self._pending = pending
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cronsync-fleet", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = STOP_FLUSH) -> None:
        """Write what waits for at most ``timeout`` seconds, then give up on it."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                pending, self._pending = self._pending, None
            if pending is None:
                return
            self._write(pending)

    def _write(self, pending: PendingItem) -> None:
        try:
            if self._client is None or self._client_aws != pending.aws:
                self._client = None
                self._client = self._make_client(pending.aws)
                self._client_aws = pending.aws
            put_host_item(self._client, pending.table, pending.item)
        except Exception as exc:
            self.failed += 1
            self._failed_since += 1
            problem = f"fleet: status not written: {type(exc).__name__}: {exc}"
            if problem != self._failing:  # once per kind of failure, not every cycle
                self._failing = problem
                self._log(problem)
            return
        self.written += 1
        if self._failing is not None:
            failed, self._failed_since, self._failing = self._failed_since, 0, None
            self._log(f"fleet: status written again ({failed} failed before)")


class FleetStatus:
    """What the agent calls after each cycle: computes the item, hands it to the writer.

    Args:
        log: the agent's log.
        installed_jobs: returns the installed jobs document (the metrics' cache).
        writer: the writer (a new one by default).
        clock: the current time, aware (tests may pass their own).
    """

    def __init__(
        self,
        log: Log,
        installed_jobs: Callable[[AgentConfig], JobsDoc],
        writer: Optional[FleetWriter] = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._log = log
        self._installed_jobs = installed_jobs
        self.writer = writer or FleetWriter(log)
        self._clock = clock
        self._problem: Optional[str] = None

    def cycle(self, config: AgentConfig, failures: int) -> None:
        """Queue this host's item when ``[fleet] table`` is set (never raises: a problem
        computing it is logged once until it changes)."""
        table = config.fleet.table
        if not table:
            return
        try:
            item = summary_item(self._summary(config, failures))
        except Exception as exc:
            problem = f"fleet: status not computed: {type(exc).__name__}: {exc}"
            if problem != self._problem:
                self._problem = problem
                self._log(problem)
            return
        self._problem = None
        self.writer.submit(PendingItem(config.run.aws, table, item))

    def stop(self, timeout: float = STOP_FLUSH) -> None:
        """Write the last item for at most ``timeout`` seconds."""
        self.writer.stop(timeout)

    def _summary(self, config: AgentConfig, failures: int) -> HostSummary:
        from cronsync.agent.metrics import stale_by_job
        from cronsync.host.statefile import load_state

        state = load_state(config.paths.state_file)  # never raises
        jobs_doc = self._installed_jobs(config)
        stale = stale_by_job(config, jobs_doc, state)
        now = self._clock()
        return host_summary(config, state, jobs_doc, stale, now, due_within(config.agent, failures))
