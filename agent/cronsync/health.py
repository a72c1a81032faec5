"""Is the host healthy? Staleness of jobs and the agent's pacing (pure)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Optional


def parse_time(text: Any) -> Optional[datetime]:
    """Parse an ISO 8601 time written by cronsync (``Z`` or an offset); None if not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def stale_jobs(
    jobs_doc: Optional[Mapping[str, Any]],
    last_runs: Mapping[str, Any],
    installed_at: Optional[str],
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """Find the installed jobs with ``success.within`` that have not succeeded for that
    long (counting from the install when a job never succeeded).

    Args:
        jobs_doc: the installed jobs.json.
        last_runs: job -> its last.json document ({} when it never ran).
        installed_at: when the installed release was installed (ISO 8601).
        now: an aware datetime.

    Returns:
        job -> {"within": seconds, "last_success": ISO time or None, "overdue": seconds}.
    """
    stale = {}
    since_install = parse_time(installed_at)
    for name, job in ((jobs_doc or {}).get("jobs") or {}).items():
        within = (job.get("success") or {}).get("within")
        if not job.get("installed") or not isinstance(within, int) or within <= 0:
            continue
        success = (last_runs.get(name) or {}).get("last_success") or {}
        last = parse_time(success.get("ended"))
        baseline = last or since_install
        if baseline is None:
            continue
        overdue = (now - baseline).total_seconds() - within
        if overdue > 0:
            stale[name] = {
                "within": within,
                "last_success": success.get("ended"),
                "overdue": int(overdue),
            }
    return stale


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
