"""Model -> crontab text (pure, deterministic).

Every enabled job targeted at this host becomes one or more cron lines in host time
calling ``cronsync-run JOB`` as the job's user. Nothing else reaches the file: no
environment, no secret, no command of the job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cronsync.core.errors import ScheduleError
from cronsync.core.model import HostContext, Job, JobRepo, Problem
from cronsync.core.schedule import parse_schedule
from cronsync.core.tzrender import render_in_host_time
from cronsync.core.validate import is_targeted

HEADER = "# managed by cronsync — do not edit: edits here are reported as drift"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SourceInfo:
    """Where an installed crontab came from (url already stripped of credentials)."""

    url: str
    branch: str
    commit: str


@dataclass(frozen=True)
class CronEntry:
    """The cron lines of one job, in host time.

    Attributes:
        job: the job name.
        user: the unix user cron runs it as.
        times: one or more 5-field time specs (or ``@reboot``) in host time.
        exact: False when ``times`` cover more minutes than the job is due and the
            shim must gate on the job's own zone.
        zone: the zone the job's schedule is written in.
        schedule: the schedule as written.
    """

    job: str
    user: str
    times: tuple[str, ...]
    exact: bool
    zone: str
    schedule: str


def job_zone(job: Job, host: HostContext) -> str:
    """Return the zone a job's schedule is read in (its own, else the host's)."""
    return job.timezone or host.timezone


def plan_entry(job: Job, host: HostContext, now: datetime) -> CronEntry:
    """Work out the host-time cron lines of one job.

    Raises:
        ScheduleError: the schedule is invalid or cannot be rendered in host time.
    """
    schedule = parse_schedule(job.schedule)
    zone = job_zone(job, host)
    if schedule.reboot:
        return CronEntry(job.name, job.user, ("@reboot",), True, zone, job.schedule)
    rendering = render_in_host_time(schedule, zone, host.timezone, now)
    return CronEntry(job.name, job.user, rendering.lines, rendering.exact, zone, job.schedule)


def plan_entries(
    repo: JobRepo, host: HostContext, now: datetime
) -> tuple[tuple[CronEntry, ...], list[Problem]]:
    """Work out the cron lines of every enabled job targeted at ``host``.

    Returns:
        The entries sorted by job name, and a Problem for each job that cannot be
        rendered (so nothing half-rendered gets installed).
    """
    entries, problems = [], []
    for job in sorted(repo.jobs, key=lambda item: item.name):
        if not job.enabled or not is_targeted(job, host):
            continue
        try:
            entries.append(plan_entry(job, host, now))
        except ScheduleError as exc:
            problems.append(job.problem("schedule", exc.message))
    return tuple(entries), problems


def _safe(text: str) -> str:
    """Refuse any control character in text bound for the crontab (defence in depth)."""
    if _UNSAFE.search(text):
        raise ValueError(f"refusing to write a control character into the crontab: {text!r}")
    return text


def _escape_percent(text: str) -> str:
    return text.replace("%", "\\%")


def render_crontab(entries: tuple[CronEntry, ...], source: SourceInfo, shim: str) -> str:
    """Render the managed cron file.

    Args:
        entries: from ``plan_entries``.
        source: repository, branch and commit, for the header.
        shim: how cron starts cronsync-run: its absolute path (plus ``--root DIR`` off
            the default root).

    Returns:
        The file's text, ending in a newline, the same for the same input.

    Raises:
        ValueError: a value would put a control character into the file (validation
            should have stopped it earlier).
    """
    lines = [
        HEADER,
        f"# source: {_safe(source.url)} branch {_safe(source.branch)} @ {_safe(source.commit)}",
        "SHELL=/bin/sh",
        "PATH=/usr/bin:/bin",
        'MAILTO=""',
    ]
    command = _escape_percent(_safe(shim))
    for entry in entries:
        lines.append("")
        note = "" if entry.exact else "; covering times, cronsync-run gates on the zone"
        lines.append(f"# {entry.job}: {_safe(entry.schedule)} ({_safe(entry.zone)}){note}")
        for times in entry.times:
            lines.append(f"{_safe(times)} {_safe(entry.user)} {command} {_safe(entry.job)}")
    return "\n".join(lines) + "\n"
