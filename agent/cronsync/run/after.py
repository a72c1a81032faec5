"""The shim's work around a run's record: forwarding its log, ending it on failure,
and what follows every run (metrics and retention).

None of it changes the run's result: forwarding and the after-run steps are best
effort, and say what went wrong in the record's ``extra`` or on the shim's stderr.

On the shim's start-up path: no pathlib, dataclasses or typing at import time.
"""

from __future__ import annotations

import os

from cronsync.files.paths import path_str
from cronsync.run.record import ERROR, RUNNING, SKIPPED, SUCCEEDED
from cronsync.run.store import prune_runs

# Annotations only: the shim's start-up imports neither typing nor pathlib (nor
# dataclasses), so not `typing.TYPE_CHECKING` either.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from cronsync.run.context import JobRun

FORWARD_DEADLINE = 10.0  # seconds the shim waits at the end for CloudWatch, at most


def start_forwarder(run: JobRun, log_path: str) -> Any:
    """Start forwarding the run's log to CloudWatch, when the host does.

    Never fails the run: when forwarding cannot be set up (the pending file cannot be
    written, boto3 is missing...), the run goes on unforwarded and its record says why
    in ``extra.cloudwatch``.
    """
    if not (run.settings.get("logs") or {}).get("cloudwatch"):
        return None
    try:
        from pathlib import Path

        from cronsync.cloud.forward import start_forwarding, stream_name

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
                        "error": f"not forwarded: {describe_error(exc)}",
                    },
                }
            )
        )
        return None
    run.save(run.record.finished(cloudwatch_stream=stream))
    return forwarder


def finish_forwarder(forwarder: Any) -> dict[str, Any]:
    """Give the forwarder its last seconds; what to add to the record's ``extra``."""
    if forwarder is None:
        return {}
    try:
        from cronsync.cloud.forward import finish_forwarding

        return finish_forwarding(forwarder, FORWARD_DEADLINE)
    except Exception as exc:
        return {"cloudwatch": {"delivered": False, "error": describe_error(exc)}}


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
    """Metrics and retention: best effort, never changing the run's result."""
    try:
        _publish_metrics(run)
    except Exception as exc:
        print(
            f"cronsync-run: metrics not published: {describe_error(exc)}", file=run.options.stderr
        )
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


def _publish_metrics(run: JobRun) -> None:
    record = run.record
    if record.status != SKIPPED and (run.settings.get("metrics") or {}).get("cloudwatch"):
        from cronsync.cloud.metrics import job_metrics, publish

        metrics = job_metrics(record.status == SUCCEEDED, record.duration, record.timed_out)
        # per job, and per host (what the shipped alarms watch: one alarm per host)
        problem = publish(
            run.settings, metrics, {"Host": record.host, "Job": record.job}, host_level=True
        )
        if problem:
            print(f"cronsync-run: {problem}", file=run.options.stderr)


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
