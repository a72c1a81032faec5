"""``cronsync flush`` (and the agent when no broker of its own runs): deliver every run
log left pending, as root.

Live forwarding of a running job's log is the broker's (:mod:`cronsync.broker.outbox`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from cronsync.cloud.logs import flush_pending
from cronsync.cloud.send import LogsSender
from cronsync.host.awsclients import AwsSettings

__all__ = ["flush_all"]


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
