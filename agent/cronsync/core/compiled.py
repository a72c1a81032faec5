"""Model -> the compiled ``jobs.json`` that the shim reads (pure, deterministic).

The shim never reads TOML or git: everything it needs about a job is in this one
document, inside the immutable release it belongs to. Its shape is versioned by
``FORMAT``; a change that a running shim could misread bumps it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cronsync.core.model import HostContext, Job, JobRepo
from cronsync.core.release import FORMAT
from cronsync.core.render import CronEntry, SourceInfo, job_zone
from cronsync.core.validate import is_targeted


def _installed_why(job: Job, host: HostContext, entry: CronEntry | None) -> str:
    if not job.enabled:
        return f"disabled: {job.reason}"
    if not is_targeted(job, host):
        return f"not targeted at host {host.name}"
    return "installed" if entry is not None else "not installed: the repository has errors"


def compile_job(job: Job, host: HostContext, entry: CronEntry | None) -> dict[str, Any]:
    """Return the JSON-ready record of one job (secret references, never values)."""
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
        "installed": entry is not None,
        "status": _installed_why(job, host, entry),
        "cron": list(entry.times) if entry else [],
        "gate": entry is not None and not entry.exact,
    }


def compile_jobs(
    repo: JobRepo,
    host: HostContext,
    source: SourceInfo,
    entries: tuple[CronEntry, ...],
    runtime: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the whole ``jobs.json`` document for one release on one host.

    Args:
        runtime: the host's run settings (paths, backends, AWS) for the shim; the
            repository's log group and metrics namespace are added to it.
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
            job.name: compile_job(job, host, by_name.get(job.name))
            for job in sorted(repo.jobs, key=lambda item: item.name)
        },
    }


def dump_jobs(document: Mapping[str, Any]) -> bytes:
    """Serialise a jobs document deterministically (sorted keys, trailing newline)."""
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
