"""The shim's steps for one run of one job (``cronsync-run JOB``).

read the job from ``current`` -> time-zone gate -> concurrency lock -> jitter ->
secrets (fail closed) -> run with timeout, output masked into the local log and
forwarded to CloudWatch -> success check -> run record -> metrics -> retention.

Exit status: the job's own code (128+N when a signal ended it); 125 when cronsync
could not find or read the job, or failed itself (its run record then says why), 126
when its secrets were unavailable or its program not executable, 127 when its program
does not exist. A skipped run (previous one still going) or a run gated out by its time
zone exits 0. No other code of cronsync's own ever leaks out of the shim.
"""

from __future__ import annotations

import contextlib
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
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    TIMED_OUT,
    RunRecord,
    iso_time,
    new_run_id,
    prune_runs,
    read_record,
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
        """Record the run's end (now); return its exit status."""
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

    def add_extra(self, extra: Mapping[str, Any]) -> None:
        """Add keys to the record's ``extra`` (and save it)."""
        if extra:
            self.save(self.record.finished(extra={**self.record.extra, **extra}))


def _due_now(job: JobSpec, now: float) -> bool:
    """The time-zone gate: is the job due at this minute in its own zone?"""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from .schedule import is_due, parse_schedule

    moment = datetime.fromtimestamp(now, timezone.utc).replace(second=0, microsecond=0)
    return is_due(
        parse_schedule(str(job.raw["schedule"])), moment, ZoneInfo(str(job.raw["timezone"]))
    )


def _kill_grace(run: _Run) -> float:
    return float(run.settings.get("kill_grace", 30))


def _take_lock(run: _Run) -> Optional[JobLock]:
    """Apply the concurrency policy; return the held lock, or None when skipped."""
    policy = str(run.job.raw.get("concurrency") or "forbid")
    lock = JobLock(path_str(run.runs_dir, run.job.name, LOCK_FILE), run.run_id)
    if policy == ALLOW:
        return lock
    if lock.try_acquire() or (policy == REPLACE and replace_previous(lock, _kill_grace(run) + 5.0)):
        _close_dead_run(run, lock.previous[2])
        return lock
    pid, _ = lock.holder()
    run.end(SKIPPED, None, reason=f"skipped: previous run still running (pid {pid})")
    return None


def _close_dead_run(run: _Run, run_id: str) -> None:
    """End the record of the lock's previous holder if it still says "running": its
    shim died (killed, or the host went down) before it could end it. Best effort."""
    if not run_id or run_id == run.run_id:
        return
    try:
        record = read_record(run.runs_dir, run.job.name, run_id)
        if record is None or record.status != RUNNING:
            return
        write_record(
            run.runs_dir,
            record.finished(
                status=ERROR,
                ended=iso_time(run.options.clock()),
                reason="cronsync-run ended before the run did (killed, or the host stopped)",
            ),
        )
    except Exception:  # noqa: S110 - only tidying up another run's record
        pass


def _environment(run: _Run, secret_values: Mapping[str, str]) -> dict[str, str]:
    """The job's environment: the shim's own (what cron gave it, or what ``cronsync
    run`` set up), the job's env, its secrets, and the CRONSYNC_* variables."""
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
    run: _Run, pump: OutputPump, env: Mapping[str, str], lock: JobLock
) -> tuple[ProcessResult, Optional[int]]:
    job = run.job
    grace = _kill_grace(run)
    try:
        result = run_process(
            job.argv,
            cwd=job.cwd,
            env=env,
            pump=pump,
            timeout=job.number("timeout"),
            grace=grace,
            on_start=lock.note_holder,
        )
    except FileNotFoundError as exc:
        raise ShimError(
            f"cannot start {job.argv[0]}: no such program or folder", EXIT_NOT_FOUND
        ) from exc
    except OSError as exc:
        raise ShimError(f"cannot start {job.argv[0]}: {exc.strerror}", EXIT_CANNOT_RUN) from exc
    finally:
        lock.note_holder(None)  # no process of the job runs now: nothing to kill
    check = None
    if result.exit_code == 0 and not result.interrupted and job.check_argv:
        pump.note(f"success check: {' '.join(job.raw['success']['check'])}")
        try:
            checked = run_process(
                job.check_argv,
                cwd=job.cwd,
                env=env,
                pump=pump,
                timeout=CHECK_TIMEOUT,
                grace=grace,
                on_start=lock.note_holder,
            )
            check = checked.exit_code
        except OSError as exc:
            pump.note(f"success check could not start: {exc.strerror}")
            check = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_CANNOT_RUN
        finally:
            lock.note_holder(None)
    return result, check


def _run_locked(run: _Run, lock: JobLock) -> int:
    """Everything after the lock: jitter, secrets, the process, the record."""
    jitter = run.job.number("jitter")
    if jitter and not run.options.by_hand:
        import random  # only jittered jobs pay for the import

        run.options.sleep(random.uniform(0, jitter))  # noqa: S311 - not for security
    secret_values = _fetch_secrets(run)
    masker = Masker(secret_values.values())
    log_path, log = _open_log(run)
    try:
        run.save(run.record.finished(log=log_path))
        forwarder = _start_forwarder(run, log_path)
    except BaseException:
        log.close()
        raise
    try:
        with log:
            pump = OutputPump(log, masker, echo=_terminal(run.options))
            pump.note(
                f"run {run.run_id} of {run.job.name} at {run.record.commit[:12]} "
                f"as {run.record.user}"
            )
            try:
                result, check = _execute(run, pump, _environment(run, secret_values), lock)
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
        reason = None
        if result.interrupted is not None and not result.timed_out:
            reason = f"stopped: cronsync-run received {_signal_name(result.interrupted)}"
        # the end is the job's (and its check's), recorded before the wait for CloudWatch
        code = run.end(
            status,
            code,
            signal=result.signal,
            timed_out=result.timed_out,
            reason=reason,
            output_bytes=pump.bytes,
            output_lines=pump.lines,
            check_exit_code=check,
        )
    except BaseException:
        if forwarder is not None:  # what was logged still gets its chance, then the error
            with contextlib.suppress(Exception):
                run.add_extra(_finish_forwarder(forwarder))
        raise
    run.add_extra(_finish_forwarder(forwarder))
    return code


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _terminal(options: RunOptions) -> Optional[dict[str, BinaryIO]]:
    """By hand, the job's output is shown as well as logged."""
    if not options.by_hand:
        return None
    return {OUT: sys.stdout.buffer, ERR: sys.stderr.buffer, CRONSYNC: sys.stderr.buffer}


def _start_forwarder(run: _Run, log_path: str) -> Any:
    """Start forwarding the run's log to CloudWatch, when the host does.

    Never fails the run: when forwarding cannot be set up (the pending file cannot be
    written, boto3 is missing...), the run goes on unforwarded and its record says why
    in ``extra.cloudwatch``.
    """
    if not (run.settings.get("logs") or {}).get("cloudwatch"):
        return None
    try:
        from pathlib import Path

        from .cloudforward import start_forwarding, stream_name

        stream = stream_name(run.record.host, run.job.name, run.run_id)
        forwarder = start_forwarding(
            run.settings, Path(run.runs_dir), run.job.name, run.run_id, Path(log_path)
        )
    except Exception as exc:
        run.save(
            run.record.finished(
                extra={
                    **run.record.extra,
                    "cloudwatch": {
                        "forwarded": False,
                        "delivered": False,
                        "error": f"not forwarded: {_describe(exc)}",
                    },
                }
            )
        )
        return None
    run.save(run.record.finished(cloudwatch_stream=stream))
    return forwarder


def _finish_forwarder(forwarder: Any) -> dict[str, Any]:
    """Give the forwarder its last seconds; what to add to the record's ``extra``."""
    if forwarder is None:
        return {}
    try:
        from .cloudforward import finish_forwarding

        return finish_forwarding(forwarder, FORWARD_DEADLINE)
    except Exception as exc:
        return {"cloudwatch": {"delivered": False, "error": _describe(exc)}}


def _describe(exc: BaseException) -> str:
    """One line about an exception: its message (a cronsync error's own), or its type
    and text."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _after(run: _Run) -> None:
    """Metrics and retention: best effort, never changing the run's result."""
    try:
        _publish_metrics(run)
    except Exception as exc:
        print(f"cronsync-run: metrics not published: {_describe(exc)}", file=run.options.stderr)
    try:
        prune_runs(
            run.runs_dir,
            run.log_dir,
            run.job.name,
            int(run.settings.get("keep_runs", 100)),
            int(run.settings.get("keep_days", 30)),
            _pending_runs(run),
        )
    except Exception as exc:
        print(f"cronsync-run: old runs not pruned: {_describe(exc)}", file=run.options.stderr)


def _publish_metrics(run: _Run) -> None:
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
        ShimError: the job could not be run, or cronsync failed: exit code 125-127.
            Once the run has a record, the record is ended as ``error`` with the reason
            first; no other exception comes out (but KeyboardInterrupt, re-raised after
            ending the record).
    """
    try:
        job = _prepare(name, options)
        if job is None:
            return 0
        run = _Run(job, options)
    except ShimError:
        raise
    except Exception as exc:
        raise ShimError(f"cronsync-run failed: {_describe(exc)}", EXIT_SHIM) from exc
    try:
        lock = _take_lock(run)
    except OSError as exc:
        raise ShimError(
            f"cannot take the lock of {name} in {run.runs_dir}: {exc.strerror}", EXIT_SHIM
        ) from exc
    except Exception as exc:
        raise ShimError(f"cronsync-run failed: {_describe(exc)}", EXIT_SHIM) from exc
    if lock is None:
        return 0
    try:
        return _run_locked(run, lock)
    except ShimError as exc:
        _end_failed(run, exc.exit_code, exc.message)
        raise
    except KeyboardInterrupt:
        _end_failed(run, 130, "interrupted")
        raise
    except Exception as exc:
        message = f"cronsync-run failed: {_describe(exc)}"
        _end_failed(run, EXIT_SHIM, message)
        raise ShimError(message, EXIT_SHIM) from exc
    finally:
        lock.release()
        _after(run)


def _end_failed(run: _Run, exit_code: int, message: str) -> None:
    """End the run's record as ``error`` with ``message`` (best effort: writing it may
    be what failed). A run whose end is already recorded keeps its result; the error
    is added to its ``extra``."""
    try:
        if run.record.status == RUNNING:
            run.end(ERROR, exit_code, reason=message)
        else:
            run.add_extra({"cronsync_error": message})
    except Exception as exc:
        print(
            f"cronsync-run: cannot record the run's end: {_describe(exc)}", file=run.options.stderr
        )
