"""What a sync would change: jobs added, removed, changed field by field, the cron
file's diff, and the next run times of changed jobs (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import parse_schedule
from cronsync.core.tzrender import next_runs

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
NOT_INSTALLED = "not installed here"  # a new or edited job this host does not install
_IGNORED_FIELDS = frozenset({"name"})
SOURCE_LINE = "# source: "


@dataclass(frozen=True)
class FieldChange:
    """One field of a job that differs."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class JobChange:
    """One job that a sync would add, remove or change; ``reason`` says why a job is
    ``NOT_INSTALLED`` here (its compiled status: disabled, targeted elsewhere)."""

    name: str
    kind: str
    fields: tuple[FieldChange, ...] = ()
    reason: str = ""


def _jobs(doc: Optional[Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    if not doc:
        return {}
    jobs = doc.get("jobs")
    return jobs if isinstance(jobs, dict) else {}


def diff_jobs(old_doc: Optional[Mapping[str, Any]], new_doc: Mapping[str, Any]) -> list[JobChange]:
    """Compare two compiled jobs documents (old may be None: nothing installed).

    A job new or edited in ``new_doc`` that this host does not install (disabled,
    targeted at other hosts), and did not install before either, is ``NOT_INSTALLED``
    with its status as the reason: cron gets no line for it. A job that was installed
    and is no longer is ``CHANGED`` (``installed``: true -> false).

    Returns:
        The changes sorted by job name.
    """
    old, new = _jobs(old_doc), _jobs(new_doc)
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(JobChange(name, REMOVED))
            continue
        before = old.get(name)
        fields = _field_changes(before, new[name]) if before is not None else ()
        if new[name].get("installed") is False and not (before or {}).get("installed"):
            if before is None or fields:
                changes.append(JobChange(name, NOT_INSTALLED, fields, _status(new[name])))
        elif before is None:
            changes.append(JobChange(name, ADDED))
        elif fields:
            changes.append(JobChange(name, CHANGED, fields))
    return changes


def _field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """The fields of one job that differ between two compiled documents, by name."""
    return tuple(
        FieldChange(key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if key not in _IGNORED_FIELDS and old.get(key) != new.get(key)
    )


def _status(job: Mapping[str, Any]) -> str:
    """A compiled job's status (why it is not installed here)."""
    status = job.get("status")
    return status if isinstance(status, str) else "not installed"


def cron_diff(
    old_text: Optional[str], new_text: str, path: str, ignore_source: bool = False
) -> str:
    """Return the unified diff from the installed cron file to the new one ('' if same).

    With ``ignore_source`` the ``# source:`` header line (repository and commit) is left
    out of the comparison: planning from a working tree has no commit to compare.
    """
    old_lines = (old_text or "").splitlines(keepends=True)
    new_lines = new_text.splitlines(keepends=True)
    if ignore_source:
        old_lines = [line for line in old_lines if not line.startswith(SOURCE_LINE)]
        new_lines = [line for line in new_lines if not line.startswith(SOURCE_LINE)]
    return "".join(
        difflib.unified_diff(old_lines, new_lines, f"{path} (installed)", f"{path} (after sync)")
    )


@dataclass(frozen=True)
class RunTime:
    """One upcoming run, in the job's zone and in host time."""

    job_time: datetime
    host_time: datetime


def upcoming_runs(
    record: Mapping[str, Any], host_zone: str, now: datetime, count: int = 3
) -> list[RunTime]:
    """Return the next ``count`` runs of a compiled job (none for @reboot, disabled
    jobs, or a schedule that no longer parses)."""
    if not record.get("installed"):
        return []
    try:
        schedule = parse_schedule(str(record["schedule"]))
        zone = ZoneInfo(str(record["timezone"]))
        host = ZoneInfo(host_zone)
    except (ScheduleError, KeyError, ValueError, OSError):
        return []
    return [
        RunTime(moment, moment.astimezone(host)) for moment in next_runs(schedule, now, count, zone)
    ]
