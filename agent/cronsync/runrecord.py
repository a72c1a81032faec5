"""Run records: one JSON file per run under ``runs/<job>/``, plus ``last.json``.

Written by the shim as the job's user into a directory only that user can write (the
sync creates it so), and readable by root and operators, so no job can forge another's
history. ``last.json`` keeps the last run and the last success, so ``cronsync status``
reads one small file per job.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from .fsutil import atomic_write

FORMAT = 1
LAST_FILE = "last.json"
RECORD_SUFFIX = ".json"

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed-out"
SKIPPED = "skipped"
ERROR = "error"  # cronsync could not run the job (no release, secrets, no program)


def new_run_id(now: float) -> str:
    """Return a sortable, unique run id: UTC time plus 4 random hex digits."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{stamp}-{os.urandom(2).hex()}"  # not `secrets`: it costs ms to import


def iso_time(epoch: float) -> str:
    """Format an epoch time as ISO 8601 UTC with milliseconds."""
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{base}.{int(epoch * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class RunRecord:
    """What happened in one run of one job (never a secret value)."""

    run_id: str
    job: str
    host: str
    user: str
    commit: str
    release: str
    started: str
    status: str = RUNNING
    ended: Optional[str] = None
    duration: Optional[float] = None
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    timed_out: bool = False
    reason: Optional[str] = None
    output_bytes: int = 0
    output_lines: int = 0
    log: Optional[str] = None
    check_exit_code: Optional[int] = None
    by_hand: bool = False
    cloudwatch_stream: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)

    def finished(self, **changes: Any) -> RunRecord:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (``format`` included)."""
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> Optional[RunRecord]:
        """Build from JSON; None for anything that is not a record of this format."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        try:
            return cls(**known)
        except TypeError:
            return None


def job_runs_dir(runs_dir: Path, job: str) -> Path:
    """Return ``runs/<job>``."""
    return runs_dir / job


def write_record(runs_dir: Path, record: RunRecord) -> None:
    """Write a run record, and when the run has ended, ``last.json``.

    Raises:
        InstallError: the directory is missing or not writable by this user.
    """
    directory = job_runs_dir(runs_dir, record.job)
    data = json.dumps(record.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    atomic_write(directory / f"{record.run_id}{RECORD_SUFFIX}", data, mode=0o644, durable=False)
    if record.status != RUNNING:
        _update_last(directory, record)


def _update_last(directory: Path, record: RunRecord) -> None:
    last = read_last(directory.parent, record.job)
    success = record.to_json() if record.status == SUCCEEDED else last.get("last_success")
    document = {"format": FORMAT, "last_run": record.to_json(), "last_success": success}
    text = json.dumps(document, indent=1).encode() + b"\n"
    atomic_write(directory / LAST_FILE, text, mode=0o644, durable=False)


def read_last(runs_dir: Path, job: str) -> dict[str, Any]:
    """Return ``last.json`` of a job ({} when there is none or it is unreadable)."""
    try:
        data = json.loads((job_runs_dir(runs_dir, job) / LAST_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


def list_records(runs_dir: Path, job: str) -> list[RunRecord]:
    """Return a job's run records, newest first (unreadable files are skipped)."""
    directory = job_runs_dir(runs_dir, job)
    try:
        names = sorted(
            (n for n in os.listdir(directory) if n.endswith(RECORD_SUFFIX) and n != LAST_FILE),
            reverse=True,
        )
    except OSError:
        return []
    records = []
    for name in names:
        try:
            record = RunRecord.from_json(json.loads((directory / name).read_text("utf-8")))
        except (OSError, ValueError):
            continue
        if record is not None:
            records.append(record)
    return records


def prune_runs(
    runs_dir: Path,
    log_dir: Path,
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
        names = sorted(
            (n for n in os.listdir(directory) if n.endswith(RECORD_SUFFIX) and n != LAST_FILE),
            reverse=True,
        )
    except OSError:
        names = []
    kept = {name[: -len(RECORD_SUFFIX)] for name in names[:keep]}
    for name in names[keep:]:
        removed += _remove(directory / name)
    cutoff = time.time() - keep_days * 86400
    logs = log_dir / job
    try:
        entries = list(os.scandir(logs))
    except OSError:
        return removed
    for entry in entries:
        run_id = entry.name[: -len(".log")]
        if not entry.name.endswith(".log") or run_id in protected:
            continue
        try:
            too_old = entry.stat().st_mtime < cutoff
        except OSError:
            continue
        if too_old or run_id not in kept:
            removed += _remove(Path(entry.path))
    return removed


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except OSError:
        return 0
    return 1
