"""The ``cronsync`` verbs about job runs: run, history, logs, flush."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import pwd
import re
import stat
import sys
import time
from collections.abc import Mapping
from typing import Any, BinaryIO, Callable, Optional

from cronsync.cli.jsonout import emit_json
from cronsync.core.errors import CronsyncError

FLUSH_SECONDS = 60.0


# what `cronsync run` keeps of the operator's environment when it switches to the job's
# user: only what describes the terminal (cron's own environment has none of it)
TERMINAL_VARIABLES = ("TERM", "LANG", "LANGUAGE", "COLORTERM")  # and LC_*
CRON_SHELL = "/bin/sh"  # what cron sets, and what the managed cron file sets
CRON_PATH = "/usr/bin:/bin"
LOG_CHUNK = 1 << 20
LONGEST_LOG_LINE = 4 << 20  # a longer "line" (no newline in a forged log) is cut


def cron_environment(entry: pwd.struct_passwd, current: Mapping[str, str]) -> dict[str, str]:
    """Return the environment cron gives a job of the user ``entry``: HOME, LOGNAME,
    USER, SHELL=/bin/sh, PATH=/usr/bin:/bin, plus the terminal's TERM/LANG/LC_* from
    ``current`` (nothing else of it: no AWS_*, SSH_AUTH_SOCK, SUDO_*...). The shim adds
    the job's own env and secrets."""
    env = {
        name: value
        for name, value in current.items()
        if name in TERMINAL_VARIABLES or name.startswith("LC_")
    }
    env.update(
        {
            "HOME": entry.pw_dir,
            "LOGNAME": entry.pw_name,
            "USER": entry.pw_name,
            "SHELL": CRON_SHELL,
            "PATH": CRON_PATH,
        }
    )
    return env


def _become(user: str) -> None:
    """As root, switch this process to ``user`` with the environment cron would give it
    (see :func:`cron_environment`).

    Raises:
        ShimError: the user does not exist here, or the switch failed (exit 125).
    """
    from cronsync.run.jobspec import ShimError

    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise ShimError(f"user {user!r} does not exist on this host") from exc
    env = cron_environment(entry, os.environ)
    try:
        os.initgroups(user, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except OSError as exc:
        raise ShimError(f"cannot switch to user {user!r}: {exc.strerror}") from exc
    os.environ.clear()
    os.environ.update(env)


def cmd_run(args: argparse.Namespace) -> int:
    """``cronsync run JOB``: run a job now, by hand, exactly as cron would.

    As root it becomes the job's user with cron's environment; run by the job's user
    itself (or by another user, who cannot switch: a note says so) the job gets the
    caller's environment. Every failure of cronsync exits 125, 126 or 127 as the shim
    does.
    """
    from cronsync.host.config import load_config
    from cronsync.run.context import RunOptions
    from cronsync.run.jobspec import EXIT_SHIM, ShimError, find_job, load_release
    from cronsync.run.runner import run_job

    config = load_config(args.config)
    root = config.paths.root
    try:
        job = find_job(load_release(root), args.job)
        user = str(job.raw.get("user"))
        if not job.installed and not args.force:  # says why, and how to run it anyway
            return run_job(args.job, RunOptions(root=root, by_hand=True))
        if not job.installed and os.geteuid() == 0:
            _prepare_dirs(config, args.job, user)
        me = _user_name()
        if user != me:
            if os.geteuid() != 0:
                print(
                    f"cronsync: note: running as {me}, not {user} (only root can switch users)",
                    file=sys.stderr,
                )
            else:
                _become(user)
        return run_job(args.job, RunOptions(root=root, by_hand=True, force=args.force))
    except ShimError:
        raise
    except CronsyncError as exc:
        raise ShimError(exc.message, EXIT_SHIM) from exc
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:
        raise ShimError(f"cronsync run failed: {type(exc).__name__}: {exc}", EXIT_SHIM) from exc


def _prepare_dirs(config: Any, job: str, user: str) -> None:
    """Give a job the sync did not install (disabled, or for other hosts) the run and
    log directories an installed job gets, so ``--force`` can run it.

    Raises:
        InstallError: they cannot be created.
    """
    from cronsync.host.jobdirs import ensure_job_dirs

    for note in ensure_job_dirs(config.paths.runs_dir, config.paths.log_dir, {job: user}):
        print(f"cronsync: note: {note}", file=sys.stderr)


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _installed_job(config: Any, job: str) -> dict[str, Any]:
    """Return the installed release's jobs document, checking that ``job`` is in it.

    Raises:
        CronsyncError: nothing is installed, the release cannot be read, or it has no
            job of that name (exit 1).
    """
    from cronsync.host.view import installed_jobs

    document = installed_jobs(config)
    if document is None:
        raise CronsyncError("no release installed: run cronsync sync first")
    if document.get("problem"):
        raise CronsyncError(f"the installed release: {document['problem']}")
    if job not in document.get("jobs", {}):
        raise CronsyncError(f"no job {job!r} in the installed release")
    return document


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds above 0 (a finite one)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text}")
    return value


def cmd_history(args: argparse.Namespace) -> int:
    """``cronsync history JOB``: the job's runs, newest first (as root, also those of
    its earlier users)."""
    from cronsync.host.config import load_config
    from cronsync.run.history import all_records
    from cronsync.run.orphans import show_orphan
    from cronsync.run.store import list_records

    config = load_config(args.config)
    document = _installed_job(config, args.job)
    runs_dir = config.paths.runs_dir
    records = all_records(runs_dir, args.job, list_records(runs_dir, args.job))[: args.limit]
    records = show_orphan(config.paths.runs_dir, args.job, records)
    if args.json:
        emit_json([record.to_json() for record in records])
        return 0
    if not records:
        print(f"no runs of {args.job} recorded")
        return 0
    user = document["jobs"][args.job].get("user")
    print(f"{'RUN':<22} {'STARTED':<20} {'SECONDS':>8} {'STATUS':<10} EXIT")
    for record in records:
        seconds = "-" if record.duration is None else f"{record.duration:.1f}"
        code = "-" if record.exit_code is None else str(record.exit_code)
        started = record.started[:19].replace("T", " ")
        line = f"{record.run_id:<22} {started:<20} {seconds:>8} {record.status:<10} {code}"
        line += f"  (as {record.user})" if record.user != user else ""
        print(_printable(line + (f"  {record.reason}" if record.reason else "")))
    return 0


def _printable(text: str) -> str:
    """Control characters of a (job-written) record shown as ``?``, not sent to the
    terminal."""
    return "".join(c if c.isprintable() or c == " " else "?" for c in text)


def cmd_logs(args: argparse.Namespace) -> int:
    """``cronsync logs JOB [--run ID]``: print a run's local log (the last run's by
    default).

    Only a regular file directly in the job's log directory (for an earlier user's run,
    in its entry of the job's log history) is printed, whatever its run record (written
    by the job's user) names: the folder is the one cronsync made, never one a record
    names, and the log is opened through it without following a symlink or blocking on
    a FIFO, and streamed.
    """
    from cronsync.host.config import load_config

    config = load_config(args.config)
    document = _installed_job(config, args.job)
    found = _find_log(config, document, args.job, args.run)
    if found is None:
        which = f"run {args.run} of {args.job}" if args.run else f"{args.job}"
        raise CronsyncError(f"no log recorded for {which} (see cronsync history {args.job})")
    fd = _open_log(*found)
    try:
        if args.json:
            from cronsync.cli.logjson import write_log_json

            run_id = found[1].removesuffix(".log")
            write_log_json(fd, sys.stdout.buffer, args.job, run_id)
        else:
            _copy_log(fd, sys.stdout.buffer, raw=args.raw, with_streams=not args.no_streams)
    finally:
        os.close(fd)
    return 0


_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4}")  # cronsync.run.record.new_run_id's


def _find_log(
    config: Any, document: Mapping[str, Any], job: str, run: Optional[str]
) -> Optional[tuple[str, str]]:
    """Find the log of run ``run`` of ``job`` (the newest run with a log when None).

    Returns:
        The folder it is in (one of the job's log directories, or for an earlier user's
        run its entry of the job's log history, found by run id: never a folder a
        record names) and its name there; None when there is none.

    Raises:
        CronsyncError: the job's user's record names a log outside the job's log
            directory.
    """
    from cronsync.run.history import all_records, earlier_log
    from cronsync.run.store import list_records

    log_dir = config.paths.log_dir
    current = list_records(config.paths.runs_dir, job)
    ours = {record.run_id for record in current}
    for record in all_records(config.paths.runs_dir, job, current):
        if record.log and run in (None, record.run_id):
            if record.run_id in ours:
                return _in_log_dirs(str(record.log), _log_dirs(config, document, job))
            return earlier_log(log_dir, job, record.run_id)
    if run and _RUN_ID.fullmatch(run):  # a record damaged or gone
        folder, name = os.path.realpath(os.path.join(log_dir, job)), f"{run}.log"
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(os.path.join(folder, name)).st_mode):
                return folder, name
        return earlier_log(log_dir, job, run)
    return None


def _log_dirs(config: Any, document: Mapping[str, Any], job: str) -> list[str]:
    """The job's log directory, as configured and as the installed release has it."""
    dirs = [str(config.paths.log_dir)]
    settings = document.get("settings")
    if isinstance(settings, dict) and isinstance(settings.get("log_dir"), str):
        dirs.append(settings["log_dir"])
    return [os.path.realpath(os.path.join(base, job)) for base in dirs]


def _in_log_dirs(path: str, job_dirs: list[str]) -> tuple[str, str]:
    """Split the log ``path`` a record names into the one of ``job_dirs`` its folder is
    (symlinks resolved) and its file name.

    Raises:
        CronsyncError: its folder is none of them.
    """
    folder, name = os.path.split(path)
    real = os.path.realpath(folder) if folder else ""
    if real not in job_dirs or name in ("", ".", ".."):
        raise CronsyncError(f"refusing to print {path}: not a file in the job's log directory")
    return real, name


def _open_log(folder: str, name: str) -> int:
    """Open the run log ``name`` in ``folder``: the folder without following a symlink,
    the log through it, only if it is a regular file (not a symlink: ``O_NOFOLLOW``;
    not a FIFO, which is not waited for) with no other hard link.

    Raises:
        CronsyncError: it is anything else, or cannot be opened.
    """
    path = os.path.join(folder, name)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fd = os.open(name, flags, dir_fd=folder_fd)
        finally:
            os.close(folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CronsyncError(f"refusing to print {path}: a symbolic link") from exc
        raise CronsyncError(f"cannot read {path}: {exc.strerror or exc}") from exc
    found = os.fstat(fd)
    why = "not a regular file" if not stat.S_ISREG(found.st_mode) else ""
    why = why or ("it has other hard links" if found.st_nlink != 1 else "")
    if why:
        os.close(fd)
        raise CronsyncError(f"refusing to print {path}: {why}")
    return fd


def _copy_log(fd: int, out: BinaryIO, *, raw: bool, with_streams: bool) -> None:
    """Write a run log to ``out`` chunk by chunk: as stored (``raw``), or as the job's
    output (markers removed, escapes undone, stderr and cronsync lines marked) as
    :func:`cronsync.core.logformat.plain_text` does."""
    from cronsync.core.logformat import CRONSYNC, ERR, OUT, parse_marker, unescape_line

    prefixes = {OUT: b"", ERR: b"[stderr] ", CRONSYNC: b"[cronsync] "}
    stream = OUT
    pending = b""
    while True:
        chunk = os.read(fd, LOG_CHUNK)
        if not chunk:
            break
        if raw:
            out.write(chunk)
            continue
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()  # no newline yet
        if len(pending) > LONGEST_LOG_LINE:
            lines.append(pending)
            pending = b""
        parts = []
        for line in lines:
            found = parse_marker(line)
            if found is not None:
                stream = found[0]
                continue
            prefix = prefixes[stream] if with_streams or stream == CRONSYNC else b""
            parts.append(prefix + unescape_line(line) + b"\n")
        out.write(b"".join(parts))
    out.flush()


def cmd_flush(args: argparse.Namespace) -> int:
    """``cronsync flush``: deliver run output still waiting for CloudWatch Logs."""
    from cronsync.cloud.forward import flush_all
    from cronsync.core.model import RepoSettings
    from cronsync.host.config import load_config
    from cronsync.host.view import installed_jobs

    config = load_config(args.config)
    settings = (installed_jobs(config) or {}).get("settings") or {}
    summary = flush_all(
        config.paths.runs_dir,
        config.run.aws,
        time.monotonic() + args.seconds,
        host=config.host.name,
        log_group=str(settings.get("log_group") or RepoSettings.log_group),
    )
    if args.json:
        emit_json(summary)
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
        "gate and no jitter. Started as root, the job gets the environment cron gives "
        "it (HOME, LOGNAME, USER, SHELL=/bin/sh, PATH=/usr/bin:/bin, and TERM/LANG/LC_* "
        "of the terminal) plus its env and secrets, none of root's; run as its own "
        "user, it keeps the caller's environment. Exits with the job's exit status, "
        "or 125-127 as cronsync-run does.",
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
        "List a job's recorded runs: start, duration, result, exit code. A run whose "
        "cronsync-run was killed while its job still runs shows as orphaned. As root, "
        "the runs of the job's earlier users (kept aside when its user changed) too, "
        "marked 'as USER'.",
        add_config,
    )
    history.add_argument("job", help="the job's name")
    history.add_argument(
        "--limit", type=positive_int, default=20, help="how many, at least 1 (default 20)"
    )
    history.add_argument("--json", action="store_true", help="the run records as JSON")
    logs = _verb(
        verbs,
        "logs",
        cmd_logs,
        "print a run's output",
        "Print the output of a job's last run (or of --run ID) from the local log. "
        "stderr lines are marked [stderr]; secrets are already masked. As root, a run "
        "of the job's earlier users too (kept aside when its user changed). --json gives "
        "each line with its stream and time, for scripts.",
        add_config,
    )
    logs.add_argument("job", help="the job's name")
    logs.add_argument("--run", metavar="ID", help="a run id from cronsync history")
    logs.add_argument("--no-streams", action="store_true", help="do not mark stderr lines")
    form = logs.add_mutually_exclusive_group()
    form.add_argument("--raw", action="store_true", help="the log file as stored")
    form.add_argument(
        "--json",
        action="store_true",
        help="one JSON document (format cronsync.logs/1): job, run_id and lines[], each "
        "{stream: stdout|stderr|cronsync, time, text}",
    )
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
        "--seconds",
        type=positive_seconds,
        default=FLUSH_SECONDS,
        help="give up after this long (default 60)",
    )
    flush.add_argument("--json", action="store_true", help="machine-readable output")
