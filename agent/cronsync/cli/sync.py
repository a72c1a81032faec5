"""``cronsync validate``, ``sync`` and ``agent``: check a jobs repository and install it.

Each verb has its ``cmd_*`` function and an ``add_*_verb`` that adds it to the
``cronsync`` parser (:func:`cronsync.cli.main.build_parser`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from cronsync.cli.jsonout import emit_json
from cronsync.core.errors import CronsyncError, UsageError


def cmd_validate(args: argparse.Namespace) -> int:
    """``cronsync validate [REPO]``: report every problem of a job repository (and, with
    ``--require-signed``, whether HEAD's signature verifies)."""
    from cronsync.core.model import ERROR
    from cronsync.repo.gate import check_repo_dir, check_repository

    host = None
    if args.host:
        from cronsync.host.build import host_context
        from cronsync.host.config import load_config

        host = host_context(load_config(args.config))
    root = Path(args.repo)
    check_repo_dir(root)
    signed = _check_signature(args, root)
    report = check_repository(root, host, lint=not args.no_lint)
    problems = report.problems
    blocking = [p for p in problems if p.severity == ERROR or args.strict]
    refused = signed is not None and not signed["ok"]
    if args.json:
        document = {
            "ok": not blocking and not refused,
            "jobs": len(report.repo.jobs),
            "problems": [p.as_dict() for p in problems],
        }
        emit_json({**document, "signature": signed} if signed is not None else document)
    else:
        for problem in problems:
            print(problem.format())
        if signed is not None:
            line = f"signature of HEAD {signed['commit'][:12]}: {signed['reason']}"
            print(("refused: " if refused else "ok: ") + line)
        errors = sum(p.severity == ERROR for p in problems)
        summary = (
            f"{len(report.repo.jobs)} job files parsed, {errors} errors, "
            f"{len(problems) - errors} warnings" + (", signature refused" if refused else "")
        )
        failed = bool(blocking) or refused
        print(
            ("FAILED: " if failed else "ok: ") + summary,
            file=sys.stderr if failed else sys.stdout,
        )
    return 1 if blocking or refused else 0


def _check_signature(args: argparse.Namespace, root: Path) -> Optional[dict[str, Any]]:
    """``validate --require-signed``: check HEAD of the repository holding ``root`` against
    ``--allowed-signers`` or ``--gpg-home``; None when no signature is required.

    Returns:
        {commit, ok, reason}.

    Raises:
        UsageError: the options do not fit together, the trust set is not usable, or
            ``root`` is not in a git repository with a commit.
    """
    from cronsync.core.signing import GPG, SSH, TrustSet
    from cronsync.repo.signature import verify_head

    given = {SSH: args.allowed_signers, GPG: args.gpg_home}
    option = {SSH: "--allowed-signers FILE", GPG: "--gpg-home DIR"}
    required = args.require_signed
    for fmt, value in given.items():
        if value is not None and required != fmt:
            raise UsageError(f"{option[fmt].split()[0]} needs --require-signed {fmt}")
    if required is None:
        return None
    if given[required] is None:
        raise UsageError(f"--require-signed {required} needs {option[required]}")
    trust = TrustSet(required, given[required], option[required].split()[0])
    try:
        commit, verdict = verify_head(root, trust)
    except CronsyncError as exc:
        raise UsageError(exc.message) from exc
    return {"commit": commit, "ok": verdict.ok, "reason": verdict.reason}


def cmd_sync(args: argparse.Namespace) -> int:
    """``cronsync sync``: one sync cycle."""
    from dataclasses import asdict

    from cronsync.host.config import load_config
    from cronsync.host.sync import run_sync

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
        emit_json(answer)
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
    from cronsync.core.errors import LockBusyError
    from cronsync.core.state import FAILED, REFUSED

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
        from cronsync.agent.metrics import publish_sync

        lines = publish_sync(config, synced=synced, failed=failed)
    except Exception as exc:  # a metric never changes what the sync did
        lines = [f"metrics not published: internal error: {type(exc).__name__}: {exc}"]
    for line in lines:
        print(f"note: {line}", file=sys.stderr)


def _sync_by_agent(config: Any) -> Optional[dict[str, Any]]:
    """Ask the running agent to sync now; None when no agent runs (sync here then)."""
    from cronsync.agent.control import SOCKET_NAME, ask_agent

    answer = ask_agent(config.paths.state_dir / SOCKET_NAME, "sync", timeout=600)
    if answer is None:
        print("note: no agent is running; syncing in this process", file=sys.stderr)
        return None
    if "error" in answer:
        raise CronsyncError(f"the agent could not sync: {answer['error']}")
    return answer


def cmd_agent(args: argparse.Namespace) -> int:
    """``cronsync agent``: the long-running service."""
    from cronsync.agent.loop import main as agent_main

    return agent_main(args.config)


def _problem_line(item: dict[str, Any]) -> str:
    from cronsync.core.model import Problem

    return "  " + Problem.from_dict(item).format()


def add_validate_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``validate`` to the ``cronsync`` parser."""
    validate = verbs.add_parser(
        "validate",
        help="check a job repository; every problem as file:line: field: message",
        description="Check a job repository (the same gate a sync applies). Exit 0 when "
        "clean, 1 with problems (or a signature --require-signed refuses), 2 for usage "
        "errors (REPO is not a folder, or has no jobs/ folder). Run it in the jobs "
        "repository's CI and pre-commit hook (hook id cronsync-validate).",
    )
    validate.add_argument("repo", nargs="?", default=".", help="repository folder (default .)")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.add_argument(
        "--host",
        action="store_true",
        help="also apply this host's user rules from the agent config: allowed and existing "
        "users; root and system users (uid below UID_MIN) only when users.allowed names them",
    )
    validate.add_argument("--no-lint", action="store_true", help="skip shellcheck")
    validate.add_argument("--strict", action="store_true", help="warnings fail too")
    validate.add_argument(
        "--require-signed",
        choices=("ssh", "gpg"),
        help="also require HEAD's signature to verify (as a sync with [repo] require_signed "
        "does for the tip): a good ssh or gpg signature by a key of --allowed-signers or "
        "--gpg-home; refused (exit 1) when unsigned, unknown, bad or expired",
    )
    validate.add_argument(
        "--allowed-signers",
        metavar="FILE",
        help="with --require-signed ssh: git's allowed signers file (owned by root or you, "
        "writable by nobody else)",
    )
    validate.add_argument(
        "--gpg-home",
        metavar="DIR",
        help="with --require-signed gpg: the keyring directory (GNUPGHOME) whose keys are "
        "trusted (owned by root or you, writable by nobody else)",
    )
    add_config(validate)
    validate.set_defaults(func=cmd_validate)


def add_sync_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``sync`` to the ``cronsync`` parser."""
    sync = verbs.add_parser(
        "sync",
        help="fetch, validate and install the configured branch (one cycle)",
        description="One sync cycle: fetch the configured branch, validate it, install it "
        "atomically. A commit with problems is refused and the last-known-good "
        "stays installed. A broken checkout is cloned afresh; a full disk is an install "
        "failure (exit 4) that keeps the checkout.",
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
    add_config(sync)
    sync.set_defaults(func=cmd_sync)


def add_agent_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``agent`` to the ``cronsync`` parser."""
    agent = verbs.add_parser(
        "agent",
        help="run the long-running agent (what cronsync-agent.service starts)",
        description="Sync every [agent] interval, watch the installed files for edits by "
        "hand (drift policy report or revert), deliver spooled job output, publish "
        "metrics and a heartbeat. SIGHUP (systemctl reload) or `cronsync sync --now` "
        "syncs at once; SIGTERM stops the git a sync runs (that sync is recorded as "
        "failed, the last-known-good stays) and exits.",
    )
    add_config(agent)
    agent.set_defaults(func=cmd_agent)
