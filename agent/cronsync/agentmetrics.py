"""The agent's metrics: heartbeat, sync results, drift, stale jobs (dimension Host).

Published with the same settings as the jobs' (namespace from the installed
repository's ``cronsync.toml``); a failure to publish is returned as a line to log and
never breaks a sync.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from .build import runtime_settings
from .config import AgentConfig
from .health import stale_jobs
from .hostview import installed_jobs, last_runs, unmanaged_entries
from .metrics import Metric, publish
from .statefile import load_state


def _settings(config: AgentConfig, jobs_doc: Optional[dict[str, Any]]) -> dict[str, Any]:
    settings = runtime_settings(config)
    installed = (jobs_doc or {}).get("settings") or {}
    settings["metrics_namespace"] = installed.get("metrics_namespace", "Cronsync")
    return settings


def count_stale(config: AgentConfig, jobs_doc: Optional[dict[str, Any]]) -> int:
    """How many installed jobs are stale now."""
    state = load_state(config.paths.state_file)
    at = state.installed.at if state.installed else None
    return len(stale_jobs(jobs_doc, last_runs(config, jobs_doc), at, datetime.now(timezone.utc)))


def publish_cycle(config: AgentConfig, synced: bool, failed: bool) -> Optional[str]:
    """Publish one cycle's metrics; return a line to log when that failed."""
    if not config.run.metrics_cloudwatch:
        return None
    jobs_doc = installed_jobs(config)
    state = load_state(config.paths.state_file)
    metrics = [
        Metric("SyncSucceeded", 1.0 if synced else 0.0),
        Metric("SyncFailed", 1.0 if failed else 0.0),
        Metric("DriftDetected", float(len(state.drift))),
        Metric("StaleJobs", float(count_stale(config, jobs_doc))),
        Metric("UnmanagedEntries", float(unmanaged_entries(config))),
    ]
    return publish(_settings(config, jobs_doc), metrics, {"Host": config.host.name})


def publish_heartbeat(config: AgentConfig) -> Optional[str]:
    """Publish the agent's heartbeat (every minute while it lives, whatever the syncs do:
    a dead agent publishes nothing, and the shipped alarm treats that as breaching)."""
    if not config.run.metrics_cloudwatch:
        return None
    return publish(
        _settings(config, installed_jobs(config)),
        [Metric("Heartbeat", 1.0)],
        {"Host": config.host.name},
    )


def publish_drift(config: AgentConfig, findings: int) -> Optional[str]:
    """Publish drift found between syncs at once (the alarm should not wait a cycle)."""
    if not config.run.metrics_cloudwatch:
        return None
    return publish(
        _settings(config, installed_jobs(config)),
        [Metric("DriftDetected", float(findings))],
        {"Host": config.host.name},
    )
