"""Runs left orphaned: the record says "running", the run's ``cronsync-run`` is gone
(killed), and its job's processes live on (they still hold the run lock, or its
process group lives). ``cronsync status`` and ``history`` show such a run as
``orphaned`` while it lives; the next run that finds it over ends its record
(:mod:`cronsync.run.steps`).

Reads only: the lock's holder line, the run's record, ``/proc``. Never signals. Only
processes of the job's user (the lock file's owner) count: a holder line naming a
group none of whose live members runs as that user names no orphan.
"""

from __future__ import annotations

from cronsync.files.paths import path_str
from cronsync.run.lock import LOCK_FILE, read_lock_file
from cronsync.run.procs import flock_held
from cronsync.run.record import ORPHANED, RUNNING, RunRecord
from cronsync.run.store import job_runs_dir, read_record

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: this part does not import typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

    from cronsync.files.paths import StrPath


def orphaned_run(runs_dir: StrPath, job: str) -> Optional[RunRecord]:
    """Return the job's orphaned run, if it has one now: its record with status
    ``orphaned`` and a reason naming the gone shim and the live group (not saved).

    Returns:
        None when the lock names no run, its shim still runs, its record is missing or
        no longer "running", or nothing of its job (of the lock file's owner) lives.
    """
    lock = path_str(job_runs_dir(runs_dir, job), LOCK_FILE)
    holder, owner = read_lock_file(lock)
    if not holder.run_id or owner is None or holder.shim_alive():
        return None
    record = read_record(runs_dir, job, holder.run_id)
    if record is None or record.status != RUNNING:
        return None
    group = holder.pgid > 0 and holder.job_alive(owner)
    if not group and not flock_held(lock):
        return None
    lives = f"the job's processes (group {holder.pgid})" if group else "the job's processes"
    return record.finished(
        status=ORPHANED,
        reason=f"orphaned: cronsync-run (pid {holder.pid}) is gone; {lives} still run",
    )


def with_orphans(
    runs_dir: StrPath, last_runs: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Return ``last_runs`` (job -> its ``last.json``, see
    :func:`cronsync.run.store.last_runs`) with each job's orphaned run, if any, as its
    last run."""
    shown: dict[str, dict[str, Any]] = {}
    for job, last in last_runs.items():
        orphan = orphaned_run(runs_dir, job)
        shown[job] = dict(last)
        if orphan is not None:
            shown[job].setdefault("last_success", None)
            shown[job]["last_run"] = orphan.to_json()
    return shown


def show_orphan(runs_dir: StrPath, job: str, records: list[RunRecord]) -> list[RunRecord]:
    """Return ``records`` (of ``job``) with its orphaned run, if any, shown as such."""
    orphan = orphaned_run(runs_dir, job)
    if orphan is None:
        return records
    return [orphan if record.run_id == orphan.run_id else record for record in records]
