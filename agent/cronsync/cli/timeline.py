"""``cronsync timeline``: when the installed (or a repository's) jobs run across a day or
a week, in the terminal, as SVG or as JSON; and the timeline ``plan --timeline`` shows.

The layout and its renderings are pure (:mod:`cronsync.core.timeline` and its
``timelinetext``, ``timelinesvg``, ``timelinejson``); this module reads what they draw:
the installed release, a repository (:mod:`cronsync.host.timelinesource`) or the run
records.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from cronsync.cli.jsonout import emit_json
from cronsync.core.errors import CronsyncError, UsageError

if TYPE_CHECKING:
    from cronsync.core.timeline import Run, Timeline
    from cronsync.host.config import AgentConfig

MIN_WIDTH = 40
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The window's UTC ends and the schedule code's search (up to 400 years ahead) must stay
# inside datetime's years 1 to 9999.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9000, 12, 31)
MAX_RUN_SECONDS = 366 * 86400.0  # a recorded duration beyond this is drawn as unknown
_STATUSES = frozenset({"running", "succeeded", "failed", "timed-out", "skipped", "error"})


def _date_argument(text: str) -> date:
    """argparse type of ``--date``: ``YYYY-MM-DD``, from :data:`FIRST_DAY` to
    :data:`LAST_DAY`."""
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"{text!r}: give a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def _days_argument(text: str) -> int:
    """argparse type of ``--days``: 1 to 7."""
    if not text.isdigit() or not 1 <= int(text) <= 7:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of days, 1 to 7")
    return int(text)


def _width_argument(text: str) -> int:
    """argparse type of ``--width``: at least :data:`MIN_WIDTH` columns."""
    if not text.isdigit() or int(text) < MIN_WIDTH:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of columns, {MIN_WIDTH} or more")
    return int(text)


def terminal_width(given: Optional[int]) -> int:
    """``--width``, else the terminal's width (``$COLUMNS``, else 80 when not a terminal),
    at least :data:`MIN_WIDTH`."""
    return given or max(shutil.get_terminal_size((80, 24)).columns, MIN_WIDTH)


def use_colour() -> bool:
    """Colour only on a terminal, and never when ``$NO_COLOR`` is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _optional_config(explicit: Optional[str]) -> Optional[AgentConfig]:
    """The agent config; None when none was asked for and the default file is absent
    (``--repo`` then draws for this machine)."""
    from cronsync.host.config import CONFIG_ENV, config_path, load_config

    if explicit or os.environ.get(CONFIG_ENV) or config_path(None).exists():
        return load_config(explicit)
    return None


def _repo_jobs(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The jobs of ``--repo DIR`` compiled for this host, and the host's zone.

    Raises:
        UsageError: DIR is not a jobs repository; the agent config is wrong; without
            one, this machine's zone is not known.
        CronsyncError: the repository has errors (each printed on stderr first).
    """
    from cronsync.core.model import HostContext
    from cronsync.host.hostinfo import detect_host_name
    from cronsync.host.timelinesource import repo_jobs
    from cronsync.repo.gate import check_repo_dir

    root = Path(args.repo)
    check_repo_dir(root)
    config = _optional_config(args.config)
    host = config.host if config else HostContext(detect_host_name(), (), _machine_zone())
    found = repo_jobs(root, host, datetime.now(timezone.utc))
    for problem in found.problems:
        print(problem.format(), file=sys.stderr)
    if found.errors:
        raise CronsyncError(
            f"{len(found.errors)} errors in {root}: a sync would refuse it; nothing drawn"
        )
    return found.jobs_doc, host.timezone


def _machine_zone() -> str:
    """This machine's zone, as cron reads it.

    Raises:
        UsageError: it is not a zone Python knows (else every job would be blamed).
    """
    from cronsync.core.errors import ScheduleError
    from cronsync.core.tzrender import load_zone
    from cronsync.host.hostinfo import detect_host_timezone

    zone = detect_host_timezone()
    try:
        load_zone(zone)
    except ScheduleError:
        raise UsageError(
            f"this machine's zone {zone!r} (/etc/timezone, else /etc/localtime) is not a "
            "known zone: give an agent config with host.timezone (--config)"
        ) from None
    return zone


def _installed_jobs(config: AgentConfig) -> dict[str, Any]:
    """The installed release's compiled jobs.

    Raises:
        CronsyncError: nothing (usable) is installed.
    """
    from cronsync.host.view import PROBLEM, installed_jobs

    document = installed_jobs(config)
    if document is None:
        raise CronsyncError(
            "nothing is installed on this host yet: run `cronsync sync`, or draw a "
            "repository with --repo DIR"
        )
    if PROBLEM in document:
        raise CronsyncError(str(document[PROBLEM]))
    return document


def _recorded_runs(config: AgentConfig, jobs: Iterable[str]) -> dict[str, list[Run]]:
    """Each job's recorded runs (as root, also its earlier users'), for the layout."""
    from cronsync.run.history import all_records
    from cronsync.run.store import list_records

    runs_dir, now = config.paths.runs_dir, datetime.now(timezone.utc)
    found = {}
    for job in jobs:
        records = all_records(runs_dir, job, list_records(runs_dir, job))
        found[job] = [
            run for run in (_as_run(r.started, r.duration, r.status, now) for r in records) if run
        ]
    return found


def _as_run(started: str, duration: Optional[float], status: str, now: datetime) -> Optional[Run]:
    """A record's start, duration and status as a Run; None when its start is not a time
    (its user can write anything) or outside :data:`FIRST_DAY`..:data:`LAST_DAY`. A run
    still going lasts until now; a duration that is negative, not finite or longer than
    :data:`MAX_RUN_SECONDS` is unknown."""
    from cronsync.core.timeline import Run

    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    if start.tzinfo is None:
        return None
    start = start.astimezone(timezone.utc)
    if not FIRST_DAY <= start.date() <= LAST_DAY:
        return None  # nothing the window can hold, and its end could overflow datetime
    if duration is None and status == "running":
        duration = max((now - start).total_seconds(), 0.0)
    if duration is not None and not 0 <= duration <= MAX_RUN_SECONDS:  # NaN fails too
        duration = None  # not a length a run can have: drawn as unknown
    return Run(start, duration, status if status in _STATUSES else "unknown")


def cmd_timeline(args: argparse.Namespace) -> int:
    """``cronsync timeline``: draw when the jobs run (or ran)."""
    from zoneinfo import ZoneInfo

    from cronsync.core import timeline
    from cronsync.core.timelinejson import timeline_json
    from cronsync.core.timelinesvg import render_svg, svg_slot_minutes
    from cronsync.core.timelinetext import render_text
    from cronsync.host.config import load_config

    if args.from_history and args.repo:
        raise UsageError("--from-history draws this host's recorded runs; it takes no --repo")
    config = None if args.repo else load_config(args.config)
    if args.repo:
        doc, host_zone = _repo_jobs(args)
    else:
        assert config is not None
        doc, host_zone = _installed_jobs(config), config.host.timezone
    day = args.date or datetime.now(ZoneInfo(host_zone)).date()
    window = timeline.day_window(day, args.days, host_zone)
    jobs: Mapping[str, Mapping[str, Any]] = doc.get("jobs", {})
    if args.from_history:
        assert config is not None
        drawn = timeline.history_timeline(jobs, _recorded_runs(config, jobs), window)
    else:
        drawn = timeline.scheduled_timeline(jobs, window)
    if args.svg:
        _write_svg(Path(args.svg), render_svg(drawn))
        print(f"wrote {args.svg} ({len(drawn.lanes)} jobs)", file=sys.stderr)
    if args.json:
        emit_json(timeline_json(drawn, svg_slot_minutes(args.days)))
    elif not args.svg:
        print(render_text(drawn, terminal_width(args.width), use_colour()))
    return 0


def _write_svg(path: Path, text: str) -> None:
    """Write the picture atomically (a reader never sees half of it), mode 0644.

    Raises:
        UsageError: its folder does not exist, it is a folder, or (as root) another user
            could swap its folder.
        InstallError: it cannot be written.
    """
    from cronsync.files.atomic import atomic_write
    from cronsync.files.trusted import output_folder

    if not path.parent.is_dir():
        raise UsageError(f"--svg {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise UsageError(f"--svg {path} is a folder: give the name of the file to write")
    folder = output_folder(str(path.parent), "--svg")
    atomic_write(Path(folder, path.name), text.encode("utf-8"), mode=0o644)


def plan_timeline(
    jobs: Mapping[str, Mapping[str, Any]], names: Iterable[str], host_zone: str
) -> Timeline:
    """The timeline of today (host time) of the named jobs, for ``plan --timeline``."""
    from zoneinfo import ZoneInfo

    from cronsync.core.timeline import day_window, scheduled_timeline

    today = datetime.now(ZoneInfo(host_zone)).date()
    chosen = {name: jobs[name] for name in names if name in jobs}
    return scheduled_timeline(chosen, day_window(today, 1, host_zone))


def plan_timeline_json(drawn: Optional[Timeline]) -> dict[str, Any]:
    """``{"timeline": DOCUMENT}`` for ``plan --timeline --json``; {} without a timeline."""
    from cronsync.core.timelinejson import timeline_json
    from cronsync.core.timelinesvg import svg_slot_minutes

    return {} if drawn is None else {"timeline": timeline_json(drawn, svg_slot_minutes(1))}


def print_plan_timeline(drawn: Optional[Timeline], width: Optional[int]) -> None:
    """Print the text view of ``plan --timeline`` after the plan (nothing without one)."""
    from cronsync.core.timelinetext import render_text

    if drawn is None:
        return
    print()
    if not drawn.lanes:
        print("timeline: no added or changed job runs on this host")
        return
    print(render_text(drawn, terminal_width(width), use_colour()))


def add_width_option(parser: argparse.ArgumentParser) -> None:
    """``--width N`` (the text view's columns), for ``timeline`` and ``plan``."""
    parser.add_argument(
        "--width",
        type=_width_argument,
        metavar="N",
        help=f"columns of the text view (default: the terminal's; at least {MIN_WIDTH})",
    )


def add_timeline_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``timeline`` to the ``cronsync`` parser."""
    parser = verbs.add_parser(
        "timeline",
        help="when the installed (or a repository's) jobs run across a day or a week",
        description="Draw when jobs run, in host time: one row per job, one column per "
        "10, 15 or 30 minutes (longer over several days), chosen to fit the terminal. A "
        "cell shows the runs starting in it (1-9, # for ten or more), - while a run "
        "started earlier may still go (its timeout), ! when a run starts while the "
        "previous one may still run; a load row counts the jobs starting per column and "
        "the busiest columns are named. Jobs not installed here (disabled, for other "
        "hosts) and @reboot jobs are left out and counted. Colour only on a terminal, "
        "never with NO_COLOR set.",
        epilog="examples: `cronsync timeline --days 7 --svg week.svg` (this host's week as a "
        "picture); `cronsync timeline --repo . --date 2026-03-29` (a working tree on a DST "
        "day); `cronsync timeline --from-history --date 2026-03-02 --json` (what ran).",
    )
    parser.add_argument(
        "--repo",
        metavar="DIR",
        help="draw the job files in DIR (validated as `cronsync validate` does; errors "
        "exit 1) instead of the installed release; for the agent config's host, else "
        "this machine's name and zone",
    )
    parser.add_argument(
        "--date",
        type=_date_argument,
        metavar="YYYY-MM-DD",
        help="the first day to draw, 1900-01-01 to 9000-12-31 (default: today, host time)",
    )
    parser.add_argument(
        "--days",
        type=_days_argument,
        default=1,
        metavar="N",
        help="how many days, 1 to 7 (default 1)",
    )
    parser.add_argument(
        "--from-history",
        action="store_true",
        help="draw the runs recorded on this host (start and duration) instead of the "
        "schedule; records beyond run.keep_runs per job are pruned",
    )
    parser.add_argument(
        "--svg",
        metavar="FILE",
        help="write a self-contained SVG to FILE instead of the text view: a lane per job "
        "(its zone shown), marks as long as the run's timeout or recorded duration, "
        "overlaps in red, the load row and the busiest slots (as root, only root may be able "
        "to change its folder)",
    )
    add_width_option(parser)
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output (cronsync.timeline/1)"
    )
    add_config(parser)
    parser.set_defaults(func=cmd_timeline)
