"""``cronsync fleet``: every host's status item judged against a clock (pure).

A host is flagged when it is

* ``silent``: no item for more than ``SILENT_INTERVALS`` of its own intervals;
* ``unhealthy``: its own health (``cronsync status``'s) is not ``ok``;
* ``behind-tip``: its installed commit is not the branch tip, the tip being what the
  most recent fetch among the hosts of the same repository and branch saw.

A job with ``run_on = "one-host"`` is flagged ``no-healthy-host`` when no host that
installs it is healthy (neither silent nor unhealthy): its runs stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from cronsync.core.fleetitem import HostSummary, is_expired, summary_from_item
from cronsync.core.health import parse_time

FLEET_FORMAT = "cronsync.fleet/1"
SILENT_INTERVALS = 3
SILENT, UNHEALTHY, BEHIND_TIP = "silent", "unhealthy", "behind-tip"
NO_HEALTHY_HOST = "no-healthy-host"
# worst first: a silent host tells nothing, a failed one has nothing installed
_STATE_RANK = {SILENT: 0, "failed": 1, "degraded": 2, "ok": 3}


@dataclass(frozen=True)
class Tip:
    """The newest tip seen of one branch: its commit, when it was fetched, by whom."""

    commit: str
    fetched_at: str
    host: str


def branch_tips(summaries: Iterable[HostSummary]) -> dict[tuple[str, str], Tip]:
    """(repo, branch) -> the tip the most recent fetch saw (ties: the first host by
    name, so the answer never depends on the order of the items)."""
    newest: dict[tuple[str, str], tuple[datetime, Tip]] = {}
    for summary in sorted(summaries, key=lambda s: s.host):
        at = parse_time(summary.fetched_at)
        if summary.fetched_commit is None or summary.fetched_at is None or at is None:
            continue
        key = (summary.repo, summary.branch)
        if key not in newest or at > newest[key][0]:
            newest[key] = (at, Tip(summary.fetched_commit, summary.fetched_at, summary.host))
    return {key: tip for key, (_, tip) in newest.items()}


def silent_for(summary: HostSummary, now: datetime) -> int:
    """Seconds since the host's last item (0 when its clock is ahead of ours)."""
    beat = parse_time(summary.heartbeat)
    return 0 if beat is None else max(0, int((now - beat).total_seconds()))


def host_flags(summary: HostSummary, tip: Optional[Tip], now: datetime) -> list[str]:
    """The flags of one host (empty: healthy and on the tip)."""
    flags = []
    if silent_for(summary, now) > SILENT_INTERVALS * max(1, summary.interval):
        flags.append(SILENT)
    if summary.health != "ok":
        flags.append(UNHEALTHY)
    if tip is not None and summary.installed_commit != tip.commit:
        flags.append(BEHIND_TIP)
    return flags


def _host_row(summary: HostSummary, tip: Optional[Tip], now: datetime) -> dict[str, Any]:
    flags = host_flags(summary, tip, now)
    return {
        "host": summary.host,
        "state": SILENT if SILENT in flags else summary.health,
        "flags": flags,
        "health": summary.health,
        "groups": list(summary.groups),
        "repo": summary.repo,
        "branch": summary.branch,
        "installed_commit": summary.installed_commit,
        "tip_commit": tip.commit if tip else None,
        "last_sync": {"result": summary.last_sync_result, "at": summary.last_sync_at},
        "drift": summary.drift,
        "stale_jobs": list(summary.stale_jobs),
        "version": summary.version,
        "heartbeat": summary.heartbeat,
        "silent_for": silent_for(summary, now),
        "interval": summary.interval,
        "fetched_commit": summary.fetched_commit,
        "fetched_at": summary.fetched_at,
        "one_host_jobs": list(summary.one_host_jobs),
    }


def _row_order(row: Mapping[str, Any]) -> tuple[int, int, str]:
    return (_STATE_RANK.get(row["state"], 0), 0 if row["flags"] else 1, row["host"])


def one_host_job_rows(
    rows: Sequence[Mapping[str, Any]], known: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Every ``one-host`` job (those the hosts install, and ``known`` ones no host may
    install) with the hosts installing it, the healthy ones among them, and its flags."""
    names = set(known).union(*(row["one_host_jobs"] for row in rows))
    jobs = []
    for name in sorted(names):
        hosts = sorted(row["host"] for row in rows if name in row["one_host_jobs"])
        healthy = sorted(
            row["host"]
            for row in rows
            if name in row["one_host_jobs"] and not {SILENT, UNHEALTHY} & set(row["flags"])
        )
        flags = [] if healthy else [NO_HEALTHY_HOST]
        jobs.append({"job": name, "hosts": hosts, "healthy_hosts": healthy, "flags": flags})
    return jobs


def fleet_document(
    items: Iterable[Mapping[str, Any]],
    now: datetime,
    known_one_host: Iterable[str] = (),
    reading_host: Optional[str] = None,
) -> dict[str, Any]:
    """The ``cronsync fleet --json`` document (``cronsync.fleet/1``).

    Args:
        items: the host items read from the table (plain values).
        now: an aware datetime.
        known_one_host: ``one-host`` jobs known besides the hosts' (the reading host's
            release), so a job no host installs is flagged too.
        reading_host: the host asking (its ``[host] name``): missing from the table, it
            is named in ``not_reporting`` (its agent is not running, or cannot write).

    Returns:
        {format, now, healthy, tips [{repo, branch, commit, fetched_at, host}], hosts
        [rows, worst first], jobs [{job, hosts, healthy_hosts, flags}], unreadable
        [sort keys of items that are no host status item], expired (items past their
        TTL, left out), not_reporting [host names]}. ``healthy`` is true when some host
        reports, nothing is flagged and no host is missing.
    """
    summaries, unreadable, expired = [], [], 0
    for item in items:
        if is_expired(item, now):
            expired += 1
            continue
        summary = summary_from_item(item)
        if summary is None:
            unreadable.append(str(item.get("sk")))
        else:
            summaries.append(summary)
    tips = branch_tips(summaries)
    rows = [_host_row(s, tips.get((s.repo, s.branch)), now) for s in summaries]
    rows.sort(key=_row_order)
    jobs = one_host_job_rows(rows, known_one_host)
    flagged = any(row["flags"] for row in rows) or any(job["flags"] for job in jobs)
    reporting = {str(row["host"]) for row in rows}
    missing = [reading_host] if reading_host and reading_host not in reporting else []
    return {
        "format": FLEET_FORMAT,
        "now": now.isoformat(timespec="seconds"),
        "healthy": bool(rows) and not flagged and not unreadable and not missing,
        "not_reporting": missing,
        "tips": [
            {"repo": repo, "branch": branch, **vars(tip)}
            for (repo, branch), tip in sorted(tips.items())
        ],
        "hosts": rows,
        "jobs": jobs,
        "unreadable": sorted(unreadable),
        "expired": expired,
    }
