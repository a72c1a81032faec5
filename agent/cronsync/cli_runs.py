"""The ``cronsync`` verbs about job runs: run, history, logs, flush."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .errors import CronsyncError

FLUSH_SECONDS = 60.0


def _emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def _become(user: str) -> None:
    """As root, switch this process to ``user`` (as cron would run the job).

    Raises:
        CronsyncError: the user does not exist here.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise CronsyncError(f"user {user!r} does not exist on this host") from exc
    os.initgroups(user, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ.update({"HOME": entry.pw_dir, "USER": user, "LOGNAME": user})


def cmd_run(args: argparse.Namespace) -> int:
    """``cronsync run JOB``: run a job now, by hand, exactly as cron would."""
    from .config import load_config
    from .jobspec import find_job, load_release
    from .runner import RunOptions, run_job

    config = load_config(args.config)
    root = config.paths.root
    job = find_job(load_release(root), args.job)
    user = str(job.raw.get("user"))
    me = pwd.getpwuid(os.geteuid()).pw_name
    if user != me:
        if os.geteuid() != 0:
            print(
                f"cronsync: note: running as {me}, not {user} (only root can switch users)",
                file=sys.stderr,
            )
        else:
            _become(user)
    return run_job(args.job, RunOptions(root=root, by_hand=True, force=args.force))


def cmd_history(args: argparse.Namespace) -> int:
    """``cronsync history JOB``: the job's runs, newest first."""
    from .config import load_config
    from .runrecord import list_records

    config = load_config(args.config)
    records = list_records(config.paths.runs_dir, args.job)[: args.limit]
    if args.json:
        _emit_json([record.to_json() for record in records])
        return 0
    if not records:
        print(f"no runs of {args.job} recorded")
        return 0
    print(f"{'RUN':<22} {'STARTED':<20} {'SECONDS':>8} {'STATUS':<10} EXIT")
    for record in records:
        seconds = "-" if record.duration is None else f"{record.duration:.1f}"
        code = "-" if record.exit_code is None else str(record.exit_code)
        started = record.started[:19].replace("T", " ")
        line = f"{record.run_id:<22} {started:<20} {seconds:>8} {record.status:<10} {code}"
        print(line + (f"  {record.reason}" if record.reason else ""))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """``cronsync logs JOB [--run ID]``: print a run's local log (the last run's by
    default)."""
    from .config import load_config
    from .logformat import plain_text
    from .runrecord import list_records

    config = load_config(args.config)
    records = list_records(config.paths.runs_dir, args.job)
    chosen = [r for r in records if r.log and (args.run is None or r.run_id == args.run)]
    if not chosen:
        which = f"run {args.run} of {args.job}" if args.run else f"{args.job}"
        raise CronsyncError(f"no log recorded for {which} (see cronsync history {args.job})")
    path = Path(str(chosen[0].log))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CronsyncError(f"cannot read {path}: {exc.strerror}") from exc
    out = data if args.raw else plain_text(data, with_streams=not args.no_streams)
    sys.stdout.buffer.write(out)
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    """``cronsync flush``: deliver run output still waiting for CloudWatch Logs."""
    from .cloudforward import flush_all
    from .config import load_config

    config = load_config(args.config)
    summary = flush_all(config.paths.runs_dir, config.run.aws, time.monotonic() + args.seconds)
    if args.json:
        _emit_json(summary)
    else:
        print(
            f"delivered {summary['delivered']} run logs, {summary['left']} still pending, "
            f"{summary['errors']} errors"
        )
        for message in summary.get("messages", ()):
            print(f"  {message}")
    return 1 if summary["left"] else 0


def _verb(
    verbs: Any,
    name: str,
    func: Callable[[argparse.Namespace], int],
    help_text: str,
    description: str,
    add_config: Callable[[argparse.ArgumentParser], None],
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        name, help=help_text, description=description
    )
    add_config(parser)
    parser.set_defaults(func=func)
    return parser


def add_run_verbs(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add run, history, logs and flush to the ``cronsync`` parser."""
    run = _verb(
        verbs,
        "run",
        cmd_run,
        "run a job now, by hand, as cron would",
        "Run an installed job now through cronsync-run (secrets, local log, "
        "CloudWatch, run record), as its user when started as root; no time-zone "
        "gate and no jitter. Exits with the job's exit status.",
        add_config,
    )
    run.add_argument("job", help="the job's name")
    run.add_argument(
        "--force",
        action="store_true",
        help="run a job that is disabled or not targeted at this host",
    )
    history = _verb(
        verbs,
        "history",
        cmd_history,
        "list a job's runs, newest first",
        "List a job's recorded runs: start, duration, result, exit code.",
        add_config,
    )
    history.add_argument("job", help="the job's name")
    history.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    history.add_argument("--json", action="store_true", help="the run records as JSON")
    logs = _verb(
        verbs,
        "logs",
        cmd_logs,
        "print a run's output",
        "Print the output of a job's last run (or of --run ID) from the local log. "
        "stderr lines are marked [stderr]; secrets are already masked.",
        add_config,
    )
    logs.add_argument("job", help="the job's name")
    logs.add_argument("--run", metavar="ID", help="a run id from cronsync history")
    logs.add_argument("--no-streams", action="store_true", help="do not mark stderr lines")
    logs.add_argument("--raw", action="store_true", help="the log file as stored")
    flush = _verb(
        verbs,
        "flush",
        cmd_flush,
        "deliver output still waiting for CloudWatch",
        "Deliver run output that could not reach CloudWatch Logs when it was "
        "written (spooled in the local logs). Exit 1 when some is still pending.",
        add_config,
    )
    flush.add_argument(
        "--seconds", type=float, default=FLUSH_SECONDS, help="give up after this long (default 60)"
    )
    flush.add_argument("--json", action="store_true", help="machine-readable output")
