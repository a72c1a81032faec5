"""Model -> the compiled ``jobs.json`` that the shim reads (pure, deterministic).

The shim never reads TOML or git: everything it needs about a job is in this one
document, inside the immutable release it belongs to. Its shape is versioned by
``FORMAT``; a change that a running shim could misread bumps it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Optional

from cronsync.core.model import HostContext, Job, JobRepo
from cronsync.core.release import FORMAT
from cronsync.core.render import CronEntry, SourceInfo, job_zone
from cronsync.core.staleness import derived_window
from cronsync.core.validate import is_targeted


def _installed_why(job: Job, host: HostContext, entry: CronEntry | None) -> str:
    if not job.enabled:
        return f"disabled: {job.reason}"
    if not is_targeted(job, host):
        return f"not targeted at host {host.name}"
    return "installed" if entry is not None else "not installed: the repository has errors"


def compile_job(
    job: Job,
    host: HostContext,
    entry: CronEntry | None,
    now: Optional[datetime] = None,
    since: Optional[str] = None,
) -> dict[str, Any]:
    """Return the JSON-ready record of one job (secret references, never values).

    ``stale_window`` (installed jobs): how long the job may go without a success, from
    ``success.within`` or, when ``now`` is given, from the schedule (see
    :mod:`cronsync.core.staleness`); None for a job that is not installed, an ``@reboot``
    job without ``success.within``, or no ``now``. ``installed_since`` (installed jobs):
    ``since`` (when the installed release had it installed already), else ``now``; a job
    that never succeeded is stale once its window has passed since then.

    Raises:
        ScheduleError: an installed job's schedule or zone is not valid (a validated
            repository has none).
    """
    return {
        "name": job.name,
        "file": job.file,
        "description": job.description,
        "owner": job.owner,
        "schedule": job.schedule,
        "timezone": job_zone(job, host),
        "user": job.user,
        "command": list(job.command),
        "shell": job.shell,
        "workdir": job.workdir,
        "env": dict(job.env),
        "secrets": [ref.as_dict() for ref in job.secrets],
        "timeout": job.timeout_seconds,
        "concurrency": job.concurrency,
        "jitter": job.jitter_seconds,
        "success": {"within": job.success.within_seconds, "check": list(job.success.check)},
        "enabled": job.enabled,
        "reason": job.reason,
        "hosts": list(job.hosts),
        "groups": list(job.groups),
        "run_on": job.run_on,
        "fleet_unreachable": job.fleet_unreachable,
        "installed": entry is not None,
        "status": _installed_why(job, host, entry),
        "cron": list(entry.times) if entry else [],
        "gate": entry is not None and not entry.exact,
        "stale_window": _stale_window(job, host, entry, now),
        "installed_since": _installed_since(entry, now, since),
    }


def _installed_since(
    entry: CronEntry | None, now: Optional[datetime], since: Optional[str]
) -> Optional[str]:
    if entry is None:
        return None
    if since:
        return since
    return None if now is None else now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stale_window(
    job: Job, host: HostContext, entry: CronEntry | None, now: Optional[datetime]
) -> Optional[dict[str, Any]]:
    if entry is None:
        return None
    return derived_window(
        job.schedule,
        job_zone(job, host),
        job.timeout_seconds,
        job.jitter_seconds,
        job.success.within_seconds,
        now,
    )


def compile_jobs(
    repo: JobRepo,
    host: HostContext,
    source: SourceInfo,
    entries: tuple[CronEntry, ...],
    runtime: Mapping[str, Any],
    now: Optional[datetime] = None,
    since: Optional[Mapping[str, str]] = None,
) -> dict[str, Any]:
    """Return the whole ``jobs.json`` document for one release on one host.

    Args:
        runtime: the host's run settings (paths, backends, AWS) for the shim; the
            repository's log group and metrics namespace are added to it.
        now: the sync's moment: staleness windows are derived from the schedules over
            its calendar year and the next (None: only ``success.within`` windows), and
            the ``installed_since`` of a job newly installed.
        since: job -> its ``installed_since`` in the installed release (jobs installed
            there), carried over.
    Raises:
        ScheduleError: see ``compile_job``.
    """
    by_name = {entry.job: entry for entry in entries}
    return {
        "format": FORMAT,
        "repo": source.url,
        "branch": source.branch,
        "commit": source.commit,
        "host": host.name,
        "host_timezone": host.timezone,
        "settings": {
            **runtime,
            "log_group": repo.settings.log_group,
            "metrics_namespace": repo.settings.metrics_namespace,
        },
        "jobs": {
            job.name: compile_job(
                job, host, by_name.get(job.name), now, (since or {}).get(job.name)
            )
            for job in sorted(repo.jobs, key=lambda item: item.name)
        },
    }


def dump_jobs(document: Mapping[str, Any]) -> bytes:
    """Serialise a jobs document deterministically: sorted keys, UTF-8, compact, one
    trailing newline.

    Compact on purpose: without ``indent`` :func:`json.dumps` uses CPython's C encoder
    (with it, the pure-Python one: a tenth of a one-job sync at 10,000 jobs). Every
    reader parses it as JSON (the shim through ``core.fastjson``, status and the
    metrics through ``host.view``)."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode()
