"""A job's runs under its earlier users, for ``cronsync history``, ``logs`` and
``status``.

When a job's user changed, the sync set the old user's run and log folders aside in
root-only folders (layout: :mod:`cronsync.core.runhistory`). This module reads them
beside the job's current folder: every record, the log of a run, the last run. Only
root can read them; for anyone else they are simply not there (:func:`earlier_records`
says when they exist but cannot be read). Logs are found by run id in the job's log
history, never by the path a record (written by its user) names, and only a regular
file counts (a symlink its user left there is not one).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional

from cronsync.core.runhistory import HISTORY_DIR, is_entry_name
from cronsync.files.paths import path_str
from cronsync.run.record import FORMAT, RunRecord
from cronsync.run.store import list_records, read_last_in, records_in

if TYPE_CHECKING:
    from cronsync.files.paths import StrPath


def _start_order(record: RunRecord) -> tuple[str, str]:
    """Sort key (reversed): when it started (milliseconds), then its run id."""
    return record.started, record.run_id


def _entries(top: StrPath, job: str) -> list[str]:
    """The history entries of ``job`` under ``top`` (runs or log folder), newest first.

    Raises:
        PermissionError: they exist but cannot be listed (not root).
    """
    try:
        names = os.listdir(path_str(top, HISTORY_DIR, job))
    except PermissionError:
        raise
    except OSError:
        return []
    return sorted((name for name in names if is_entry_name(name)), reverse=True)


def earlier_records(runs_dir: StrPath, job: str) -> list[RunRecord]:
    """Return the records of ``job``'s runs under its earlier users, newest first.

    Raises:
        PermissionError: there are some, but this user may not read them.
    """
    records = []
    for entry in _entries(runs_dir, job):
        records += records_in(path_str(runs_dir, HISTORY_DIR, job, entry), job)
    return sorted(records, key=_start_order, reverse=True)


def all_records(runs_dir: StrPath, job: str, current: list[RunRecord]) -> list[RunRecord]:
    """Return ``current`` (the job's records in its own folder) and the earlier users'
    records that this user may read, newest first."""
    try:
        earlier = earlier_records(runs_dir, job)
    except PermissionError:
        earlier = []
    return sorted([*current, *earlier], key=_start_order, reverse=True)


def every_record(runs_dir: StrPath, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Return job -> the JSON form of every record of its runs this user may read (its
    own folder and its earlier users'), newest first: what ``status``'s retirement
    candidates are judged on."""
    return {
        name: [r.to_json() for r in all_records(runs_dir, name, list_records(runs_dir, name))]
        for name in names
    }


def earlier_log(log_dir: StrPath, job: str, run_id: str) -> Optional[tuple[str, str]]:
    """Find run ``run_id``'s log in ``job``'s log history.

    Returns:
        The history entry's folder (``<log_dir>/.history/<job>/<entry>``) and the log's
        name in it, for the caller to open through the folder without following a
        symlink; None when there is none (a symlink, or anything but a regular file,
        is none) or this user may not look.
    """
    if not run_id or "/" in run_id or run_id.startswith("."):
        return None
    try:
        entries = _entries(log_dir, job)
    except PermissionError:
        return None
    name = f"{run_id}.log"
    for entry in entries:
        folder = path_str(log_dir, HISTORY_DIR, job, entry)
        try:
            found = os.lstat(path_str(folder, name))
        except OSError:
            continue
        if stat.S_ISREG(found.st_mode):
            return folder, name
    return None


def _earlier_last(runs_dir: StrPath, job: str) -> dict[str, Any]:
    """The last run and last success of ``job`` under its earlier users ({}: none)."""
    found: dict[str, Any] = {}
    try:
        entries = _entries(runs_dir, job)
    except PermissionError:
        return found
    for entry in entries:  # newest first: the first of each that is there counts
        last = read_last_in(path_str(runs_dir, HISTORY_DIR, job, entry), job)
        for key in ("last_run", "last_success"):
            if found.get(key) is None and last.get(key) is not None:
                found[key] = last[key]
    return found


def with_earlier_runs(
    runs_dir: StrPath, last_runs: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Return job -> its ``last.json`` document (see
    :func:`cronsync.run.store.read_last`), where a job's own folder has no last run or
    no last success yet (its user changed), taken from its earlier users' runs."""
    merged = {}
    for job, last in last_runs.items():
        document = dict(last)
        if document.get("last_run") is None or document.get("last_success") is None:
            for key, run in _earlier_last(runs_dir, job).items():
                if document.get(key) is None:
                    document[key] = run
                    document.setdefault("format", FORMAT)
        merged[job] = document
    return merged
