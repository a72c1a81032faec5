"""Run records on disk: one JSON file per run under ``runs/<job>/``, plus ``last.json``.

Written by the shim as the job's user into a directory only that user can write (the
sync creates it so), and readable by root and operators, so no job can forge another's
history. ``last.json`` keeps the last run and the last success, so ``cronsync status``
reads one small file per job. Reading opens regular files only, without following a
symlink, and skips anything that is not a valid record; pruning keeps the newest.
On the shim's start-up path: no typing, dataclasses or pathlib at import time.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from cronsync.core import fastjson
from cronsync.files.atomic import atomic_write
from cronsync.files.paths import path_str
from cronsync.run.record import FORMAT, RUNNING, SUCCEEDED, RunRecord

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

    from cronsync.files.paths import StrPath

LAST_FILE = "last.json"
RECORD_SUFFIX = ".json"
MAX_RECORD_BYTES = 1 << 20  # a record or last.json is a few KiB: anything bigger is refused


def job_runs_dir(runs_dir: StrPath, job: str) -> str:
    """Return ``runs/<job>``."""
    return path_str(runs_dir, job)


def write_record(runs_dir: StrPath, record: RunRecord) -> None:
    """Write a run record, and when the run has ended, ``last.json``.

    Raises:
        InstallError: the directory is missing or not writable by this user.
    """
    directory = job_runs_dir(runs_dir, record.job)
    data = fastjson.dumps(record.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    atomic_write(
        path_str(directory, f"{record.run_id}{RECORD_SUFFIX}"), data, mode=0o644, durable=False
    )
    if record.status != RUNNING:
        _update_last(directory, record)


def _update_last(directory: str, record: RunRecord) -> None:
    if record.status == SUCCEEDED:  # the common case needs nothing of the old file
        success: Any = record.to_json()
    else:
        success = read_last(os.path.dirname(directory) or ".", record.job).get("last_success")
    document = {"format": FORMAT, "last_run": record.to_json(), "last_success": success}
    text = fastjson.dumps(document, indent=1).encode() + b"\n"
    atomic_write(path_str(directory, LAST_FILE), text, mode=0o644, durable=False)


def open_regular(path: StrPath) -> int:
    """Open ``path`` for reading as a file its owner cannot turn against the reader:
    without following a symlink (``O_NOFOLLOW``), without blocking on a FIFO
    (``O_NONBLOCK``; a regular file ignores it), and only if it is a regular file.

    Returns:
        The open descriptor (close-on-exec); the caller closes it.

    Raises:
        OSError: it cannot be opened, is a symlink (ELOOP), or is not a regular file.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_small_file(path: StrPath, limit: int = MAX_RECORD_BYTES) -> bytes:
    """Return the bytes of the regular file ``path`` (see :func:`open_regular`).

    Raises:
        OSError: it cannot be opened or read, or is not a regular file.
        ValueError: it holds more than ``limit`` bytes.
    """
    fd = open_regular(path)
    try:
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ValueError(f"{os.fspath(path)} is larger than {limit} bytes")
    return b"".join(chunks)


def _read_json(path: str) -> Any:
    """Return the JSON value in the file ``path`` (UTF-8, a regular file of at most
    ``MAX_RECORD_BYTES``).

    Raises:
        OSError, ValueError: the file cannot be read, is too big, or is not JSON.
    """
    data = read_small_file(path)
    try:
        return fastjson.loads(data.decode("utf-8"))
    except RecursionError as exc:  # nested a thousand deep: not a record
        raise ValueError(f"{path} is nested too deeply") from exc


def _checked_run(value: Any, job: str) -> Optional[dict[str, Any]]:
    """Return a run from last.json as a valid record's JSON form, or None."""
    record = RunRecord.from_json(value)
    return None if record is None or record.job != job else record.to_json()


def last_runs(runs_dir: StrPath, jobs_doc: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Return job -> its ``last.json`` (see :func:`read_last`) for every job of an
    installed ``jobs.json`` document ({} when there is no document or it has no jobs)."""
    names = (jobs_doc or {}).get("jobs")
    if not isinstance(names, dict):
        return {}
    return {name: read_last(runs_dir, name) for name in names}


def read_last(runs_dir: StrPath, job: str) -> dict[str, Any]:
    """Return ``last.json`` of a job ({} when there is none or it is unreadable).

    The result is checked: ``{"format": 1, "last_run": RUN, "last_success": RUN}``
    where each RUN is a valid record's JSON form (see :meth:`RunRecord.from_json`) of
    this job, or None when missing or not valid.
    """
    return read_last_in(job_runs_dir(runs_dir, job), job)


def read_last_in(directory: StrPath, job: str) -> dict[str, Any]:
    """Return ``last.json`` of ``job`` in ``directory`` (its runs folder, or one set
    aside when its user changed), checked as :func:`read_last` says."""
    try:
        data = _read_json(path_str(directory, LAST_FILE))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    return {
        "format": FORMAT,
        "last_run": _checked_run(data.get("last_run"), job),
        "last_success": _checked_run(data.get("last_success"), job),
    }


def _record_names(directory: str) -> list[str]:
    """Return the record file names in ``directory``, newest first.

    Raises:
        OSError: the directory cannot be listed.
    """
    return sorted(
        (n for n in os.listdir(directory) if n.endswith(RECORD_SUFFIX) and n != LAST_FILE),
        reverse=True,
    )


def read_record(runs_dir: StrPath, job: str, run_id: str) -> Optional[RunRecord]:
    """Return one run's record, or None when it is missing or not a valid record."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        return None
    try:
        data = _read_json(path_str(job_runs_dir(runs_dir, job), f"{run_id}{RECORD_SUFFIX}"))
    except (OSError, ValueError):
        return None
    record = RunRecord.from_json(data)
    return record if record is not None and (record.job, record.run_id) == (job, run_id) else None


def list_records(runs_dir: StrPath, job: str) -> list[RunRecord]:
    """Return a job's run records, newest first (unreadable or invalid files, and records
    of another job, are skipped)."""
    return records_in(job_runs_dir(runs_dir, job), job)


def records_in(directory: StrPath, job: str) -> list[RunRecord]:
    """Return the run records of ``job`` in ``directory`` (its runs folder, or one set
    aside when its user changed), newest first, skipped as :func:`list_records` says."""
    directory = path_str(directory)
    try:
        names = _record_names(directory)
    except OSError:
        return []
    records = []
    for name in names:
        try:
            record = RunRecord.from_json(_read_json(path_str(directory, name)))
        except (OSError, ValueError):
            continue
        if record is not None and record.job == job:
            records.append(record)
    return records


def prune_runs(
    runs_dir: StrPath,
    log_dir: StrPath,
    job: str,
    keep: int,
    keep_days: int,
    protected: frozenset[str] = frozenset(),
) -> int:
    """Remove a job's records beyond the newest ``keep`` and logs older than
    ``keep_days`` or whose record is gone; logs named in ``protected`` (run ids still
    being delivered to CloudWatch) stay.

    Returns:
        How many files were removed. Errors (another user's file) are skipped.
    """
    removed = 0
    directory = job_runs_dir(runs_dir, job)
    try:
        names = _record_names(directory)
    except OSError:
        names = []
    kept = {name[: -len(RECORD_SUFFIX)] for name in names[:keep]}
    for name in names[keep:]:
        removed += _remove(path_str(directory, name))
    cutoff = time.time() - keep_days * 86400
    # a run id starts with its UTC start time: a log of a run started after the cutoff
    # was written after it too, and needs no stat (100 of them at every run otherwise)
    recent = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(cutoff))
    logs = path_str(log_dir, job)
    try:
        entries = list(os.scandir(logs))
    except OSError:
        return removed
    for entry in entries:
        run_id = entry.name[: -len(".log")]
        if not entry.name.endswith(".log") or run_id in protected:
            continue
        if run_id in kept and run_id[: len(recent)] > recent:
            continue
        try:
            too_old = entry.stat().st_mtime < cutoff
        except OSError:
            continue
        if too_old or run_id not in kept:
            removed += _remove(entry.path)
    return removed


def _remove(path: str) -> int:
    try:
        os.unlink(path)
    except OSError:
        return 0
    return 1
