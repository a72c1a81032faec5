"""The shim's steps before a job's process starts, and the state of one run.

gate (is the job installed, due in its time zone) -> record -> concurrency lock ->
jitter -> secrets (fail closed) -> the job's environment and log. See
:mod:`cronsync.run.runner`, which runs them in order.

On the shim's start-up path: no pathlib, dataclasses or typing at import time.
"""

from __future__ import annotations

import os

from cronsync.files.paths import path_str
from cronsync.run.jobspec import EXIT_CANNOT_RUN, ShimError, find_job, load_release
from cronsync.run.lock import (
    ALLOW,
    LOCK_FILE,
    REPLACE,
    Holder,
    JobLock,
    busy_reason,
    replace_previous,
    stop_group,
)
from cronsync.run.record import ERROR, RUNNING, SKIPPED, iso_time
from cronsync.run.store import read_record, write_record

# Annotations only: the shim's start-up imports neither typing nor pathlib (nor
# dataclasses), so not `typing.TYPE_CHECKING` either.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, BinaryIO, Optional

    from cronsync.run.context import JobRun, RunOptions
    from cronsync.run.jobspec import JobSpec, Release


def due_now(job: JobSpec, now: float) -> bool:
    """The time-zone gate: is the job due at this minute in its own zone?"""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from cronsync.core.schedule import parse_schedule
    from cronsync.core.tzrender import is_due

    moment = datetime.fromtimestamp(now, timezone.utc).replace(second=0, microsecond=0)
    return is_due(
        parse_schedule(str(job.raw["schedule"])), moment, ZoneInfo(str(job.raw["timezone"]))
    )


def kill_grace(run: JobRun) -> float:
    return float(run.settings.get("kill_grace", 30))


def take_lock(run: JobRun) -> Optional[JobLock]:
    """Apply the concurrency policy; return the held lock, or None when skipped.

    The previous run counts as running while its shim holds the lock, while a process
    of its job holds the lock's descriptor, and, when its shim died while the job ran,
    while that job's process group lives (see :mod:`cronsync.run.lock`). Only processes
    of the job's user (the shim runs as it) count or are stopped.
    """
    policy = str(run.job.raw.get("concurrency") or "forbid")
    lock = JobLock(path_str(run.runs_dir, run.job.name, LOCK_FILE), run.run_id)
    if policy == ALLOW:
        return lock
    grace, how, uid = kill_grace(run), "ended", os.getuid()
    if not lock.try_acquire(claim=False):
        busy = lock.current_holder()
        if policy != REPLACE or not replace_previous(lock, grace + 5.0, uid):
            run.end(SKIPPED, None, reason=busy_reason(busy))
            return None
        how = "stopped"
    previous = lock.previous_holder
    if previous.pgid and previous.job_alive(uid):  # its job closed the lock's descriptor
        if policy != REPLACE or not stop_group(previous, grace, uid):
            lock.release()
            run.end(SKIPPED, None, reason=busy_reason(previous))
            return None
        how = "stopped"
    lock.claim()
    _close_dead_run(run, previous, how)
    return lock


def _close_dead_run(run: JobRun, previous: Holder, how: str) -> None:
    """End the record of the lock's previous holder if it still says "running": its
    shim died (killed, or the host went down) before it could end it, and what is left
    of its job has ``how`` ("ended", or "stopped" by this run). Best effort."""
    if not previous.run_id or previous.run_id == run.run_id:
        return
    if not previous.pgid:  # no process of the job ran when its shim died
        reason = "cronsync-run ended before the run did (killed, or the host stopped)"
    elif how == "stopped":
        reason = (
            "orphaned: cronsync-run ended before the job did (killed, or the host stopped); "
            f"run {run.run_id} stopped the job's processes (concurrency = replace); "
            "exit status unknown"
        )
    else:
        reason = (
            "orphaned: cronsync-run ended before the job did (killed, or the host stopped); "
            f"the job's processes had ended when run {run.run_id} started; exit status unknown"
        )
    try:
        record = read_record(run.runs_dir, run.job.name, previous.run_id)
        if record is None or record.status != RUNNING:
            return
        write_record(
            run.runs_dir,
            record.finished(status=ERROR, ended=iso_time(run.options.clock()), reason=reason),
        )
    except Exception:  # noqa: S110 - only tidying up another run's record
        pass


def job_environment(run: JobRun, secret_values: Mapping[str, str]) -> dict[str, str]:
    """The job's environment: the shim's own (what cron gave it, or what ``cronsync
    run`` set up), the job's env, its secrets, and the CRONSYNC_* variables (with
    CRONSYNC_FENCING_TOKEN when a one-host job won its lease)."""
    env = dict(os.environ)
    env.update(run.job.env)
    env.update(secret_values)
    env.update(
        {
            "CRONSYNC_JOB": run.job.name,
            "CRONSYNC_RUN_ID": run.run_id,
            "CRONSYNC_COMMIT": run.record.commit,
            "CRONSYNC_RELEASE": run.job.release.directory,
        }
    )
    if run.fencing_token is not None:
        env["CRONSYNC_FENCING_TOKEN"] = run.fencing_token
    return env


def fetch_job_secrets(run: JobRun) -> dict[str, str]:
    """Return the job's secrets: from the broker (the AWS backend: the job's user holds
    no AWS credentials) or from the user's own file.

    Raises:
        ShimError: any secret is unavailable, the broker refused or is unreachable
            (exit 126: the job must not start).
    """
    refs = run.job.raw.get("secrets") or []
    if not refs:
        return {}
    backend = run.settings.get("secrets") or {}
    if backend.get("backend") == "aws":
        from cronsync.core.errors import CronsyncError
        from cronsync.run.broker import fetch_secrets as from_broker
        from cronsync.run.broker import socket_path

        try:
            declared = [str(ref.get("env")) for ref in refs if isinstance(ref, dict)]
            where = socket_path(run.settings, path_str(run.options.root))
            return from_broker(where, run.job.name, declared)
        except CronsyncError as exc:
            raise ShimError(exc.message, EXIT_CANNOT_RUN) from exc
    from cronsync.secrets.file import fetch_file
    from cronsync.secrets.resolve import SecretsUnavailable, resolve_secrets

    kind = backend.get("backend", "file")
    path = str(backend.get("file", "")).replace("{user}", run.record.user)

    def fetch(wanted: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        if kind != "file":
            return dict.fromkeys(wanted, f"unknown secrets backend {kind!r}")
        return fetch_file(wanted, path)

    try:
        return resolve_secrets(refs, fetch)
    except SecretsUnavailable as exc:
        raise ShimError(str(exc), EXIT_CANNOT_RUN) from exc


def open_run_log(run: JobRun) -> tuple[str, BinaryIO]:
    directory = path_str(run.log_dir, run.job.name)
    path = path_str(directory, f"{run.run_id}.log")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ShimError(f"cannot write the run log {path}: {exc.strerror}") from exc
    return path, os.fdopen(fd, "ab", buffering=1024 * 1024)


def wait_jitter(run: JobRun) -> None:
    """Sleep a random part of the job's ``jitter`` (not when run by hand)."""
    jitter = run.job.number("jitter")
    if jitter and not run.options.by_hand:
        import random  # only jittered jobs pay for the import

        run.options.sleep(random.uniform(0, jitter))  # noqa: S311 - not for security


def prepare_job(name: str, options: RunOptions) -> Optional[JobSpec]:
    """Read the job from the installed release; None when the time-zone gate says it
    is not due now.

    Raises:
        ShimError: the release or the job cannot be read, or the job is not installed
            here (and not forced by hand).
    """
    release: Release = load_release(options.root)
    job = find_job(release, name)
    if not job.installed and not (options.by_hand and options.force):
        raise ShimError(
            f"job {name!r} is not installed on this host "
            f"({job.raw.get('status')}); `cronsync run --force` runs it anyway"
        )
    if job.raw.get("gate") and not options.by_hand and not due_now(job, options.clock()):
        return None
    return job
