"""Retirement candidates: installed jobs whose own records say they may be dead (pure).

The installed ``jobs.json`` and each job's run records (JSON form) in; the candidates
out, each with its evidence and the change that retires it. Runs by hand (``cronsync
run``) are left out: they say nothing about the schedule. A candidate is evidence for a
person to weigh, never a change made by cronsync.

* ``fails-every-run``: every run by cron in the last N days (default 14) failed, timed
  out or could not start, and the job has been installed (or has had runs) for at least
  that long.
* ``never-succeeded``: none of its recorded runs by cron succeeded.
* ``no-output``: none of its recorded runs (3 at least, over N days) wrote any output.
* ``always-skipped``: every run by cron in the last N days was skipped (``concurrency
  = "forbid"``: the previous run never ends).
* ``disabled-long``: disabled (``enabled = false``) and its last recorded run is more
  than 90 days old: delete the file (git keeps its history). A disabled job without any
  recorded run is not listed: nothing says for how long it has been off.

Reading every record is slow with many jobs (1,000 jobs of 100 records: seconds), so
plain ``cronsync status`` names its candidates from each job's ``last.json`` alone
(:func:`quick_candidates`: the last run and the last success), and only ``status
--retire-candidates`` reads every record (:func:`retire_candidates`), with the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Optional

from cronsync.core.health import parse_time

RETIRE_FORMAT = 1  # of the ``status --retire-candidates --json`` document
FAILS_EVERY_RUN = "fails-every-run"
NEVER_SUCCEEDED = "never-succeeded"
NO_OUTPUT = "no-output"
ALWAYS_SKIPPED = "always-skipped"
DISABLED_LONG = "disabled-long"
DEFAULT_DAYS = 14
DISABLED_DAYS = 90
MIN_SILENT_RUNS = 3
_FAILED = frozenset({"failed", "timed-out", "error"})


def _day(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "?"


def _started(run: Mapping[str, Any]) -> Optional[datetime]:
    return parse_time(run.get("started"))


def _by_cron(runs: Sequence[Mapping[str, Any]]) -> list[tuple[datetime, Mapping[str, Any]]]:
    """The runs cron started, oldest first, with their start (runs without one dropped)."""
    found = [(_started(r), r) for r in runs if not r.get("by_hand")]
    return sorted(((at, r) for at, r in found if at is not None), key=lambda item: item[0])


def _reasons(
    runs: list[tuple[datetime, Mapping[str, Any]]],
    installed_at: Optional[datetime],
    now: datetime,
    days: int,
) -> list[dict[str, str]]:
    window = now - timedelta(days=days)
    known = min([t for t in (installed_at, runs[0][0] if runs else None) if t], default=None)
    old_enough = known is not None and known <= window
    recent = [r for at, r in runs if at >= window]
    ran = [r for _at, r in runs if r.get("status") != "skipped"]
    found = []
    recent_ran = [r for r in recent if r.get("status") != "skipped"]
    if old_enough and recent_ran and all(r.get("status") in _FAILED for r in recent_ran):
        last = recent_ran[-1]
        found.append(
            _reason(
                FAILS_EVERY_RUN,
                f"all {len(recent_ran)} of its runs by cron in the last {days} days failed "
                f"(since {_day(window)}; the last: {last.get('status')}, exit code "
                f"{last.get('exit_code')}, at {last.get('started')})",
            )
        )
    if ran and not any(r.get("status") == "succeeded" for r in ran):
        found.append(
            _reason(
                NEVER_SUCCEEDED,
                f"none of its {len(ran)} recorded runs by cron succeeded (the first "
                f"{_day(runs[0][0])})",
            )
        )
    if old_enough and len(ran) >= MIN_SILENT_RUNS and not any(r.get("output_bytes") for r in ran):
        found.append(
            _reason(NO_OUTPUT, f"none of its {len(ran)} recorded runs by cron wrote any output")
        )
    if old_enough and recent and all(r.get("status") == "skipped" for r in recent):
        found.append(
            _reason(
                ALWAYS_SKIPPED,
                f"all {len(recent)} of its runs by cron in the last {days} days were skipped: "
                'the previous run was still going (concurrency = "forbid"); does it ever end?',
            )
        )
    return found


def _reason(kind: str, evidence: str) -> dict[str, str]:
    return {"kind": kind, "evidence": evidence}


def _disabled(
    runs: list[tuple[datetime, Mapping[str, Any]]], now: datetime
) -> list[dict[str, str]]:
    """``runs``: by cron and by hand, oldest first (any run is a sign of use)."""
    if not runs or runs[-1][0] > now - timedelta(days=DISABLED_DAYS):
        return []
    return [
        _reason(
            DISABLED_LONG,
            f"disabled, and its last recorded run was on {_day(runs[-1][0])}, more than "
            f"{DISABLED_DAYS} days ago",
        )
    ]


def _retire(name: str, file: str, kinds: list[str], now: datetime) -> str:
    if kinds == [DISABLED_LONG]:
        return f"git rm {file} (the git history keeps it)"
    return (
        f'in {file}: enabled = false and reason = "<why>, retired {_day(now)} by <who>" '
        f"(or git rm {file} if nobody needs it)"
    )


def retire_candidates(
    jobs_doc: Optional[Mapping[str, Any]],
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    installed_at: Optional[str],
    now: datetime,
    days: int = DEFAULT_DAYS,
) -> list[dict[str, Any]]:
    """Find the jobs whose records say they may be dead.

    Args:
        jobs_doc: the installed ``jobs.json``.
        runs: job -> its run records (JSON form, any order; by hand ones included).
        installed_at: when the installed release was installed (ISO 8601), or None.
        now: an aware datetime. days: the window of ``fails-every-run`` and
            ``always-skipped`` (and the age ``no-output`` needs).
    Returns:
        ``[{job, file, reasons: [{kind, evidence}], retire}]`` in name order (installed
        jobs, and disabled ones for ``disabled-long``). Never raises.
    """
    jobs = (jobs_doc or {}).get("jobs")
    since = parse_time(installed_at)
    found = []
    for name, job in sorted(jobs.items() if isinstance(jobs, Mapping) else ()):
        if not isinstance(job, Mapping):
            continue
        by_cron = _by_cron(runs.get(name, ()))
        if job.get("enabled") is False:
            reasons = _disabled(_by_cron_and_hand(runs.get(name, ())), now)
        elif job.get("installed"):
            reasons = _reasons(by_cron, since, now, days)
        else:
            continue
        if reasons:
            file = str(job.get("file") or f"jobs/{name}.toml")
            kinds = [r["kind"] for r in reasons]
            found.append(
                {
                    "job": name,
                    "file": file,
                    "reasons": reasons,
                    "retire": _retire(name, file, kinds, now),
                }
            )
    return found


def _by_cron_and_hand(
    runs: Sequence[Mapping[str, Any]],
) -> list[tuple[datetime, Mapping[str, Any]]]:
    found = [(_started(r), r) for r in runs]
    return sorted(((at, r) for at, r in found if at is not None), key=lambda item: item[0])


def retire_text(candidates: Sequence[Mapping[str, Any]], days: int) -> str:
    """Return the ``status --retire-candidates`` report: each job, its evidence, and the
    change that retires it."""
    if not candidates:
        return f"no retirement candidates (runs of the last {days} days and every record kept)"
    lines = [f"{len(candidates)} retirement candidates (evidence from the run records kept):"]
    for item in candidates:
        lines.append(f"{item['job']} ({', '.join(r['kind'] for r in item['reasons'])})")
        lines += [f"  evidence: {r['evidence']}" for r in item["reasons"]]
        lines.append(f"  to retire: {item['retire']}")
    return "\n".join(lines)


def _looks_dead(
    last: Mapping[str, Any], since: Optional[datetime], now: datetime, days: int
) -> bool:
    """Whether a job's ``last.json`` says it may be dead (see :func:`quick_candidates`)."""
    run, success = last.get("last_run"), last.get("last_success")
    if not isinstance(run, Mapping) or _started(run) is None:
        return False
    window = now - timedelta(days=days)
    succeeded = _started(success) if isinstance(success, Mapping) else None
    known = min([t for t in (since, succeeded) if t is not None], default=None)
    old_enough = known is not None and known <= window
    quiet = succeeded is None or succeeded < window
    status = run.get("status")
    if status in _FAILED:
        return succeeded is None or (old_enough and quiet)
    return status == "skipped" and old_enough and quiet


def quick_candidates(
    jobs_doc: Optional[Mapping[str, Any]],
    last_runs: Mapping[str, Mapping[str, Any]],
    installed_at: Optional[str],
    now: datetime,
    days: int = DEFAULT_DAYS,
) -> list[str]:
    """Name the jobs whose ``last.json`` alone says they may be dead: the cheap summary
    of plain ``cronsync status`` (no record is read).

    Args:
        jobs_doc: the installed ``jobs.json``.
        last_runs: job -> its ``last.json`` document (``last_run``, ``last_success``).
        installed_at: when the installed release was installed (ISO 8601), or None.
        now: an aware datetime. days: the window.
    Returns:
        the names, sorted: an installed job whose last run failed and that never
        succeeded, or has not for ``days`` (installed that long); whose last run was
        skipped with no success for ``days``; a disabled job whose last run is over 90
        days old. ``status --retire-candidates`` reads every record and may find more
        (``no-output``). Never raises.
    """
    jobs = (jobs_doc or {}).get("jobs")
    since = parse_time(installed_at)
    found = []
    for name, job in sorted(jobs.items() if isinstance(jobs, Mapping) else ()):
        last = last_runs.get(name) or {}
        run = last.get("last_run")
        if not isinstance(job, Mapping) or not isinstance(run, Mapping):
            continue
        if job.get("enabled") is False:
            started = _started(run)
            if started is not None and started <= now - timedelta(days=DISABLED_DAYS):
                found.append(name)
        elif job.get("installed") and _looks_dead(last, since, now, days):
            found.append(name)
    return found
