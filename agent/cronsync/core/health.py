"""Is the host healthy? Staleness of jobs and the agent's pacing (pure)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Optional


def parse_time(text: Any) -> Optional[datetime]:
    """Parse an ISO 8601 time written by cronsync (``Z`` or an offset); None if not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    # cronsync always writes UTC; a time without a zone (hand-written) is taken as UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def stale_jobs(
    jobs_doc: Optional[Mapping[str, Any]],
    last_runs: Mapping[str, Any],
    installed_at: Optional[str],
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """Find the installed jobs that have not succeeded within their window (counting
    from the job's ``installed_since`` when it never succeeded; from the release's
    install in a release compiled without it). A one-host job on a host in a fleet is
    never stale here: its occurrences may all run on other hosts.

    The window is the job's compiled ``stale_window`` (``success.within``, or derived
    from the schedule: :mod:`cronsync.core.staleness`); a release compiled by a cronsync
    without ``stale_window`` falls back to ``success.within``.

    Args:
        jobs_doc: the installed jobs.json.
        last_runs: job -> its last.json document ({} when it never ran).
        installed_at: when the installed release was installed (ISO 8601).
        now: an aware datetime.

    Returns:
        job -> {"within": seconds, "source": "within" | "schedule", "last_success": ISO
        time or None, "overdue": seconds}.
    """
    stale = {}
    since_install = parse_time(installed_at)
    jobs = (jobs_doc or {}).get("jobs")
    in_fleet = _in_fleet(jobs_doc)
    for name, job in (jobs if isinstance(jobs, Mapping) else {}).items():
        window = job_window(job)
        if window is None or (in_fleet and job.get("run_on") == "one-host"):
            continue  # one-host in a fleet: another host runs it; not this host's to judge
        within, source = window
        ended = _last_success_end(last_runs.get(name))
        last = parse_time(ended)
        baseline = last or parse_time(job.get("installed_since")) or since_install
        if baseline is None:
            continue
        try:
            overdue = (now - baseline).total_seconds() - within
        except OverflowError:  # a forged time at the edge of the calendar
            continue
        if overdue > 0:
            stale[name] = {
                "within": within,
                "source": source,
                "last_success": ended if last is not None else None,
                "overdue": int(overdue),
            }
    return stale


def _in_fleet(jobs_doc: Optional[Mapping[str, Any]]) -> bool:
    """Whether the release was compiled for a host with a ``[fleet] table``."""
    settings = (jobs_doc or {}).get("settings")
    fleet = settings.get("fleet") if isinstance(settings, Mapping) else None
    return isinstance(fleet, Mapping) and bool(fleet.get("table"))


def job_window(job: Any) -> Optional[tuple[int, str]]:
    """An installed job's staleness window: (seconds, "within" or "schedule"), or None
    (no window, not installed, or not a job)."""
    if not isinstance(job, Mapping) or job.get("installed") is not True:
        return None
    if "stale_window" in job:  # compiled by a cronsync that derives windows
        window = job.get("stale_window")
        seconds = _positive(window.get("seconds")) if isinstance(window, Mapping) else None
        source = window.get("source") if isinstance(window, Mapping) else None
        if seconds is not None and source in ("within", "schedule"):
            return seconds, str(source)
        return None
    success = job.get("success")
    within = _positive(success.get("within")) if isinstance(success, Mapping) else None
    return None if within is None else (within, "within")


def _positive(value: Any) -> Optional[int]:
    """``value`` when it is a positive int (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _last_success_end(last: Any) -> Optional[str]:
    """When the last success ended, from a last.json document (which the job's user
    can write: anything not of the expected shape counts as no success)."""
    success = last.get("last_success") if isinstance(last, Mapping) else None
    ended = success.get("ended") if isinstance(success, Mapping) else None
    return ended if isinstance(ended, str) else None


def next_delay(
    interval: float,
    splay: float,
    failures: int,
    max_backoff: float,
    rand: Optional[random.Random] = None,
) -> float:
    """Seconds until the next sync: the interval plus a random splay; while the remote
    keeps failing, the interval doubles per failure up to ``max_backoff``."""
    base = interval if failures <= 0 else min(max_backoff, interval * (2 ** min(failures, 20)))
    extra = (rand or random).uniform(0, splay) if splay > 0 else 0.0
    return max(1.0, base + extra)
