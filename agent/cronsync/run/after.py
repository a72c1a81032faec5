"""The shim's work around a run's record: handing its output and metrics to the
broker through the spool, ending it on failure, and retention after every run.

None of it changes the run's result: shipping and the after-run steps are best effort,
and say what went wrong in the record's ``extra`` or on the shim's stderr.

On the shim's start-up path: no pathlib, dataclasses or typing at import time.
"""

from __future__ import annotations

import os

from cronsync.files.paths import path_str
from cronsync.run.record import ERROR, RUNNING
from cronsync.run.store import prune_runs

# Annotations only: the shim's start-up imports neither typing nor pathlib (nor
# dataclasses), so not `typing.TYPE_CHECKING` either.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from cronsync.run.context import JobRun


def start_shipping(run: JobRun, log_path: str) -> None:
    """Set up the run's delivery when the host ships output or metrics to CloudWatch:
    its pending file beside the log (the spool), then a word to the broker, which
    forwards the log while it grows. The job's user holds no AWS credentials: the
    broker (root) does the sending.

    Never fails the run: when the pending file cannot be written, the run goes on
    unforwarded; when the broker is not there, everything stays in the spool for it or
    ``cronsync flush``. The record's ``extra.cloudwatch`` says which.
    """
    logs, metrics = _shipped(run)
    if not (logs or metrics):
        return
    from cronsync.core.brokerwire import STARTED
    from cronsync.run.broker import notify, socket_path

    run.broker_socket = socket_path(run.settings, path_str(run.options.root))
    if not logs:
        return  # metrics only: the broker hears of the run at its end
    from cronsync.cloud.spoolstart import stream_name, write_fresh_pending

    stream = stream_name(run.record.host, run.job.name, run.run_id)
    group = str(run.settings.get("log_group"))
    try:
        run.pending_file = write_fresh_pending(
            run.runs_dir, run.job.name, run.run_id, log_path, group, stream
        )
    except Exception as exc:
        error = f"not forwarded: {describe_error(exc)}"
        run.add_extra({"cloudwatch": {"forwarded": False, "error": error}})
        return
    run.save(run.record.finished(cloudwatch_stream=stream))
    problem = notify(run.broker_socket, STARTED, run.job.name, run.run_id)
    if problem:
        run.add_extra({"broker": f"not shipping live: {problem}"})


def _shipped(run: JobRun) -> tuple[bool, bool]:
    """Whether the host ships (output, metrics) to CloudWatch."""
    logs = bool((run.settings.get("logs") or {}).get("cloudwatch"))
    return logs, bool((run.settings.get("metrics") or {}).get("cloudwatch"))


def end_shipping(run: JobRun) -> None:
    """Tell the broker the run ended: it delivers the rest and publishes the run's
    metrics. The metrics marker is left first, so the metrics are published even when
    the broker is down or dies before it gets to them. When the broker cannot be told,
    mark the pending delivery finished, so flush delivers the whole log without waiting
    for it to go stale. Best effort."""
    if run.broker_socket is None:
        return
    from cronsync.core.brokerwire import ENDED
    from cronsync.run.broker import notify

    notes = []
    if _shipped(run)[1]:
        try:
            leave_metrics_marker(run)
        except Exception as exc:
            notes.append(f"its metrics may not be published: {describe_error(exc)}")
    problem = notify(run.broker_socket, ENDED, run.job.name, run.run_id)
    if problem:
        notes.insert(0, f"not shipped at the end: {problem}; the spool keeps it for the broker")
        if run.pending_file is not None:
            try:
                _mark_finished(run.pending_file)
            except Exception as exc:
                notes.append(f"pending file not marked finished: {describe_error(exc)}")
    if notes:
        run.add_extra({"broker": "; ".join(notes)})


def leave_metrics_marker(run: JobRun) -> None:
    """Leave ``pending/RUN-ID.metrics`` (empty): the broker publishes the run's metrics
    from its record, then removes the marker."""
    from cronsync.cloud.spoolstart import PENDING_DIR
    from cronsync.core.brokerwire import METRICS_MARKER

    directory = path_str(run.runs_dir, run.job.name, PENDING_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    marker = path_str(directory, f"{run.run_id}{METRICS_MARKER}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(marker, flags, 0o600))


def _mark_finished(pending_file: str) -> None:
    """Mark the pending delivery finished, under its log's delivery lock (skipped when
    a delivery holds the lock: it marks the run finished itself once it goes stale)."""
    from dataclasses import replace
    from pathlib import Path

    from cronsync.cloud.logreader import try_lock
    from cronsync.cloud.spool import load_pending, save_pending

    pending = load_pending(Path(pending_file))
    if pending is None or pending.finished:
        return
    fd = os.open(pending.log_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if try_lock(fd):
            current = load_pending(Path(pending_file))
            if current is not None and not current.finished:
                save_pending(Path(pending_file), replace(current, finished=True))
    finally:
        os.close(fd)


def describe_error(exc: BaseException) -> str:
    """One line about an exception: its message (a cronsync error's own), or its type
    and text."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def after_run(run: JobRun) -> None:
    """Retention: best effort, never changing the run's result (the run's metrics are
    the broker's to publish, see :func:`end_shipping`)."""
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
        print(f"cronsync-run: old runs not pruned: {describe_error(exc)}", file=run.options.stderr)


def _pending_runs(run: JobRun) -> frozenset[str]:
    pending = path_str(run.runs_dir, run.job.name, "pending")
    try:
        return frozenset(name[: -len(".json")] for name in os.listdir(pending))
    except OSError:
        return frozenset()


def end_failed(run: JobRun, exit_code: int, message: str) -> None:
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
            f"cronsync-run: cannot record the run's end: {describe_error(exc)}",
            file=run.options.stderr,
        )
