"""CloudWatch Logs forwarding as the shim and ``cronsync flush`` use it.

The shim sets up a pending delivery for its run log, starts the live forwarder (its
thread imports boto3, never the job's start), and at the end gives it a few seconds;
whatever is left stays pending. Before that, it opportunistically delivers what its
own user's earlier runs left pending. ``cronsync flush`` delivers everything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cronsync.cloud.logs import LiveForwarder, flush_pending
from cronsync.cloud.send import LogsSender
from cronsync.cloud.spool import Pending, pending_path, save_pending, stream_name
from cronsync.host.awsclients import AwsSettings

__all__ = ["finish_forwarding", "flush_all", "start_forwarding", "stream_name"]

EARLIER_RUNS_SECONDS = 5.0


def start_forwarding(
    settings: Mapping[str, Any], runs_dir: Path, job: str, run_id: str, log_path: Path
) -> LiveForwarder:
    """Save the run's pending delivery and start forwarding its log in the background.

    Raises:
        InstallError: the pending file cannot be written (the caller treats the run as
            not forwarded, never as failed).
    """
    aws = AwsSettings.from_json(settings.get("aws") or {})
    path = pending_path(runs_dir, job, run_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    host, group = str(settings.get("host", "")), str(settings.get("log_group"))
    stream = stream_name(host, job, run_id)
    save_pending(path, Pending(str(log_path), group, stream))
    forwarder = LiveForwarder(
        path, lambda: _sender_with_backlog(aws, runs_dir, host, group), target=(group, stream)
    )
    forwarder.start()
    return forwarder


def _sender_with_backlog(aws: AwsSettings, runs_dir: Path, host: str, group: str) -> LogsSender:
    """Make the sender (in the forwarder's thread) and first deliver what this user's
    earlier runs left pending, briefly."""
    sender = LogsSender(aws)
    flush_pending(
        runs_dir,
        sender,
        time.monotonic() + EARLIER_RUNS_SECONDS,
        host=host,
        log_group=group,
        only_uid=os.geteuid(),
    )
    return sender


def finish_forwarding(forwarder: LiveForwarder, seconds: float) -> dict[str, Any]:
    """Let the forwarder deliver the rest for at most ``seconds``.

    Returns:
        What to keep in the run record: the stream, whether everything arrived, and
        the delivery error if any.
    """
    result = forwarder.finish(time.monotonic() + seconds)
    return {
        "cloudwatch": {
            "delivered": result.complete,
            "sent_events": result.sent_events,
            "error": result.error,
        }
    }


def flush_all(
    runs_dir: Path, aws: AwsSettings, deadline: float, *, host: str, log_group: str
) -> dict[str, Any]:
    """Deliver every pending run log under ``runs_dir`` (``cronsync flush``).

    Args:
        host: this host's name (``config.host.name``): streams are ``HOST/JOB/RUN-ID``.
        log_group: the installed release's log group (its settings' ``log_group``);
            every pending file goes there, to its own run's stream, whatever it
            names (one written before a host rename or a group change included).

    Returns:
        The counts: delivered, left, errors, skipped, sent_events, messages.
    """
    summary = flush_pending(runs_dir, LogsSender(aws), deadline, host=host, log_group=log_group)
    return asdict(summary)
