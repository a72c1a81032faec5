"""``cronsync plan`` and ``status``: what a sync would change, and what is installed.

Each verb has its ``cmd_*`` function and an ``add_*_verb`` that adds it to the
``cronsync`` parser (:func:`cronsync.cli.main.build_parser`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from cronsync.cli.jsonout import emit_json, error_document

EXIT_CHANGES = 2  # plan --exit-code: a sync would change something (as terraform's)
HEALTH_EXIT = {"ok": 0, "degraded": 1, "failed": 2}  # status, as monitoring plugins do


def cmd_plan(args: argparse.Namespace) -> int:
    """``cronsync plan``: what a sync would change, without changing it."""
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
        if c.name in jobs
    }
    if args.json:
        emit_json(
            {
                "changes": [views.change_json(c) for c in changes],
                "cron_diff": diff,
                "next_runs": runs,
                "warnings": [p.as_dict() for p in build.warnings],
            }
        )
    else:
        print(views.plan_text(changes, diff, runs))
    changed = bool(changes or diff)
    return EXIT_CHANGES if (args.exit_code and changed) else 0


def cmd_status(args: argparse.Namespace) -> int:
    """``cronsync status``: what is installed, how the last sync went, the jobs."""
    from datetime import datetime, timezone

    from cronsync.agent.agentfile import AGENT_FILE, read_agent_file
    from cronsync.core import views
    from cronsync.core.health import stale_jobs
    from cronsync.core.urls import redact_url
    from cronsync.host import view
    from cronsync.host.config import load_config
    from cronsync.host.statefile import load_state
    from cronsync.run.history import with_earlier_runs
    from cronsync.run.orphans import with_orphans
    from cronsync.run.store import last_runs

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
    if args.json:
        emit_json(doc)
    else:
        print(views.status_text(doc))
    return HEALTH_EXIT[doc["health"]]


def add_plan_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``plan`` to the ``cronsync`` parser."""
    plan = verbs.add_parser(
        "plan",
        help="show what a sync would change, without changing anything",
        description="Show jobs a sync would add, remove or change (field by field), the "
        "diff of the cron file and the next runs of changed jobs.",
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
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    add_config(plan)
    plan.set_defaults(func=cmd_plan)


def add_status_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``status`` to the ``cronsync`` parser."""
    status = verbs.add_parser(
        "status",
        help="installed commit, last sync, drift and the job table",
        description="Show the agent, what is installed, how the last sync went, drift "
        "(checked now), stale jobs and every job with its next and last run (a run whose "
        "cronsync-run was killed while its job still runs shows as orphaned). --json gives "
        "the documented status document (status_format 1, schema in "
        "docs/status.schema.json). Exit status: 0 healthy, 1 degraded, 2 failed (nothing "
        "installed).",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    add_config(status)
    status.set_defaults(func=cmd_status)
