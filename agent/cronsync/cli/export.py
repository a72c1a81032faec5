"""``cronsync export``: the jobs repository for a managed scheduler (Kubernetes, EventBridge).

The work is ``cronsync.export``'s; this module parses the options and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

from cronsync.cli.jsonout import emit_json
from cronsync.core.errors import UsageError

DESCRIPTION = """\
Translate a jobs repository, validated exactly as `cronsync validate` does, into another
scheduler's files. A repository with problems, or a job the target cannot run exactly as
cron would (@reboot, both day fields required at once, ...), is refused with the reason
and nothing is written.

kubernetes: one batch/v1 CronJob per job, as JSON (kubectl apply -f DIR). The image
  (--image) holds the repository at /opt/cronsync/repo; commands run from there. Secrets
  become secretKeyRefs to Kubernetes Secrets, listed in the output (names, never values).
eventbridge: a CloudFormation template (cronsync-schedules.json): one
  AWS::Scheduler::Schedule per job (two when cron's either-day-field rule needs it) whose
  target is SSM Run Command running `cronsync run --force JOB` on the instances tagged
  cronsync-repo=<TargetTagValue>, a dead-letter queue and a role allowed only that.

Without --out the files go to stdout as one document (a v1 List, or the template).

exit codes: 0 exported, 1 problems or a job the target cannot express, 2 usage."""


def cmd_export(args: argparse.Namespace) -> int:
    """``cronsync export --to TARGET [--out DIR] [--image IMAGE] [--json] [REPO]``."""
    from cronsync.export.output import combined_document, export_repository, write_export

    root = Path(args.repo)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    if not os.path.lexists(root / "jobs"):
        raise UsageError(f"{root} has no jobs/ directory: give the root of a jobs repository")
    report, result = export_repository(root, args.to, args.image)
    problems = result.problems if result is not None else report.problems
    if result is None or result.problems:
        return _refused(args, list(problems), report)
    written = write_export(result, Path(args.out)) if args.out else []
    summary = {**result.summary(), "files": [str(path) for path in written]}
    if args.json:
        emit_json(summary if args.out else {**summary, "document": combined_document(result)})
        return 0
    if not args.out:
        emit_json(combined_document(result))
    _print_summary(summary, sys.stderr if not args.out else sys.stdout)
    return 0


def _refused(args: argparse.Namespace, problems: list[Any], report: Any) -> int:
    if args.json:
        emit_json({"ok": False, "target": args.to, "problems": [p.as_dict() for p in problems]})
        return 1
    for problem in problems:
        print(problem.format(), file=sys.stderr)
    print(
        f"FAILED: not exported to {args.to}: {len(problems)} problems in "
        f"{len(report.repo.jobs)} job files",
        file=sys.stderr,
    )
    return 1


def _print_summary(summary: dict[str, Any], stream: Any) -> None:
    for path in summary["files"]:
        print(f"wrote {path}", file=stream)
    for job in summary["jobs"]:
        state = "" if job["enabled"] else " (disabled)"
        if "cronjob" in job:
            what = f"CronJob {job['cronjob']}: {job['schedule']} {job['timezone']}"
        else:
            what = "; ".join(s["expression"] for s in job["schedules"]) + f" {job['timezone']}"
        print(f"{job['job']}: {what}{state}", file=stream)
    for secret in summary["secrets"]:
        print(
            f"secret {secret['reference']} -> Secret {secret['secret']} key {secret['key']} "
            f"(jobs: {', '.join(secret['jobs'])})",
            file=stream,
        )
    for note in summary["notes"]:
        print(f"note: {note}", file=stream)
    print(f"ok: {len(summary['jobs'])} jobs exported to {summary['target']}", file=stream)


def add_export_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``export`` to the ``cronsync`` parser."""
    parser = verbs.add_parser(
        "export",
        help="write the jobs as Kubernetes CronJobs or EventBridge Scheduler schedules",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("repo", nargs="?", default=".", help="repository folder (default .)")
    parser.add_argument(
        "--to", required=True, choices=("kubernetes", "eventbridge"), help="the target"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write the files into DIR (created if missing; files of the previous export "
        "that are no longer needed are removed; as root, only root may be able to change DIR "
        "and the folders above it); default: one document on stdout",
    )
    parser.add_argument(
        "--image",
        metavar="IMAGE",
        help="kubernetes: the container image holding the repository at /opt/cronsync/repo",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary (jobs, secrets, notes, files or the document) as JSON",
    )
    add_config(parser)
    parser.set_defaults(func=cmd_export)
