"""The shim's steps for one run of one job (``cronsync-run JOB``).

read the job from ``current`` -> time-zone gate -> concurrency lock -> a one-host job's
fleet lease (:mod:`cronsync.run.fleet`; lost: recorded, exit 0) -> jitter ->
secrets (fail closed; AWS ones from the broker) -> run with timeout, output masked
into the local log (the spool the broker ships to CloudWatch) -> success check -> run
record -> the broker told the run ended (it publishes the metrics) -> retention.

Exit status: the job's own code (128+N when a signal ended it); 125 when cronsync
could not find or read the job, or failed itself (its run record then says why), 126
when its secrets were unavailable or its program not executable, 127 when its program
does not exist. A skipped run (previous one still going) or a run gated out by its time
zone exits 0. No other code of cronsync's own ever leaks out of the shim.

The steps before the process are :mod:`cronsync.run.steps`'; shipping, ending the
record on failure and retention are :mod:`cronsync.run.after`'s.
"""

from __future__ import annotations

import sys

from cronsync.core.logformat import CRONSYNC, ERR, OUT
from cronsync.core.suppress import suppress
from cronsync.run.after import after_run, describe_error, end_failed, end_shipping, start_shipping
from cronsync.run.context import JobRun, RunOptions
from cronsync.run.jobspec import EXIT_CANNOT_RUN, EXIT_NOT_FOUND, EXIT_SHIM, ShimError
from cronsync.run.lock import JOB_LOCK_FD
from cronsync.run.process import run_process
from cronsync.run.pump import OutputPump
from cronsync.run.record import FAILED, SUCCEEDED, TIMED_OUT
from cronsync.run.steps import (
    fetch_job_secrets,
    job_environment,
    kill_grace,
    open_run_log,
    prepare_job,
    take_lock,
    wait_jitter,
)

# Annotations only: the shim's start-up imports neither typing nor pathlib (nor
# dataclasses), so not `typing.TYPE_CHECKING` either.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import BinaryIO, Optional

    from cronsync.run.lock import JobLock
    from cronsync.run.masking import Masker
    from cronsync.run.process import ProcessResult

CHECK_TIMEOUT = 600.0


def _status(result: ProcessResult, check: Optional[int]) -> str:
    if result.timed_out:
        return TIMED_OUT
    if result.exit_code == 0 and not check:
        return SUCCEEDED
    return FAILED


def _execute(
    run: JobRun, pump: OutputPump, env: Mapping[str, str], lock: JobLock
) -> tuple[ProcessResult, Optional[int]]:
    job = run.job
    grace = kill_grace(run)
    # the job's processes hold the lock too: a killed shim does not free it for a second
    # copy while they live (see cronsync.run.lock)
    passed = None if lock.fd is None else {JOB_LOCK_FD: lock.fd}
    if passed:
        env = {**env, "CRONSYNC_LOCK_FD": str(JOB_LOCK_FD)}
    try:
        result = run_process(
            job.argv,
            cwd=job.cwd,
            env=env,
            pump=pump,
            timeout=job.number("timeout"),
            grace=grace,
            on_start=lock.note_holder,
            keep_fds=passed,
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
                keep_fds=passed,
            )
            check = checked.exit_code
        except OSError as exc:
            pump.note(f"success check could not start: {exc.strerror}")
            check = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_CANNOT_RUN
        finally:
            lock.note_holder(None)
    return result, check


def _run_locked(run: JobRun, lock: JobLock) -> int:
    """Everything after the lock: jitter, secrets, the process, the record."""
    wait_jitter(run)
    secret_values = fetch_job_secrets(run)
    masker = _masker(secret_values.values())
    log_path, log = open_run_log(run)
    try:
        run.save(run.record.finished(log=log_path))
        start_shipping(run, log_path)
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
                result, check = _execute(run, pump, job_environment(run, secret_values), lock)
            except ShimError as exc:
                pump.note(exc.message)
                exc.shown = run.options.by_hand  # the note was shown on the terminal
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
        with suppress(Exception):  # what was logged still ships, then the error
            end_shipping(run)
        raise
    end_shipping(run)
    return code


def _masker(values: Iterable[str]) -> Optional[Masker]:
    """A masker of the job's secret values, or None when it has none (the masking
    module is then not even imported: the shim's start-up)."""
    values = list(values)
    if not any(values):
        return None
    from cronsync.run.masking import Masker

    return Masker(values)


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


def _wants_fleet_lease(run: JobRun) -> bool:
    """Whether this run must hold the fleet lease first: a one-host job run by cron on
    a host with a ``[fleet] table``. Without one there is no fleet: it runs as
    every-host, and pays nothing for it; an operator's ``cronsync run`` runs here,
    whatever other hosts do."""
    if run.job.raw.get("run_on") != "one-host" or run.options.by_hand:
        return False
    fleet = run.settings.get("fleet")
    return isinstance(fleet, dict) and bool(fleet.get("table"))


def _fleet_lease(run: JobRun) -> bool:
    """Whether the one-host job runs now (:mod:`cronsync.run.fleet`, imported only for
    one-host jobs in a fleet)."""
    from cronsync.run.fleet import take_lease

    return take_lease(run)


def _release_fleet_lease(run: JobRun) -> None:
    """Free the job's lease for the next occurrence (forbid: others wait for it)."""
    if str(run.job.raw.get("concurrency") or "forbid") != "forbid":
        return
    from cronsync.run.fleet import release_lease

    problem = release_lease(run)
    if problem:
        with suppress(Exception):
            run.add_extra({"fleet_release": f"not released (it expires): {problem}"})


def run_job(name: str, options: RunOptions) -> int:
    """Run one job as the shim does; return the exit status (see the module doc).

    Raises:
        ShimError: the job could not be run, or cronsync failed: exit code 125-127.
            Once the run has a record, the record is ended as ``error`` with the reason
            first; no other exception comes out (but KeyboardInterrupt, re-raised after
            ending the record).
    """
    try:
        job = prepare_job(name, options)
        if job is None:
            return 0
        run = JobRun(job, options)
    except ShimError:
        raise
    except Exception as exc:
        raise ShimError(f"cronsync-run failed: {describe_error(exc)}", EXIT_SHIM) from exc
    try:
        lock = take_lock(run)
    except FileNotFoundError as exc:
        where = f"{run.runs_dir}/{name}"
        why = "a sync creates it" if job.installed else "the job is not installed on this host"
        raise ShimError(
            f"cannot take the lock of {name}: {where} does not exist ({why})", EXIT_SHIM
        ) from exc
    except OSError as exc:
        raise ShimError(
            f"cannot take the lock of {name} in {run.runs_dir}/{name}: {exc.strerror}", EXIT_SHIM
        ) from exc
    except Exception as exc:
        raise ShimError(f"cronsync-run failed: {describe_error(exc)}", EXIT_SHIM) from exc
    if lock is None:
        return 0
    try:
        if _wants_fleet_lease(run) and not _fleet_lease(run):
            return 0  # lost to another host, or skipped by fleet_unreachable: recorded
        return _run_locked(run, lock)
    except ShimError as exc:
        end_failed(run, exc.exit_code, exc.message)
        raise
    except KeyboardInterrupt:
        end_failed(run, 130, "interrupted")
        raise
    except Exception as exc:
        message = f"cronsync-run failed: {describe_error(exc)}"
        end_failed(run, EXIT_SHIM, message)
        raise ShimError(message, EXIT_SHIM) from exc
    finally:
        lock.release()
        if run.fencing_token is not None:
            _release_fleet_lease(run)
        after_run(run)
