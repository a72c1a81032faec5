"""The shim's steps for one run of one job (``cronsync-run JOB``).

read the job from ``current`` -> time-zone gate -> concurrency lock -> jitter ->
secrets (fail closed) -> run with timeout, output masked into the local log and
forwarded to CloudWatch -> success check -> run record -> metrics -> retention.

Exit status: the job's own code (128+N when a signal ended it); 125 when cronsync
could not find or read the job, 126 when its secrets were unavailable or its program
not executable, 127 when its program does not exist. A skipped run (previous one still
going) or a run gated out by its time zone exits 0.
"""

from __future__ import annotations

import os
import pwd
import sys
import time

from .fsutil import path_str
from .jobspec import (
    EXIT_CANNOT_RUN,
    EXIT_NOT_FOUND,
    EXIT_SHIM,
    ShimError,
    find_job,
    load_release,
)
from .logformat import CRONSYNC, ERR, OUT
from .masking import Masker
from .pump import OutputPump
from .runlock import ALLOW, LOCK_FILE, REPLACE, JobLock, replace_previous
from .runproc import run_process
from .runrecord import (
    ERROR,
    FAILED,
    SKIPPED,
    SUCCEEDED,
    TIMED_OUT,
    RunRecord,
    iso_time,
    new_run_id,
    prune_runs,
    write_record,
)

# Annotations only: the shim's start-up imports neither typing nor pathlib (nor
# dataclasses), so not `typing.TYPE_CHECKING` either.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, BinaryIO, Callable, Optional

    from .fsutil import StrPath
    from .jobspec import JobSpec, Release
    from .runproc import ProcessResult

CHECK_TIMEOUT = 600.0
FORWARD_DEADLINE = 10.0  # seconds the shim waits at the end for CloudWatch, at most


_STDERR: Any = object()  # RunOptions' default stderr: sys.stderr when it is made


class RunOptions:
    """How the shim was asked to run.

    Attributes:
        root: the host's ``paths.root`` (a str or a path object).
        by_hand: ``cronsync run`` by an operator: no gate, no jitter, runs a job that
            is not installed here only if ``force``.
        force: with ``by_hand``, run a disabled or untargeted job too.
        clock, sleep: time sources (tests pass their own).
        stderr: where the shim's own complaints go (``sys.stderr`` by default).
    """

    # the fields, in order
    __slots__ = (  # noqa: RUF023
        "root",
        "by_hand",
        "force",
        "clock",
        "sleep",
        "stderr",
    )

    def __init__(
        self,
        root: StrPath = "/",
        by_hand: bool = False,
        force: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        stderr: Any = _STDERR,
    ) -> None:
        self.root = root
        self.by_hand = by_hand
        self.force = force
        self.clock = clock
        self.sleep = sleep
        self.stderr = sys.stderr if stderr is _STDERR else stderr

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RunOptions({fields})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RunOptions) and other.__class__ is self.__class__:
            return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


class _Run:
    """The state of one run: its job, record, directories."""

    def __init__(self, job: JobSpec, options: RunOptions) -> None:
        self.job = job
        self.options = options
        settings = job.release.settings
        self.settings = settings
        self.runs_dir = path_str(
            settings.get("runs_dir") or path_str(options.root, "var/lib/cronsync/runs")
        )
        self.log_dir = path_str(
            settings.get("log_dir") or path_str(options.root, "var/log/cronsync")
        )
        now = options.clock()
        self.run_id = new_run_id(now)
        self.started = now
        self.record = RunRecord(
            run_id=self.run_id,
            job=job.name,
            host=str(settings.get("host", "")),
            user=_user_name(),
            commit=str(job.release.document.get("commit", "")),
            release=job.release.name,
            started=iso_time(now),
            by_hand=options.by_hand,
        )

    def save(self, record: RunRecord) -> None:
        self.record = record
        write_record(self.runs_dir, record)

    def end(self, status: str, exit_code: Optional[int], **changes: Any) -> int:
        now = self.options.clock()
        self.save(
            self.record.finished(
                status=status,
                exit_code=exit_code,
                ended=iso_time(now),
                duration=round(now - self.started, 3),
                **changes,
            )
        )
        return 0 if exit_code is None else exit_code


def _due_now(job: JobSpec, now: float) -> bool:
    """The time-zone gate: is the job due at this minute in its own zone?"""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from .schedule import is_due, parse_schedule

    moment = datetime.fromtimestamp(now, timezone.utc).replace(second=0, microsecond=0)
    return is_due(
        parse_schedule(str(job.raw["schedule"])), moment, ZoneInfo(str(job.raw["timezone"]))
    )


def _take_lock(run: _Run) -> Optional[JobLock]:
    """Apply the concurrency policy; return the held lock, or None when skipped."""
    policy = str(run.job.raw.get("concurrency", "forbid"))
    lock = JobLock(path_str(run.runs_dir, run.job.name, LOCK_FILE))
    if policy == ALLOW or lock.try_acquire():
        return lock
    if policy == REPLACE:
        grace = float(run.settings.get("kill_grace", 30)) + 5.0
        if replace_previous(lock, grace):
            return lock
    pid, _ = lock.holder()
    run.end(SKIPPED, None, reason=f"skipped: previous run still running (pid {pid})")
    return None


def _environment(run: _Run, secret_values: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (run.job.raw.get("env") or {}).items()})
    env.update(secret_values)
    env.update(
        {
            "CRONSYNC_JOB": run.job.name,
            "CRONSYNC_RUN_ID": run.run_id,
            "CRONSYNC_COMMIT": run.record.commit,
            "CRONSYNC_RELEASE": run.job.release.directory,
        }
    )
    return env


def _fetch_secrets(run: _Run) -> dict[str, str]:
    refs = run.job.raw.get("secrets") or []
    if not refs:
        return {}
    from .awsclients import AwsSettings
    from .secrets import SecretsUnavailable, fetch_secrets

    backend = run.settings.get("secrets") or {}
    try:
        return fetch_secrets(
            refs,
            str(backend.get("backend", "file")),
            file_template=str(backend.get("file", "")),
            user=run.record.user,
            aws=AwsSettings.from_json(run.settings.get("aws") or {}),
        )
    except SecretsUnavailable as exc:
        raise ShimError(str(exc), EXIT_CANNOT_RUN) from exc


def _open_log(run: _Run) -> tuple[str, BinaryIO]:
    directory = path_str(run.log_dir, run.job.name)
    path = path_str(directory, f"{run.run_id}.log")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise ShimError(f"cannot write the run log {path}: {exc.strerror}") from exc
    return path, os.fdopen(fd, "ab", buffering=1024 * 1024)


def _status(result: ProcessResult, check: Optional[int]) -> str:
    if result.timed_out:
        return TIMED_OUT
    if result.exit_code == 0 and not check:
        return SUCCEEDED
    return FAILED


def _execute(
    run: _Run, pump: OutputPump, env: Mapping[str, str]
) -> tuple[ProcessResult, Optional[int]]:
    job = run.job
    grace = float(run.settings.get("kill_grace", 30))
    try:
        result = run_process(
            job.argv, cwd=job.cwd, env=env, pump=pump, timeout=job.number("timeout"), grace=grace
        )
    except FileNotFoundError as exc:
        raise ShimError(
            f"cannot start {job.argv[0]}: no such program or folder", EXIT_NOT_FOUND
        ) from exc
    except OSError as exc:
        raise ShimError(f"cannot start {job.argv[0]}: {exc.strerror}", EXIT_CANNOT_RUN) from exc
    check = None
    if result.exit_code == 0 and not result.interrupted and job.check_argv:
        pump.note(f"success check: {' '.join(job.raw['success']['check'])}")
        try:
            checked = run_process(
                job.check_argv, cwd=job.cwd, env=env, pump=pump, timeout=CHECK_TIMEOUT, grace=grace
            )
            check = checked.exit_code
        except OSError as exc:
            pump.note(f"success check could not start: {exc.strerror}")
            check = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_CANNOT_RUN
    return result, check


def _run_locked(run: _Run) -> int:
    """Everything after the lock: jitter, secrets, the process, the record."""
    jitter = run.job.number("jitter")
    if jitter and not run.options.by_hand:
        import random  # only jittered jobs pay for the import

        run.options.sleep(random.uniform(0, jitter))  # noqa: S311 - not for security
    secret_values = _fetch_secrets(run)
    masker = Masker(secret_values.values())
    log_path, log = _open_log(run)
    run.save(run.record.finished(log=log_path))
    forwarder = _start_forwarder(run, log_path)
    with log:
        pump = OutputPump(log, masker, echo=_terminal(run.options))
        pump.note(
            f"run {run.run_id} of {run.job.name} at {run.record.commit[:12]} as {run.record.user}"
        )
        try:
            result, check = _execute(run, pump, _environment(run, secret_values))
        except ShimError as exc:
            pump.note(exc.message)
            pump.close()
            raise
        status = _status(result, check)
        pump.note(
            f"{status}: exit {result.exit_code}"
            + (f", check exit {check}" if check is not None else "")
        )
        pump.close()
    code = check if (result.exit_code == 0 and check) else result.exit_code
    delivery = _finish_forwarder(forwarder)
    return run.end(
        status,
        code,
        signal=result.signal,
        timed_out=result.timed_out,
        output_bytes=pump.bytes,
        output_lines=pump.lines,
        check_exit_code=check,
        extra=delivery,
    )


def _terminal(options: RunOptions) -> Optional[dict[str, BinaryIO]]:
    """By hand, the job's output is shown as well as logged."""
    if not options.by_hand:
        return None
    return {OUT: sys.stdout.buffer, ERR: sys.stderr.buffer, CRONSYNC: sys.stderr.buffer}


def _start_forwarder(run: _Run, log_path: str) -> Any:
    if not (run.settings.get("logs") or {}).get("cloudwatch"):
        return None
    from pathlib import Path

    from .cloudforward import start_forwarding, stream_name

    run.save(
        run.record.finished(
            cloudwatch_stream=stream_name(run.record.host, run.job.name, run.run_id)
        )
    )
    return start_forwarding(
        run.settings, Path(run.runs_dir), run.job.name, run.run_id, Path(log_path)
    )


def _finish_forwarder(forwarder: Any) -> dict[str, Any]:
    if forwarder is None:
        return {}
    from .cloudforward import finish_forwarding

    return finish_forwarding(forwarder, FORWARD_DEADLINE)


def _after(run: _Run) -> None:
    """Metrics and retention: best effort, never changing the run's result."""
    record = run.record
    if record.status != SKIPPED and (run.settings.get("metrics") or {}).get("cloudwatch"):
        from .metrics import job_metrics, publish

        metrics = job_metrics(record.status == SUCCEEDED, record.duration, record.timed_out)
        # per job, and per host (what the shipped alarms watch: one alarm per host)
        problem = publish(
            run.settings, metrics, {"Host": record.host, "Job": record.job}, host_level=True
        )
        if problem:
            print(f"cronsync-run: {problem}", file=run.options.stderr)
    prune_runs(
        run.runs_dir,
        run.log_dir,
        run.job.name,
        int(run.settings.get("keep_runs", 100)),
        int(run.settings.get("keep_days", 30)),
        _pending_runs(run),
    )


def _pending_runs(run: _Run) -> frozenset[str]:
    pending = path_str(run.runs_dir, run.job.name, "pending")
    try:
        return frozenset(name[: -len(".json")] for name in os.listdir(pending))
    except OSError:
        return frozenset()


def _prepare(name: str, options: RunOptions) -> Optional[JobSpec]:
    release: Release = load_release(options.root)
    job = find_job(release, name)
    if not job.installed and not (options.by_hand and options.force):
        raise ShimError(
            f"job {name!r} is not installed on this host "
            f"({job.raw.get('status')}); `cronsync run --force` runs it anyway"
        )
    if job.raw.get("gate") and not options.by_hand and not _due_now(job, options.clock()):
        return None
    return job


def run_job(name: str, options: RunOptions) -> int:
    """Run one job as the shim does; return the exit status (see the module doc).

    Raises:
        ShimError: only before a run record can be written (no release, no such job).
    """
    job = _prepare(name, options)
    if job is None:
        return 0
    run = _Run(job, options)
    try:
        lock = _take_lock(run)
    except OSError as exc:
        raise ShimError(
            f"cannot take the lock of {name} in {run.runs_dir}: {exc.strerror}", EXIT_SHIM
        ) from exc
    if lock is None:
        return 0
    try:
        return _run_locked(run)
    except ShimError as exc:
        run.end(ERROR, exc.exit_code, reason=exc.message)
        raise
    finally:
        lock.release()
        _after(run)
