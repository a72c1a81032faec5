"""The ``cronsync`` command: parses arguments, calls one verb, maps errors to exit codes.

A known error prints one line (``cronsync: ...``) and exits with its code; an
unexpected one says so in one line and shows the traceback only with ``--verbose``.
A command given ``--json`` that ends with an error also prints one error document
(``cronsync.error/1``) on stdout, so a script always has JSON to read.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, cast

from . import __version__
from .errors import EXIT_INSTALL, EXIT_USAGE, CronsyncError, UsageError

EXIT_INTERNAL = 70
EXIT_CHANGES = 2  # plan --exit-code: a sync would change something (as terraform's)
HEALTH_EXIT = {"ok": 0, "degraded": 1, "failed": 2}  # status, as monitoring plugins do
ERROR_FORMAT = "cronsync.error/1"

DESCRIPTION = """\
cronsync keeps a host's cron jobs in a git repository: it validates the job files,
renders /etc/cron.d/cronsync and installs it atomically; a bad commit never replaces
a good crontab.

exit codes: 0 ok, 1 problems found or sync refused, 2 usage or config error,
3 git remote/checkout failed, 4 install on the host failed, 75 another sync is running,
70 internal error."""


def _emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def error_document(line: str, exit_code: int) -> dict[str, Any]:
    """The ``--json`` answer of a command that ends with an error.

    Args:
        line: the one line printed on stderr (``cronsync: ...``).
        exit_code: the command's exit code.

    Returns:
        ``{"format": "cronsync.error/1", "error": line, "exit_code": exit_code}``.
    """
    return {"format": ERROR_FORMAT, "error": line, "exit_code": exit_code}


def _emit_error_json(line: str, exit_code: int) -> None:
    """Print the error document on stdout; a closed stdout is left alone (stderr has
    the line already)."""
    try:
        _emit_json(error_document(line, exit_code))
        sys.stdout.flush()
    except OSError:
        pass


def cmd_validate(args: argparse.Namespace) -> int:
    """``cronsync validate [REPO]``: report every problem of a job repository."""
    from .gate import check_repository
    from .model import ERROR

    host = None
    if args.host:
        from .build import host_context
        from .config import load_config

        host = host_context(load_config(args.config))
    root = Path(args.repo)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    report = check_repository(root, host, lint=not args.no_lint)
    problems = report.problems
    blocking = [p for p in problems if p.severity == ERROR or args.strict]
    if args.json:
        _emit_json(
            {
                "ok": not blocking,
                "jobs": len(report.repo.jobs),
                "problems": [p.as_dict() for p in problems],
            }
        )
    else:
        for problem in problems:
            print(problem.format())
        errors = sum(p.severity == ERROR for p in problems)
        summary = (
            f"{len(report.repo.jobs)} job files parsed, {errors} errors, "
            f"{len(problems) - errors} warnings"
        )
        print(
            ("FAILED: " if blocking else "ok: ") + summary,
            file=sys.stderr if blocking else sys.stdout,
        )
    return 1 if blocking else 0


def cmd_sync(args: argparse.Namespace) -> int:
    """``cronsync sync``: one sync cycle."""
    from dataclasses import asdict

    from .config import load_config
    from .sync import run_sync

    config = load_config(args.config)
    answer = _sync_by_agent(config) if args.now else None
    if answer is None:
        outcome = _sync_here(config, args.force, run_sync)
        answer = {
            "record": asdict(outcome.record),
            "exit_code": outcome.exit_code,
            "drift": [d.as_dict() for d in outcome.drift],
        }
    if args.json:
        _emit_json(answer)
        return int(answer["exit_code"])
    record = answer["record"]
    ok = record["result"] in ("installed", "unchanged")
    stream = sys.stdout if ok else sys.stderr
    print(f"{record['result']}: {record['message']}", file=stream)
    for problem in record["errors"]:
        print(_problem_line(problem), file=stream)
    for problem in record["warnings"]:
        print(_problem_line(problem))
    for note in record["notes"]:
        print(f"note: {note}")
    for finding in answer.get("drift", ()):
        print(f"drift: {finding['message']}", file=sys.stderr)
    return int(answer["exit_code"])


def _sync_here(config: Any, force: bool, run_sync: Callable[..., Any]) -> Any:
    """Sync in this process (timer mode, or ``--now`` with no agent), then publish the
    cycle's metrics and a heartbeat as the agent would (when ``[metrics] cloudwatch``
    is on; short timeouts; a failure to publish is a note and never the exit code)."""
    from .errors import LockBusyError
    from .state import FAILED, REFUSED

    try:
        outcome = run_sync(config, force=force)
    except LockBusyError:
        raise  # another sync runs: it reports its own cycle
    except Exception:  # recorded as failed (when the state file could be written)
        _publish_sync_metrics(config, synced=False, failed=True)
        raise
    record = outcome.record
    _publish_sync_metrics(config, synced=record.ok, failed=record.result in (FAILED, REFUSED))
    return outcome


def _publish_sync_metrics(config: Any, synced: bool, failed: bool) -> None:
    try:
        from .agentmetrics import publish_sync

        lines = publish_sync(config, synced=synced, failed=failed)
    except Exception as exc:  # a metric never changes what the sync did
        lines = [f"metrics not published: internal error: {type(exc).__name__}: {exc}"]
    for line in lines:
        print(f"note: {line}", file=sys.stderr)


def _sync_by_agent(config: Any) -> Optional[dict[str, Any]]:
    """Ask the running agent to sync now; None when no agent runs (sync here then)."""
    from .control import SOCKET_NAME, ask_agent

    answer = ask_agent(config.paths.state_dir / SOCKET_NAME, "sync", timeout=600)
    if answer is None:
        print("note: no agent is running; syncing in this process", file=sys.stderr)
        return None
    if "error" in answer:
        raise CronsyncError(f"the agent could not sync: {answer['error']}")
    return answer


def cmd_agent(args: argparse.Namespace) -> int:
    """``cronsync agent``: the long-running service."""
    from .agentloop import main as agent_main

    return agent_main(args.config)


def _problem_line(item: dict[str, Any]) -> str:
    from .model import Problem

    return "  " + Problem.from_dict(item).format()


def cmd_plan(args: argparse.Namespace) -> int:
    """``cronsync plan``: what a sync would change, without changing it."""
    from . import hostview, plan, views
    from .config import load_config
    from .sync import utc_now

    config = load_config(args.config)
    build = (
        hostview.build_worktree(config, Path(args.repo))
        if args.repo
        else hostview.build_remote(config)[1]
    )
    if not build.ok:
        failed = "FAILED: a sync would refuse this commit; nothing would change"
        for problem in build.problems:
            print(problem.format(), file=sys.stderr)
        print(failed, file=sys.stderr)
        if args.json:
            problems = [p.as_dict() for p in build.problems]
            _emit_json({**error_document(failed, 1), "problems": problems})
        return 1
    changes = plan.diff_jobs(hostview.installed_jobs(config), build.jobs_doc)
    diff = plan.cron_diff(
        hostview.installed_cron_text(config),
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
        _emit_json(
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

    from . import hostview, views
    from .agentfile import AGENT_FILE, read_agent_file
    from .config import load_config
    from .health import stale_jobs
    from .statefile import load_state
    from .urls import redact_url

    config = load_config(args.config)
    jobs = hostview.installed_jobs(config)
    state = load_state(config.paths.state_file)
    state.drift = hostview.live_drift(config, state)  # now, not as of the last sync
    if state.installed is None and state.unreadable:  # what cron runs is still known
        state.installed = hostview.release_as_installed(config, jobs)
    runs = hostview.last_runs(config, jobs)
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
        unmanaged=hostview.unmanaged_entries(config),
    )
    if args.json:
        _emit_json(doc)
    else:
        print(views.status_text(doc))
    return HEALTH_EXIT[doc["health"]]


def cmd_schema(args: argparse.Namespace) -> int:
    """``cronsync schema``: print the file format reference."""
    from .schemadoc import schema_json, schema_markdown

    if args.format == "json":
        _emit_json(schema_json())
    else:
        sys.stdout.write(schema_markdown())
    return 0


CONFIG_HELP = "agent config (default: $CRONSYNC_CONFIG, else /etc/cronsync/agent.toml)"
VERBOSE_HELP = "show details (tracebacks of internal errors)"


class _BadCommandLine(SystemExit):
    """argparse refused the command line (exit 2). A SystemExit, as argparse raises,
    so callers of ``build_parser().parse_args`` see no difference; ``line`` is the
    error line printed on stderr, for the ``--json`` error document."""

    def __init__(self, line: str) -> None:
        super().__init__(EXIT_USAGE)
        self.line = line


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors remember their line (see _BadCommandLine).
    Subparsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and ``PROG: error: MESSAGE`` on stderr.

        Raises:
            _BadCommandLine: always (exit code 2).
        """
        line = f"{self.prog}: error: {message}"
        self.print_usage(sys.stderr)
        print(line, file=sys.stderr)
        raise _BadCommandLine(line)


def _add_config(parser: argparse.ArgumentParser) -> None:
    """Add ``--config PATH`` to a verb. Suppressed default: when it is not given after
    the verb, the value given before it (or None) stays."""
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP)


def _add_verbose_to_verbs(verbs: Any) -> None:
    """Let every verb take ``-v/--verbose`` after its name too (suppressed default, so
    ``cronsync -v VERB`` keeps working)."""
    parsers = cast(Mapping[str, argparse.ArgumentParser], verbs.choices)
    for verb in dict.fromkeys(parsers.values()):  # one parser may have several names
        verb.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every verb. ``--config`` and ``-v/--verbose`` are
    accepted before the verb and after it (the one after wins)."""
    parser = _Parser(
        prog="cronsync",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cronsync {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs.required = True

    validate = verbs.add_parser(
        "validate",
        help="check a job repository; every problem as file:line: field: message",
        description="Check a job repository (the same gate a sync applies). Exit 0 when "
        "clean, 1 with problems, 2 for usage errors. Run it in the jobs "
        "repository's CI and pre-commit hook.",
    )
    validate.add_argument("repo", nargs="?", default=".", help="repository folder (default .)")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.add_argument(
        "--host",
        action="store_true",
        help="also apply this host's rules (allowed and existing users) from the agent config",
    )
    validate.add_argument("--no-lint", action="store_true", help="skip shellcheck")
    validate.add_argument("--strict", action="store_true", help="warnings fail too")
    _add_config(validate)
    validate.set_defaults(func=cmd_validate)

    sync = verbs.add_parser(
        "sync",
        help="fetch, validate and install the configured branch (one cycle)",
        description="One sync cycle: fetch the configured branch, validate it, install it "
        "atomically. A commit with problems is refused and the last-known-good "
        "stays installed.",
    )
    sync.add_argument(
        "--force", action="store_true", help="rebuild and reinstall even when nothing changed"
    )
    sync.add_argument(
        "--now",
        action="store_true",
        help="ask the running agent to sync now and wait for its result (syncs in this "
        "process when no agent runs); for SSM 'sync now'",
    )
    sync.add_argument("--json", action="store_true", help="machine-readable output")
    _add_config(sync)
    sync.set_defaults(func=cmd_sync)

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
    _add_config(plan)
    plan.set_defaults(func=cmd_plan)

    status = verbs.add_parser(
        "status",
        help="installed commit, last sync, drift and the job table",
        description="Show the agent, what is installed, how the last sync went, drift "
        "(checked now), stale jobs and every job with its next and last run. --json gives "
        "the documented status document (status_format 1, schema in "
        "docs/status.schema.json). Exit status: 0 healthy, 1 degraded, 2 failed (nothing "
        "installed).",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _add_config(status)
    status.set_defaults(func=cmd_status)

    agent = verbs.add_parser(
        "agent",
        help="run the long-running agent (what cronsync-agent.service starts)",
        description="Sync every [agent] interval, watch the installed files for edits by "
        "hand (drift policy report or revert), deliver spooled job output, publish "
        "metrics and a heartbeat. SIGHUP (systemctl reload) or `cronsync sync --now` "
        "syncs at once; SIGTERM finishes the current step and exits.",
    )
    _add_config(agent)
    agent.set_defaults(func=cmd_agent)

    from .cli_import import add_import_verbs
    from .cli_inventory import add_inventory_verb
    from .cli_runs import add_run_verbs

    add_run_verbs(verbs, _add_config)
    add_inventory_verb(verbs, _add_config)
    add_import_verbs(verbs, _add_config)

    schema = verbs.add_parser(
        "schema",
        help="print the job file and config reference",
        description="Print the reference of job files, cronsync.toml "
        "and agent.toml, generated from the schema.",
    )
    schema.add_argument("--format", choices=("markdown", "json"), default="markdown")
    schema.set_defaults(func=cmd_schema)
    _add_verbose_to_verbs(verbs)
    return parser


def _asks_for_json(tokens: Sequence[str]) -> bool:
    """Whether a command line argparse refused had ``--json`` (or an abbreviation of it,
    which argparse accepts) before any ``--``."""
    for arg in tokens:
        if arg == "--":
            return False
        name = arg.partition("=")[0]
        if len(name) > 2 and "--json".startswith(name):
            return True
    return False


def _fail(args: argparse.Namespace, line: str, exit_code: int) -> int:
    """Report the error that ended a command: ``line`` on stderr and, when the command
    was given ``--json``, the error document on stdout. Returns ``exit_code``."""
    print(line, file=sys.stderr)
    if getattr(args, "json", False):
        _emit_error_json(line, exit_code)
    return exit_code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``cronsync`` command; return its exit code.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code (README "Commands"); an error is one line on stderr, plus the
        ``cronsync.error/1`` document on stdout when ``--json`` was given.

    Raises:
        SystemExit: only for ``--help`` and ``--version`` (exit 0).
    """
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(tokens)
    except _BadCommandLine as exc:  # argparse printed the usage and the line
        if _asks_for_json(tokens):
            _emit_error_json(exc.line, EXIT_USAGE)
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CronsyncError as exc:
        return _fail(args, f"cronsync: {exc.message}", exc.exit_code)
    except KeyboardInterrupt:
        return _fail(args, "cronsync: interrupted", 130)
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args, f"cronsync: {where}{exc.strerror or exc}", EXIT_INSTALL)
    except Exception as exc:
        code = _fail(
            args,
            f"cronsync: internal error: {type(exc).__name__}: {exc} "
            "(please report it; --verbose shows the traceback)",
            EXIT_INTERNAL,
        )
        if args.verbose:
            traceback.print_exc()
        return code


if __name__ == "__main__":
    sys.exit(main())
