"""The shim's side of a one-host job (``run_on = "one-host"``): ask the broker for this
occurrence's lease before the job starts, let it go at the end.

The broker makes the DynamoDB calls (:mod:`cronsync.broker.leases`); the shim holds no
AWS credentials. Won: the job runs with ``CRONSYNC_FENCING_TOKEN``. Lost: the run is
recorded as skipped, "ran on HOST". No answer (no broker, the table failing): the
job's ``fleet_unreachable`` decides, skip (recorded; the broker
publishes ``FleetLeaseFailed`` from the record) or run (noted in the record).

Imported only for one-host jobs: other jobs' start-up does not pay for it. No typing
at import time.
"""

from __future__ import annotations

from cronsync.core import brokerwire
from cronsync.files.paths import path_str
from cronsync.run.broker import BrokerUnreachable, ask, socket_path
from cronsync.run.record import SKIPPED

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Optional

    from cronsync.run.context import JobRun

LEASE_TIMEOUT = 30.0  # the broker's DynamoDB calls: two short attempts, and a margin
FAILED = "failed"  # extra.fleet.lease of a run whose lease could not be asked


def take_lease(run: JobRun) -> bool:
    """Take this occurrence's lease; whether the job runs now.

    Won: ``run.fencing_token`` is set and the record says so. Otherwise the record is
    ended as skipped (lost, or unreachable with ``fleet_unreachable = "skip"``), or notes
    the failure and the job runs (``"run"``). Never raises.
    """
    where = socket_path(run.settings, path_str(run.options.root))
    request = brokerwire.request(brokerwire.LEASE, run.job.name, run.run_id)
    try:
        answer = ask(where, request, LEASE_TIMEOUT, patience=5.0)
    except BrokerUnreachable as exc:
        return _unreachable(run, exc.message)
    if not answer["ok"]:
        return _unreachable(run, str(answer.get("error") or "the broker refused"))
    holder, occurrence = str(answer.get("holder") or "?"), str(answer.get("occurrence") or "")
    token = answer.get("token")
    if answer.get("won") is True and isinstance(token, int) and not isinstance(token, bool):
        run.fencing_token = str(token)
        fleet = {"occurrence": occurrence, "holder": holder, "token": token}
        # saved with the record's next write (the log's path), not one write more
        run.record = run.record.finished(extra={**run.record.extra, "fleet": fleet})
        return True
    if answer.get("won") is not False:
        return _unreachable(run, "the broker gave no valid lease reply")
    still = answer.get("why") == "running"
    reason = (
        f"still running on {holder} (concurrency = forbid across the fleet)"
        if still
        else f"ran on {holder}"
    )
    run.end(
        SKIPPED,
        None,
        reason=f"{reason}: occurrence {occurrence}",
        extra={**run.record.extra, "fleet": {"occurrence": occurrence, "holder": holder}},
    )
    return False


def _unreachable(run: JobRun, problem: str) -> bool:
    """Apply ``fleet_unreachable``: skip (recorded, metric) or run (noted)."""
    policy = str(run.job.raw.get("fleet_unreachable") or "skip")
    fleet = {"lease": FAILED, "error": problem, "fleet_unreachable": policy}
    if policy == "run":
        run.add_extra({"fleet": fleet})
        return True
    run.end(
        SKIPPED,
        None,
        reason=f"not run: no fleet lease ({problem}); fleet_unreachable = skip",
        extra={**run.record.extra, "fleet": fleet},
    )
    if (run.settings.get("metrics") or {}).get("cloudwatch"):
        from cronsync.run.after import leave_metrics_marker

        try:
            leave_metrics_marker(run)  # the broker publishes FleetLeaseFailed from it
        except OSError as exc:
            run.add_extra({"broker": f"FleetLeaseFailed not published: {exc.strerror}"})
    return False


def release_lease(run: JobRun) -> Optional[str]:
    """Tell the broker the run is over, so the job's lease is free for the next
    occurrence before it expires. Returns why not, or None. Never raises."""
    where = socket_path(run.settings, path_str(run.options.root))
    request = brokerwire.request(brokerwire.RELEASE, run.job.name, run.run_id)
    try:
        answer = ask(where, request, 10.0, patience=3.0)
    except BrokerUnreachable as exc:
        return exc.message
    return None if answer.get("ok") else str(answer.get("error"))
