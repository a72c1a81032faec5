"""The ``cronsync inventory`` verb: every cron entry on a host and what cron does with it.

Lists the entries of ``/etc/crontab``, ``/etc/cron.d/*`` and the user crontabs (or of
files given on the command line), with the schedule in English, the next run, the
command with secrets masked, and the state: runs, managed (cronsync's own), commented
out, ignored (why) or never runs (why). Exit 0, or 1 when an entry that is not
commented out would not run, or a host crontab could not be read; 2 when a FILE given
on the command line cannot be read (a usage error).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsync.cli.jsonout import emit_json
from cronsync.core.errors import UsageError
from cronsync.crontab.inventory import HostFacts, inventory_files
from cronsync.crontab.records import FileInventory, InventoryEntry

FORMAT = 1
_COMMAND_WIDTH = 60
_DESCRIPTION = """\
List every cron entry of this host: /etc/crontab, /etc/cron.d/* and the user crontabs
in /var/spool/cron/crontabs (below paths.root of the agent config, or --root), or of
the FILES given (a `crontab -l` dump is a user crontab; --system for /etc/crontab
format). For each: where, user, schedule in English, next run, the command with
secrets masked, and whether cron really runs it. Debian's cron silently ignores a whole
file for one bad line (an unknown user too), a missing final newline, a dotted cron.d
name, a wrong owner or mode; reversed ranges and impossible dates are accepted and
never run. The users named in FILES (user fields, the owner given by --user) are
checked against this host (below --root: its etc/passwd) unless --any-users. Secrets
are masked in every line, whatever cron makes of it. Nothing is changed.

--evidence adds what the host can prove about each entry's recent life: the runs cron
logged (the journal, `journalctl -u cron.service`, on / or --journal-file FILE holding
`journalctl -o json` or `-o short-iso` output; and ROOT/var/log/syslog and cron.log with
their rotations, .gz too), the files it writes to by redirection (modified, size, last
lines), its script (exists, modified, last commit in a git checkout), and a verdict:
alive, silent, failing, dead or unknown, each naming its evidence and the period the
logs cover. A log line two entries could have written is counted for neither
(ambiguous); commands in the log are masked like the crontab lines. A file an entry
writes to is never followed through a symbolic link, and its lines are read only when
the entry's user (or root, for a system crontab) owns it.

exit codes: 0 every entry runs (or is commented out), 1 an entry would not run or a
host crontab could not be read, 2 a FILE cannot be read, usage or config error."""


def _host_setup(args: argparse.Namespace) -> tuple[Path, str]:
    """Return the host root and time zone from --root, else the agent config, else /."""
    from cronsync.host.config import DEFAULT_CONFIG, config_path, load_config
    from cronsync.host.hostinfo import detect_host_timezone

    if args.root:
        root = Path(args.root)
        if not root.is_dir():
            raise UsageError(f"--root {root}: not a directory")
        return root, detect_host_timezone(root / "etc")
    explicit = args.config or config_path(None) != DEFAULT_CONFIG
    if explicit or DEFAULT_CONFIG.exists():
        config = load_config(args.config)
        return config.paths.root, config.host.timezone
    return Path("/"), detect_host_timezone()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


ANY_USERS_NOTE = "users were not checked against this host (--any-users)"


@dataclass(frozen=True)
class Collected:
    """What :func:`collect` found: one inventory per file, whether the users named in
    them were checked against this host, and notes about the whole inventory."""

    reports: list[FileInventory]
    users_checked: bool
    notes: list[str]
    root: Path = Path("/")
    host: Optional[HostFacts] = None


def collect(args: argparse.Namespace, now: Optional[datetime] = None) -> Collected:
    """Read and inventory what the command line asks for.

    Args:
        args: the parsed ``inventory`` arguments.
        now: the current time (default: the clock).
    Returns:
        the inventories, and whether users were checked (not with ``--any-users``, nor
        when the host's users cannot be read: the notes say why).
    Raises:
        UsageError: bad option combination, missing root, unreadable config.
    """
    from cronsync.crontab.hostfiles import (
        host_users,
        read_crontab_file,
        read_host_crontabs,
        user_lookup,
    )

    if args.system and args.user:
        raise UsageError("--system and --user exclude each other (a system crontab names users)")
    if getattr(args, "journal_file", None) and not getattr(args, "evidence", False):
        raise UsageError("--journal-file needs --evidence")
    if getattr(args, "evidence", False) and args.files:
        raise UsageError(
            "--evidence reads this host's cron log: it applies to the host's crontabs, not FILES"
        )
    if args.any_users and not args.files:
        raise UsageError(
            "--any-users applies to FILES only: the host's own crontabs are always "
            "checked against its users"
        )
    root, zone_name = _host_setup(args)
    users = None if args.any_users else user_lookup(root)
    notes = [ANY_USERS_NOTE] if args.any_users else []
    if users is None and not args.any_users:
        notes.append(
            f"cannot read {root / 'etc/passwd'}: the users of system crontabs and the "
            "owners of user crontabs are not checked"
        )
    if args.files:
        files = [read_crontab_file(Path(f), args.user, args.system, users) for f in args.files]
    else:
        files = read_host_crontabs(root, host_users(root))
    moment = now or datetime.now(timezone.utc)
    host = HostFacts(moment, _zone(zone_name), users)
    reports = inventory_files(files, host)
    return Collected(reports, users is not None, notes, root, host)


def _wanted(reports: Sequence[FileInventory], unmanaged_only: bool) -> list[FileInventory]:
    return [r for r in reports if not (unmanaged_only and r.managed)]


def _entries(reports: Sequence[FileInventory]) -> list[InventoryEntry]:
    return [entry for report in reports for entry in report.entries]


def exit_code(reports: Sequence[FileInventory]) -> int:
    """1 when an entry that is not commented out would not run or a file was
    unreadable, else 0."""
    bad_entry = any(not e.runs and not e.commented_out for e in _entries(reports))
    return 1 if bad_entry or any(not r.readable for r in reports) else 0


def inventory_json(
    reports: Sequence[FileInventory],
    now: datetime,
    users_checked: bool = True,
    notes: Sequence[str] = (),
) -> dict[str, object]:
    """Return the ``--json`` document (``inventory_format`` 1); ``users_checked`` and
    ``notes`` are about the whole inventory (see :func:`collect`)."""
    entries = _entries(reports)
    return {
        "inventory_format": FORMAT,
        "generated": now.isoformat(),
        "users_checked": users_checked,
        "notes": list(notes),
        "files": [report.to_json() for report in reports],
        "entries": [entry.to_json() for entry in entries],
        "summary": {
            "files": len(reports),
            "entries": sum(not e.commented_out for e in entries),
            "not_running": sum(not e.runs and not e.commented_out for e in entries),
            "commented_out": sum(e.commented_out for e in entries),
        },
    }


def _visible(text: str) -> str:
    """Show control characters (a CRLF's \\r, a tab) as escapes."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(entry: InventoryEntry) -> list[str]:
    next_run = entry.next_run.strftime("%Y-%m-%d %H:%M") if entry.next_run else "-"
    command = _visible(entry.command)
    return [
        f"{entry.source}:{entry.line}",
        entry.user or "?",
        entry.schedule or "-",
        entry.description or "-",
        next_run,
        entry.state,
        _short(command, _COMMAND_WIDTH),
    ]


def inventory_text(reports: Sequence[FileInventory], notes: Sequence[str] = ()) -> str:
    """Return the human table, then the problems by file and line, the summary and the
    ``notes`` about the whole inventory."""
    header = ["SOURCE:LINE", "USER", "SCHEDULE", "WHEN", "NEXT RUN", "STATE", "COMMAND"]
    rows = [header] + [_row(entry) for entry in _entries(reports)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
        for row in rows
    ]
    lines += _problem_lines(reports)
    entries = _entries(reports)
    active = [e for e in entries if not e.commented_out]
    lines.append(
        f"{len(reports)} files, {len(active)} entries, "
        f"{sum(not e.runs for e in active)} not run by cron, "
        f"{len(entries) - len(active)} commented out"
    )
    lines += [f"note: {note}" for note in notes]
    return "\n".join(line.rstrip() for line in lines)


def _problem_lines(reports: Sequence[FileInventory]) -> list[str]:
    lines: list[str] = []
    for report in reports:
        lines += [f"{report.source}: {problem}" for problem in report.problems]
        lines += [f"{report.source}: note: {note}" for note in report.notes]
        for entry in report.entries:
            own = [p for p in entry.problems if p not in report.problems]
            lines += [f"{entry.source}:{entry.line}: {_visible(p)}" for p in own]
    return ["", "problems:", *lines, ""] if lines else [""]


def _journal(args: argparse.Namespace, root: Path) -> Optional[Any]:
    """The journal seam: the file given, this host's journal on /, else none."""
    from cronsync.migrate.cronlogs import journal_file_reader, journalctl_reader

    if args.journal_file:
        return journal_file_reader(Path(args.journal_file))
    return journalctl_reader() if root == Path("/") else None


def _with_evidence(args: argparse.Namespace, found: Collected, reports: list[FileInventory]) -> Any:
    """Print the inventory with each entry's evidence of life (``--evidence``)."""
    from cronsync.crontab.evidencereport import evidence_json, evidence_text
    from cronsync.migrate.lifecheck import gather_evidence

    assert found.host is not None
    evidence, logs = gather_evidence(found.root, reports, found.host, _journal(args, found.root))
    if args.json:
        doc = inventory_json(reports, found.host.now, found.users_checked, found.notes)
        judged = {(e.source, e.line): e.to_json() for e in evidence.entries}
        for entry in cast(list[dict[str, Any]], doc["entries"]):
            entry["evidence"] = judged.get((entry["source"], entry["line"]))
        doc["evidence"] = evidence_json(evidence, logs.notes)
        emit_json(doc)
    else:
        print(inventory_text(reports, found.notes))
        print()
        print(evidence_text(evidence, logs.notes))


def _cannot_read(report: FileInventory) -> str:
    """``cannot read FILE: why`` of a FILE the command line named."""
    why = "; ".join(p.removeprefix("cannot read: ") for p in report.problems)
    return f"cannot read {report.source}: {why or 'unreadable'}"


def cmd_inventory(args: argparse.Namespace) -> int:
    """``cronsync inventory [FILES...]``: list the host's cron entries (or the files')."""
    now = datetime.now(timezone.utc)
    found = collect(args, now)
    unreadable = [r for r in found.reports if not r.readable] if args.files else []
    if unreadable:  # a FILE named on the command line: the command line is wrong
        raise UsageError("inventory: " + "; ".join(map(_cannot_read, unreadable)))
    reports = _wanted(found.reports, args.unmanaged_only)
    if args.evidence:
        _with_evidence(args, found, reports)
    elif args.json:
        emit_json(inventory_json(reports, now, found.users_checked, found.notes))
    else:
        print(inventory_text(reports, found.notes))
    return exit_code(reports)


def add_inventory_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``inventory`` to the ``cronsync`` parser.

    Args:
        verbs: the sub-parsers object of the ``cronsync`` parser.
        add_config: adds the shared ``--config PATH`` option.
    """
    parser: argparse.ArgumentParser = verbs.add_parser(
        "inventory",
        help="list every cron entry on the host and whether cron really runs it",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="crontab files to read instead of the host's"
    )
    parser.add_argument(
        "--system", action="store_true", help="the FILES have a user field (/etc/crontab format)"
    )
    parser.add_argument("--user", metavar="USER", help="the FILES are USER's crontab")
    parser.add_argument(
        "--any-users",
        action="store_true",
        help="do not check the users the FILES name against this host (a crontab from "
        "another machine); the output says they were not checked",
    )
    parser.add_argument(
        "--root", metavar="DIR", help="read the host below DIR (default: paths.root, else /)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--evidence",
        action="store_true",
        help="add each entry's evidence of life (cron log, files written, script) and a "
        "verdict: alive, silent, failing, dead or unknown",
    )
    parser.add_argument(
        "--journal-file",
        metavar="FILE",
        help="with --evidence: read cron's journal from FILE (`journalctl -u cron -o json` "
        "output) instead of asking journalctl (which is asked only when the root is /)",
    )
    parser.add_argument(
        "--unmanaged-only", action="store_true", help="leave out cronsync's own cron file"
    )
    add_config(parser)
    parser.set_defaults(func=cmd_inventory)
