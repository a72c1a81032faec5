"""``cronsync plan`` and ``status``: what a sync would change, and what is installed.

Each verb has its ``cmd_*`` function and an ``add_*_verb`` that adds it to the
``cronsync`` parser (:func:`cronsync.cli.main.build_parser`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from cronsync.cli.jsonout import emit_json, error_document

EXIT_CHANGES = 2  # plan --exit-code: a sync would change something (as terraform's)
HEALTH_EXIT = {"ok": 0, "degraded": 1, "failed": 2}  # status, as monitoring plugins do


def cmd_plan(args: argparse.Namespace) -> int:
    """``cronsync plan``: what a sync would change, without changing it."""
    from cronsync.cli.timeline import plan_timeline, plan_timeline_json, print_plan_timeline
    from cronsync.core import plan, views
    from cronsync.host import view
    from cronsync.host.config import load_config
    from cronsync.host.sync import utc_now

    config = load_config(args.config)
    build = (
        view.build_worktree(config, Path(args.repo)) if args.repo else view.build_remote(config)[1]
    )
    if not build.ok:
        failed = "FAILED: a sync would refuse this commit; nothing would change"
        for problem in build.problems:
            print(problem.format(), file=sys.stderr)
        print(failed, file=sys.stderr)
        if args.json:
            problems = [p.as_dict() for p in build.problems]
            emit_json({**error_document(failed, 1), "problems": problems})
        return 1
    changes = plan.diff_jobs(view.installed_jobs(config), build.jobs_doc)
    diff = plan.cron_diff(
        view.installed_cron_text(config),
        build.cron_text,
        str(config.paths.cron_file),
        ignore_source=bool(args.repo),  # a working tree has no commit to compare
    )
    now, jobs = utc_now(), build.jobs_doc["jobs"]
    runs = {
        c.name: [
            {"job_time": r.job_time.isoformat(), "host_time": r.host_time.isoformat()}
            for r in plan.upcoming_runs(jobs[c.name], config.host.timezone, now)
        ]
        for c in changes
        if c.name in jobs and jobs[c.name].get("installed")  # none for "not installed here"
    }
    windows = {name: jobs[name].get("stale_window") for name in runs}  # installed changes
    drawn = plan_timeline(jobs, runs, config.host.timezone) if args.timeline else None
    if args.json:
        emit_json(
            {
                "changes": [views.change_json(c) for c in changes],
                "cron_diff": diff,
                "next_runs": runs,
                "stale_windows": windows,
                "warnings": [p.as_dict() for p in build.warnings],
                **plan_timeline_json(drawn),
            }
        )
    else:
        print(views.plan_text(changes, diff, runs, windows))
        print_plan_timeline(drawn, args.width)
    changed = bool(changes or diff)
    return EXIT_CHANGES if (args.exit_code and changed) else 0


def cmd_status(args: argparse.Namespace) -> int:
    """``cronsync status``: what is installed, how the last sync went, the jobs."""
    from datetime import datetime, timezone

    from cronsync.agent.agentfile import AGENT_FILE, read_agent_file
    from cronsync.core import views
    from cronsync.core.health import stale_jobs
    from cronsync.core.retirement import quick_candidates
    from cronsync.core.urls import redact_url
    from cronsync.host import view
    from cronsync.host.config import load_config
    from cronsync.host.statefile import load_state
    from cronsync.run.history import with_earlier_runs
    from cronsync.run.orphans import with_orphans
    from cronsync.run.store import last_runs

    _check_retire_options(args)
    config = load_config(args.config)
    jobs = view.installed_jobs(config)
    state = load_state(config.paths.state_file)
    state.drift = view.live_drift(config, state)  # now, not as of the last sync
    if state.installed is None and state.unreadable:  # what cron runs is still known
        state.installed = view.release_as_installed(config, jobs)
    runs_dir = config.paths.runs_dir
    runs = with_orphans(runs_dir, with_earlier_runs(runs_dir, last_runs(runs_dir, jobs)))
    now = datetime.now(timezone.utc)
    installed_at = state.installed.at if state.installed else None
    if args.retire_candidates:  # reads every record kept: only when asked
        candidates = _retire_candidates(runs_dir, jobs, installed_at, now, args.days or 0)
        return _retire_report(args, candidates)
    doc = views.status_document(
        config.host.name,
        config.host.timezone,
        redact_url(config.repo_url),
        config.branch,
        state,
        jobs,
        now,
        runs,
        agent=read_agent_file(config.paths.state_dir / AGENT_FILE),
        stale=stale_jobs(jobs, runs, installed_at, now),
        unmanaged=view.unmanaged_entries(config),
    )
    doc["retire_candidates"] = quick_candidates(jobs, runs, installed_at, now)
    if args.json:
        emit_json(doc)
    else:
        print(views.status_text(doc))
        if doc["retire_candidates"]:
            names = ", ".join(doc["retire_candidates"])
            print(f"retire:     {names} (why: `cronsync status --retire-candidates`)")
    return HEALTH_EXIT[doc["health"]]


MAX_RETIRE_DAYS = 3650  # ten years: far more than records are kept; larger overflow dates


def _check_retire_options(args: argparse.Namespace) -> None:
    """Refuse ``--days`` without ``--retire-candidates``, or outside 1 to
    :data:`MAX_RETIRE_DAYS`.

    Raises:
        UsageError: one line saying which.
    """
    from cronsync.core.errors import UsageError

    if args.days is not None and not args.retire_candidates:
        raise UsageError("--days needs --retire-candidates")
    if args.days is not None and not 1 <= args.days <= MAX_RETIRE_DAYS:
        raise UsageError(f"--days {args.days}: give 1 to {MAX_RETIRE_DAYS}")


def _retire_candidates(
    runs_dir: Path,
    jobs: Optional[Mapping[str, Any]],
    installed_at: Optional[str],
    now: Any,
    days: int,
) -> list[dict[str, Any]]:
    """The installed jobs (and disabled ones) whose run records say they may be dead:
    every record of every job is read (``status --retire-candidates`` only)."""
    from cronsync.core.retirement import DEFAULT_DAYS, retire_candidates
    from cronsync.run.history import every_record

    names = list((jobs or {}).get("jobs") or {})
    records = every_record(runs_dir, names)
    return retire_candidates(jobs, records, installed_at, now, days or DEFAULT_DAYS)


def _retire_report(args: argparse.Namespace, candidates: list[dict[str, Any]]) -> int:
    """``status --retire-candidates``: each candidate's evidence and the change that
    retires it. Exit 0 without candidates, 1 with."""
    from cronsync.core.retirement import DEFAULT_DAYS, RETIRE_FORMAT, retire_text

    days = args.days or DEFAULT_DAYS
    if args.json:
        emit_json({"retire_format": RETIRE_FORMAT, "days": days, "candidates": candidates})
    else:
        print(retire_text(candidates, days))
    return 1 if candidates else 0


def add_plan_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``plan`` to the ``cronsync`` parser."""
    plan = verbs.add_parser(
        "plan",
        help="show what a sync would change, without changing anything",
        description="Show jobs a sync would add, remove or change (field by field), the "
        "diff of the cron file, the next runs of changed jobs and how long each may go "
        "without a success before it is stale (success.within, or derived from the "
        "schedule: longest gap between runs + timeout + jitter + margin; --json: "
        "stale_windows). A new or edited job this "
        "host does not install (disabled, or for other hosts or groups) shows as 'not "
        "installed here' with why.",
    )
    plan.add_argument(
        "--repo", metavar="DIR", help="plan from a local folder instead of fetching the remote"
    )
    plan.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 2 when a sync would change something (0: nothing would; 1: a sync would "
        "refuse the commit)",
    )
    plan.add_argument(
        "--timeline",
        action="store_true",
        help="also draw today's runs (host time) of the added and changed jobs, as "
        "`cronsync timeline` does (--json: a timeline key)",
    )
    from cronsync.cli.timeline import add_width_option

    add_width_option(plan)
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    add_config(plan)
    plan.set_defaults(func=cmd_plan)


def add_status_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``status`` to the ``cronsync`` parser."""
    status = verbs.add_parser(
        "status",
        help="installed commit, last sync, drift and the job table",
        description="Show the agent, what is installed, how the last sync went, drift "
        "(checked now), stale jobs and every job with its next and last run and its "
        "staleness window (STALE AFTER: success.within, or derived from the schedule when "
        "the release was compiled; --json: stale_window) (a run whose "
        "cronsync-run was killed while its job still runs shows as orphaned). --json gives "
        "the documented status document (status_format 1, schema in "
        "docs/status.schema.json), with retire_candidates: the jobs whose last run and last "
        "success say they may be dead (--retire-candidates reads every record kept, says "
        "why and how to retire each). Exit "
        "status: 0 healthy, 1 degraded, 2 failed (nothing installed).",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--retire-candidates",
        action="store_true",
        help="report the jobs whose run records say they may be dead (every run failed for "
        "--days, never succeeded, never produced output, always skipped, disabled for over "
        "90 days), each with its evidence and the change that retires it; exit 1 when "
        "there are some",
    )
    status.add_argument(
        "--days",
        type=int,
        metavar="N",
        help="with --retire-candidates: the window of 'every run failed' and 'always "
        "skipped', 1 to 3650 days (default 14)",
    )
    add_config(status)
    status.set_defaults(func=cmd_status)
