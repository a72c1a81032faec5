"""The ``cronsync import``, ``adopt`` and ``migration`` verbs: move a legacy host's
crontabs into a job repository, retire the original lines once the jobs are installed,
and follow the imported jobs until each has proven itself.

Nothing printed, in text or ``--json``, ever holds a secret value.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from cronsync.cli.jsonout import emit_json
from cronsync.core.errors import UsageError

_MAX_LISTED = 20
_IMPORT_DESCRIPTION = """\
Write a job repository from crontabs: cronsync.toml, one jobs/NAME.toml per entry cron
really runs, MIGRATION.md (the checklist to review) and, with --copy-scripts, scripts/.
Without SOURCES it reads the host's /etc/crontab, /etc/cron.d/* and user crontabs
(below paths.root of the agent config, or --root); cronsync's own file is skipped.
Schedules, users, environment, % (stdin) and shell lines keep their meaning; inline
secrets move to a 0600 file outside the repository (--secrets-file) or to Secrets
Manager (--create-secrets) and the jobs reference them; no line is shown with a
secret in it, whatever cron makes of the line. Broken, dead, duplicate and
commented-out entries are reported, not dropped. SOURCES may come from another host:
a job whose user this host lacks is imported and named under "Left for a person" in
MIGRATION.md. REPO/jobs must be empty. Reading the host's crontabs (no SOURCES), it
also writes each entry's evidence of life into MIGRATION.md (as `cronsync inventory
--evidence`: runs in cron's log, files written, script, and a verdict).

exit codes: 0 written, 2 usage error (nothing written), 4 the secrets could not be stored
(nothing written) or a file could not be written."""
_ADOPT_DESCRIPTION = """\
After a sync installed jobs made by `cronsync import`, comment out the original crontab
lines they replace ('# cronsync-adopted (job NAME, line N): ' and the line with every
secret masked), so nothing runs twice; a secret setting (DB_PASSWORD=...) that no
remaining line uses is commented out masked too, and lines an older cronsync adopted
with secrets in clear are rewritten masked. It reads the origins from the installed
release, and refuses (changing nothing) when a job is not installed or a line changed
since the import. A dry run unless --apply; --apply first copies each file it changes
into /var/lib/cronsync/adopt-backups/TIME/ (files 0600, folders 0700: they hold the
secrets; an adopt-backups folder of root's that is wider is made 0700, a symlink or
one owned by another user is refused) and prints how to restore them.
--purge-backups removes those backups once you are done.

Cron reads changed crontabs at the top of each minute: a sync and an adopt that land in
different minutes leave a minute in which both the job and its original line run.
--apply --sync closes that gap: it syncs and adopts in one minute (waiting up to half
a minute for the start of one).

exit codes: 0 done (or nothing to do), 1 refused (or the sync refused the commit;
with --purge-backups: something in adopt-backups is not an adopt backup and was left,
or the folder is not root's), 2 usage error, 3 git failed, 4 write failed,
75 another sync runs."""


def _host(args: argparse.Namespace) -> tuple[Path, str, Optional[Any]]:
    """Return the host root, its zone and the agent config (None without one)."""
    from cronsync.host.config import DEFAULT_CONFIG, config_path, load_config
    from cronsync.host.hostinfo import detect_host_timezone

    if args.root:
        root = Path(args.root)
        if not root.is_dir():
            raise UsageError(f"--root {root}: not a directory")
        config = load_config(args.config) if args.config else None
        return root, detect_host_timezone(root / "etc"), config
    if args.config or config_path(None) != DEFAULT_CONFIG or DEFAULT_CONFIG.exists():
        config = load_config(args.config)
        return config.paths.root, config.host.timezone, config
    return Path("/"), detect_host_timezone(), None


def _request(args: argparse.Namespace) -> Any:
    from cronsync.core.validate import SECRET_NAME, is_known_zone
    from cronsync.host.awsclients import AwsSettings
    from cronsync.migrate.importer import ImportRequest, host_path
    from cronsync.migrate.importmodel import ImportOptions

    if args.system and args.user:
        raise UsageError("--system and --user exclude each other")
    prefix = args.secret_prefix
    prefix += "" if not prefix or prefix.endswith("/") else "/"  # P/NAME-VARIABLE
    if not SECRET_NAME.fullmatch(prefix + "x"):
        raise UsageError(f"--secret-prefix {prefix!r}: use letters, digits, /_+=.@-")
    root, zone, config = _host(args)
    if not is_known_zone(zone):
        raise UsageError(f"the host's time zone {zone!r} is unknown here")
    skip = frozenset({host_path(config.paths.cron_file, root)}) if config else frozenset()
    from cronsync.migrate.cronlogs import journalctl_reader

    journal = journalctl_reader() if root == Path("/") and not args.sources else None
    return ImportRequest(
        into=Path(args.into),
        sources=tuple(Path(s) for s in args.sources),
        system=args.system,
        user=args.user,
        root=root,
        timezone=zone,
        options=ImportOptions(args.copy_scripts, args.include_commented, prefix),
        secrets_file=Path(args.secrets_file).absolute() if args.secrets_file else None,
        create_secrets=args.create_secrets,
        aws=config.run.aws if config else AwsSettings(),
        skip_sources=skip,
        journal=journal,
    )


def _import_summary(result: Any, into: str) -> list[str]:
    from cronsync.migrate.report import masked

    plan = result.plan
    skipped = [s for s in plan.skipped if s.line is not None]
    counts = Counter(s.category for s in skipped)
    lines = [
        f"imported {len(plan.jobs)} jobs from {len(plan.sources)} crontabs into {into}",
        f"not imported: {len(skipped)} entries"
        + (f" ({', '.join(f'{n} {c}' for c, n in sorted(counts.items()))})" if counts else ""),
    ]
    lines += [
        f"  {s.source}:{s.line}: {s.category}: {masked(s.reason)}" for s in skipped[:_MAX_LISTED]
    ]
    if len(skipped) > _MAX_LISTED:
        lines.append(f"  ... and {len(skipped) - _MAX_LISTED} more (see MIGRATION.md)")
    if result.evidence is not None:
        from cronsync.crontab.evidencereport import summary

        verdicts = summary(result.evidence).items()
        lines.append(
            f"evidence of life: {', '.join(f'{n} {v}' for v, n in verdicts)} (see MIGRATION.md)"
        )
    where = result.destination or ""
    if where.startswith("aws:"):
        lines.append(f"secrets: {len(plan.secrets)} stored in Secrets Manager under {where[4:]}")
    elif where:
        lines.append(f"secrets: {len(plan.secrets)} moved out to {where[5:]} (mode 0600)")
    lines.append(
        f"next: read {Path(into) / 'MIGRATION.md'}, fill in description and owner of every "
        f"job, then `cronsync validate {into}`"
    )
    return lines


def cmd_import(args: argparse.Namespace) -> int:
    """``cronsync import [SOURCES...] --into REPO``: write a repository from crontabs."""
    from cronsync.migrate.importer import run_import
    from cronsync.migrate.report import import_json

    result = run_import(_request(args))
    if args.json:
        doc = import_json(result.plan, args.into, result.written, result.destination)
        emit_json(doc)
    else:
        print("\n".join(_import_summary(result, args.into)))
    return 0


_UNUSED = "secret setting no job uses now"


def _lines(items: list[Any]) -> str:
    return f"{len(items)} line{'' if len(items) == 1 else 's'} adopted before"


def _adopt_lines(plan: Any, apply: bool) -> list[str]:
    verb = "commenting out" if apply else "would comment out"
    count = sum(len(change.retire) + len(change.settings) for change in plan.changes)
    lines = [
        f"installed release {plan.release} (commit {plan.commit[:12]}): "
        f"{plan.jobs} imported jobs installed",
        f"{verb} {count} lines in {len(plan.changes)} files:",
    ]
    for change in plan.changes:
        found = [(r.line, r.job, r.text) for r in change.retire]
        found += [(number, _UNUSED, text) for number, text in change.settings]
        lines += [f"  {change.source}:{n} ({why}): {text}" for n, why, text in sorted(found)]
    lines += [f"already adopted: {r.origin.source}:{r.line} ({r.job})" for r in plan.already]
    remask = [(change.source, r) for change in plan.changes for r in change.remask]
    if remask:
        lines.append(f"{'masking' if apply else 'would mask'} the secrets of {_lines(remask)}:")
        lines += [f"  {source}:{r.line} ({r.job}): {r.text}" for source, r in remask]
    lines += [f"note: {note}" for note in plan.notes]
    if plan.refusals:
        lines += ["refused, nothing changed:", *(f"  {r}" for r in plan.refusals)]
    return lines


def cmd_adopt(args: argparse.Namespace) -> int:
    """``cronsync adopt [--apply [--sync]] [SOURCES...]``: retire the lines imported jobs
    replace (after a sync, or with ``--sync`` in the same cron minute as one)."""
    from cronsync.host.config import Paths
    from cronsync.migrate.adopt import apply_adopt, plan_adopt
    from cronsync.migrate.importer import host_path

    if args.purge_backups:
        return _purge_backups(args)
    if args.sync:
        return _sync_and_adopt(args)
    root, _zone, config = _host(args)
    paths = config.paths if config and not args.root else Paths(root, root / "etc/cron.d/cronsync")
    sources = {host_path(Path(s), root) for s in args.sources} if args.sources else None
    plan = plan_adopt(paths, sources)
    if args.json:
        return _adopt_json(plan, args.apply, paths.root)
    print("\n".join(_adopt_lines(plan, args.apply and not plan.refusals)))
    if plan.refusals:
        return 1
    if not args.apply:
        print("dry run: nothing changed; `cronsync adopt --apply` does it")
        return 0
    folder, restores = apply_adopt(plan, paths.root, datetime.now(timezone.utc))
    _print_done(folder, restores)
    return 0


def _adopt_json(plan: Any, apply: bool, root: Path) -> int:
    """``adopt [--apply] --json``: apply the plan when asked and it has no refusal, then
    print its document. Returns the exit code (1 refused, else 0)."""
    from cronsync.migrate.adopt import apply_adopt
    from cronsync.migrate.adoptreport import plan_document

    if plan.refusals or not apply:
        action = "apply" if apply else "dry-run"
        emit_json(plan_document(plan, action, changed=False))
        return 1 if plan.refusals else 0
    folder, restores = apply_adopt(plan, root, datetime.now(timezone.utc))
    emit_json(plan_document(plan, "apply", bool(plan.changes), folder, tuple(restores)))
    return 0


def _print_done(folder: Optional[Path], restores: list[tuple[Path, Path]]) -> None:
    from cronsync.migrate.adoptbackup import restore_command

    if folder is not None:
        print(f"done; backups in {folder} (root only: they hold the original lines)")
        print("to undo, restore each file (as root):")
        for backup, original in restores:
            print(f"  {restore_command(backup, original)}")
        print("once you are done: `cronsync adopt --purge-backups` removes the backups")
    print("run `cronsync inventory --unmanaged-only` to see what cron still runs outside cronsync")


def _purge_backups(args: argparse.Namespace) -> int:
    """``cronsync adopt --purge-backups``: remove adopt's backups, and nothing else."""
    from cronsync.migrate.adoptbackup import purge_backups

    if args.apply or args.sync or args.sources:
        raise UsageError("--purge-backups takes no SOURCE, --apply or --sync")
    root, _zone, config = _host(args)
    done = purge_backups(config.paths.root if config and not args.root else root)
    if args.json:
        from cronsync.migrate.adoptreport import purge_document

        emit_json(purge_document(done))
        return 1 if done.left else 0
    if not done.removed and not done.left:
        print(f"no adopt backups in {done.base}")
    for path, count in done.removed:
        print(f"removed {path} ({count} file{'' if count == 1 else 's'})")
    for path, why in done.left:
        print(f"left alone: {path} ({why})")
    return 1 if done.left else 0


_BOTH_RUN = (
    "the imported jobs are installed and the original lines still run: fix what is "
    "said above and run `cronsync adopt --apply`, or push a commit without the jobs"
)


def _sync_and_adopt(args: argparse.Namespace) -> int:
    """``cronsync adopt --apply --sync``: sync, then adopt in the same cron minute."""
    from cronsync.core.model import Problem
    from cronsync.host.config import load_config
    from cronsync.migrate.adopt import AdoptRefused
    from cronsync.migrate.cutover import sync_and_adopt
    from cronsync.migrate.importer import host_path

    if not args.apply:
        raise UsageError("--sync installs and retires for real: it needs --apply")
    if args.root:
        raise UsageError("--sync takes the host root from the agent config, not --root")
    config = load_config(args.config)
    root = config.paths.root
    sources = {host_path(Path(s), root) for s in args.sources} if args.sources else None
    try:
        done = sync_and_adopt(config, sources, announce=_announcer(args.json))
    except AdoptRefused as exc:
        print(f"refused, nothing retired: {exc.message}", file=sys.stderr)
        print(_BOTH_RUN, file=sys.stderr)
        if args.json:
            emit_json(_refused_sync_document(None, [exc.message]))
        return 1
    if args.json:
        return _sync_json(done)
    record = done.sync.record
    print(f"sync {record.result}: {record.message}", file=sys.stdout if record.ok else sys.stderr)
    if done.plan is None:
        for problem in record.errors:
            print("  " + Problem.from_dict(problem).format(), file=sys.stderr)
        print("nothing retired: the original lines keep running", file=sys.stderr)
        return done.sync.exit_code or 1
    print("\n".join(_adopt_lines(done.plan, done.adopted)))
    if not done.adopted:
        print(_BOTH_RUN, file=sys.stderr)
        return 1
    _print_done(done.backups, done.restores)
    if done.crossed_minute:
        print(
            f"warning: the sync and adopt spanned {done.crossed_minute} UTC: jobs due then "
            "may have run twice (see `cronsync history JOB`)",
            file=sys.stderr,
        )
    return 0


def _announcer(as_json: bool) -> Callable[[str], None]:
    """Where ``--sync`` says what it waits for: stdout, or stderr when stdout is JSON."""
    if as_json:
        return lambda message: print(message, file=sys.stderr)
    return print


def _sync_fields(done_sync: Any) -> dict[str, Any]:
    record = done_sync.record
    return {
        "result": record.result,
        "message": record.message,
        "commit": record.commit,
        "errors": list(record.errors),
        "exit_code": done_sync.exit_code,
    }


def _refused_sync_document(done_sync: Any, refusals: list[str]) -> dict[str, Any]:
    """``adopt --apply --sync --json`` when nothing was retired before a plan existed."""
    from cronsync.migrate.adoptreport import ADOPT_FORMAT

    return {
        "format": ADOPT_FORMAT,
        "action": "sync",
        "ok": False,
        "changed": False,
        "refusals": refusals,
        "sync": None if done_sync is None else _sync_fields(done_sync),
    }


def _sync_json(done: Any) -> int:
    """Print the document of ``adopt --apply --sync --json``; return its exit code."""
    from cronsync.migrate.adoptreport import plan_document

    if done.plan is None:
        refused = ["the sync did not install the commit: nothing retired"]
        emit_json(_refused_sync_document(done.sync, refused))
        return int(done.sync.exit_code or 1)
    changed = done.adopted and bool(done.plan.changes)
    document = plan_document(done.plan, "sync", changed, done.backups, tuple(done.restores))
    document["ok"] = bool(done.adopted)
    document["sync"] = _sync_fields(done.sync)
    document["crossed_minute"] = done.crossed_minute
    emit_json(document)
    return 0 if done.adopted else 1


_MIGRATION_DESCRIPTION = """\
After the cut-over, on the new host: every installed job made by `cronsync import` (its
file's header names the crontab line it replaces) with its first run since, its runs by
cron, successes and failures, whether it has a success.check or success.within, and a
state: verified (succeeded at least N times, default 3, with a success check or a
sign-off), signed-off (a person recorded it: `[migration] verified_by = "..."` and
`verified_on = "YYYY-MM-DD"` in the job file, a reviewed commit), running (succeeding,
not yet verified), failing (its last run failed), never-ran (past its first expected
run, no run by cron), pending (not due yet). Runs by hand and skipped runs are counted
apart: they prove nothing about the schedule. Each job says why it has its state.

--since TIME counts from the cut-over at TIME instead of from each job's install: runs
before it are left out, and a job due after it with no run by cron is never-ran. Use it
when the jobs were installed before the cut-over, to start counting again after a fix,
or on a host whose install record was lost (a rebuilt host, a sandbox).

exit codes: 0 every imported job verified or signed off, 1 not yet (or nothing
installed), 2 usage or config error."""


def parse_since(text: str, now: datetime) -> datetime:
    """Return ``--since``'s time: ISO 8601 (``2026-12-01T09:00Z``, an offset, or a day,
    meaning its midnight); UTC when it names no zone.

    Raises:
        UsageError: not such a time, or later than ``now``.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text}: give a time as 2026-12-01T09:00Z (ISO 8601) or a day as 2026-12-01"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment > now:
        raise UsageError(f"--since {text}: in the future (now is {now:%Y-%m-%d %H:%M} UTC)")
    return moment


def cmd_migration(args: argparse.Namespace) -> int:
    """``cronsync migration [--json]``: the verification ledger of the imported jobs."""
    from cronsync.core.migrationledger import ledger_text
    from cronsync.host.config import load_config
    from cronsync.migrate.ledger import read_ledger

    if args.min_successes < 1:
        raise UsageError(f"--min-successes {args.min_successes}: give 1 or more")
    now = datetime.now(timezone.utc)
    since = parse_since(args.since, now) if args.since else None
    config = load_config(args.config)
    doc = read_ledger(config, now, args.min_successes, since)
    if args.json:
        emit_json(doc)
    else:
        print(ledger_text(doc))
    return 0 if doc["complete"] else 1


def _add_migration_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    ledger: argparse.ArgumentParser = verbs.add_parser(
        "migration",
        help="after the cut-over: has each imported job proven itself (the ledger)",
        description=_MIGRATION_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ledger.add_argument(
        "--min-successes",
        type=int,
        default=3,
        metavar="N",
        help="successes by cron that verify a job with a success check or sign-off (default 3)",
    )
    ledger.add_argument(
        "--since",
        metavar="TIME",
        help="count from the cut-over at TIME (ISO 8601, e.g. 2026-12-01T09:00Z; UTC when "
        "no zone is given) instead of from each job's install",
    )
    ledger.add_argument("--json", action="store_true", help="machine-readable output")
    add_config(ledger)
    ledger.set_defaults(func=cmd_migration)


def add_import_verbs(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``import``, ``adopt`` and ``migration`` to the ``cronsync`` parser.

    Args:
        verbs: the sub-parsers object of the ``cronsync`` parser.
        add_config: adds the shared ``--config PATH`` option.
    """
    formatter = argparse.RawDescriptionHelpFormatter
    imp: argparse.ArgumentParser = verbs.add_parser(
        "import",
        help="write a job repository from a host's crontabs (secrets moved out)",
        description=_IMPORT_DESCRIPTION,
        formatter_class=formatter,
    )
    imp.add_argument(
        "sources", nargs="*", metavar="SOURCE", help="crontab files (default: the host's)"
    )
    imp.add_argument("--into", required=True, metavar="REPO", help="the repository to write")
    kind = imp.add_mutually_exclusive_group()
    kind.add_argument(
        "--system",
        action="store_true",
        help="SOURCES have a user field (without SOURCES: only the host's system crontabs)",
    )
    kind.add_argument(
        "--user",
        metavar="USER",
        help="SOURCES are USER's crontab (without SOURCES: USER's crontab on the host)",
    )
    imp.add_argument(
        "--root", metavar="DIR", help="the host below DIR (default: paths.root, else /)"
    )
    imp.add_argument(
        "--copy-scripts",
        action="store_true",
        help="copy scripts run by absolute path into scripts/",
    )
    imp.add_argument(
        "--include-commented", action="store_true", help="import commented-out jobs, disabled"
    )
    store = imp.add_mutually_exclusive_group()
    store.add_argument(
        "--secrets-file",
        metavar="PATH",
        help="where secret values go (mode 0600, outside REPO; {user} in PATH writes one "
        "file per user; default ./cronsync-import-secrets.toml)",
    )
    store.add_argument(
        "--create-secrets",
        action="store_true",
        help="store secret values in Secrets Manager (agent.toml [aws])",
    )
    imp.add_argument(
        "--secret-prefix",
        metavar="P",
        default="imported/",
        help="secret names are P + JOB-VARIABLE (default imported/; one prefix per host)",
    )
    imp.add_argument("--json", action="store_true", help="machine-readable summary")
    add_config(imp)
    imp.set_defaults(func=cmd_import)

    adopt: argparse.ArgumentParser = verbs.add_parser(
        "adopt",
        help="comment out the crontab lines replaced by installed imported jobs",
        description=_ADOPT_DESCRIPTION,
        formatter_class=formatter,
    )
    adopt.add_argument("sources", nargs="*", metavar="SOURCE", help="only these crontabs")
    adopt.add_argument("--apply", action="store_true", help="do it (default: a dry run)")
    adopt.add_argument(
        "--sync",
        action="store_true",
        help="with --apply: sync first, then adopt within the same cron minute (waits for "
        "the start of a minute when needed), so no job runs twice",
    )
    adopt.add_argument(
        "--purge-backups",
        action="store_true",
        help="remove the backups earlier adopts kept (they hold the original lines, "
        "secrets and all) and nothing else; says what it removed",
    )
    adopt.add_argument(
        "--root", metavar="DIR", help="the host below DIR (default: paths.root, else /)"
    )
    adopt.add_argument(
        "--json",
        action="store_true",
        help="one JSON document (format cronsync.adopt/1) instead of the text: the lines "
        "(masked), refusals, backups and restore commands; with --sync also the sync",
    )
    add_config(adopt)
    adopt.set_defaults(func=cmd_adopt)
    _add_migration_verb(verbs, add_config)
