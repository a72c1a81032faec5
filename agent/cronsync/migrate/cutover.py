"""``cronsync adopt --apply --sync``: install the imported jobs and retire the lines
they replace within one cron minute, so no job runs twice and none is skipped.

Debian's cron looks for changed crontabs once a minute, at the top of the minute,
before it starts that minute's jobs (FACTS.md). A sync and an adopt run one after the
other are therefore seen by cron as one change if both finish before the next top of a
minute: the new cron file and the commented-out originals take effect together. This
module waits for the start of a minute when too little of the current one is left,
syncs, and adopts at once; it says so when the minute turned over all the same (a very
slow fetch), naming the minute whose jobs may have run twice.

Order matters: sync first, adopt second. When the sync fails or adopt refuses, the
original lines keep running (and, after a refusal, the installed jobs too: the result
says so, and what to do).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from cronsync.host.config import AgentConfig
from cronsync.host.sync import SyncOutcome, run_sync
from cronsync.migrate.adopt import AdoptPlan, apply_adopt, plan_adopt

MINUTE = 60.0
LATEST_START = 30.0
"""Seconds into a minute after which the cut-over waits for the next minute (a sync
that fetches, builds and installs takes a few seconds; this leaves it thirty)."""
START_AFTER_TOP = 1.0
"""When it waits, it starts this long after the top of the minute: cron's own look at
the crontabs happens at the top."""


@dataclass(frozen=True)
class Cutover:
    """What ``sync_and_adopt`` did.

    Attributes:
        waited: seconds spent waiting for the start of a minute.
        sync: the sync's outcome (already recorded in the state file).
        plan: the adopt plan, or None when the sync did not leave the jobs installed.
        backups: where the changed crontabs were backed up (None: nothing changed).
        restores: ``(backup, original)`` per changed crontab.
        crossed_minute: the top of a minute (this one, ``HH:MM`` UTC) passed between the
            start of the sync and the last retired line, or None: cron saw both changes
            together.
    """

    waited: float
    sync: SyncOutcome
    plan: Optional[AdoptPlan] = None
    backups: Optional[Path] = None
    restores: list[tuple[Path, Path]] = field(default_factory=list)
    crossed_minute: Optional[str] = None

    @property
    def adopted(self) -> bool:
        """True when the sync left the jobs installed and adopt did not refuse."""
        return self.plan is not None and not self.plan.refusals


def seconds_to_wait(now: float, latest_start: float = LATEST_START) -> float:
    """Seconds to wait from ``now`` (epoch) before the cut-over may start: 0 early in a
    minute, else until just after the top of the next one."""
    into = now % MINUTE
    return 0.0 if into <= latest_start else MINUTE - into + START_AFTER_TOP


def sync_and_adopt(
    config: AgentConfig,
    sources: Optional[set[str]] = None,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    announce: Callable[[str], None] = lambda _message: None,
) -> Cutover:
    """Wait for room in the current minute, sync, then adopt the installed jobs.

    Args:
        config: the host's agent config (the sync's and adopt's paths).
        sources: only retire lines of these crontabs (host paths), or None for all.
        clock: epoch seconds (a seam for tests).
        sleep: waits that many seconds (a seam for tests).
        announce: told, in one line, when the cut-over waits.

    Returns:
        What was done; nothing is retired when the sync failed or adopt refused.

    Raises:
        LockBusyError: another sync is running (nothing was done).
        InstallError: a crontab or its backup could not be written (the sync stays).
    """
    wait = seconds_to_wait(clock())
    if wait:
        announce(f"waiting {wait:.0f} s for the start of a minute, so cron sees the new jobs")
        sleep(wait)
    started = clock()
    outcome = run_sync(config)
    if not outcome.record.ok:
        return Cutover(wait, outcome)
    plan = plan_adopt(config.paths, sources)
    if plan.refusals:
        return Cutover(wait, outcome, plan)
    backups, restores = apply_adopt(plan, config.paths.root, datetime.now(timezone.utc))
    return Cutover(wait, outcome, plan, backups, restores, _crossed(started, clock()))


def _crossed(started: float, ended: float) -> Optional[str]:
    """The first top of a minute after ``started`` (``HH:MM`` UTC) if ``ended`` is past
    it, else None."""
    if int(started // MINUTE) == int(ended // MINUTE):
        return None
    top = (int(started // MINUTE) + 1) * MINUTE
    return time.strftime("%H:%M", time.gmtime(top))
