"""``cronsync adopt --json``: what adopt did or would do, as one document.

Format ``cronsync.adopt/1``: ``action`` (``dry-run`` | ``apply`` | ``sync`` |
``purge-backups``), ``ok`` (the exit code is 0), and for the first three the installed
``release``, ``commit`` and ``jobs``, ``lines[]`` to comment out {``source``, ``line``,
``job`` (null for a secret setting no job uses now), ``why``, ``text``}, ``remask[]``,
``already_adopted[]``, ``notes[]``, ``refusals[]``, ``changed``, ``backups`` and
``restore[]`` (shell commands). Every text is the masked one the text output shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from cronsync.migrate.adopt import AdoptPlan, Retirement
from cronsync.migrate.adoptbackup import Purge, restore_command

ADOPT_FORMAT = "cronsync.adopt/1"
REPLACED = "replaced by its job"
UNUSED_SETTING = "secret setting no job uses now"


def _retirement(source: str, item: Retirement) -> dict[str, Any]:
    return {"source": source, "line": item.line, "job": item.job, "text": item.text}


def plan_document(
    plan: AdoptPlan,
    action: str,
    changed: bool,
    backups: Optional[Path] = None,
    restores: tuple[tuple[Path, Path], ...] = (),
) -> dict[str, Any]:
    """Return the document of an adopt plan (dry run, applied, or refused).

    Args:
        plan: what adopt found.
        action: ``dry-run``, ``apply`` or ``sync``.
        changed: whether the crontabs were rewritten.
        backups: the backup folder of an applied adopt.
        restores: (backup, original) pairs, turned into restore commands.

    Raises:
        InstallError: an original cannot be read for its restore command (as in the
            text output).
    """
    lines = []
    for change in plan.changes:
        lines += [{**_retirement(change.source, item), "why": REPLACED} for item in change.retire]
        lines += [
            {"source": change.source, "line": n, "job": None, "why": UNUSED_SETTING, "text": text}
            for n, text in change.settings
        ]
    lines.sort(key=lambda item: (item["source"], item["line"]))
    return {
        "format": ADOPT_FORMAT,
        "action": action,
        "ok": not plan.refusals,
        "release": plan.release,
        "commit": plan.commit,
        "jobs": plan.jobs,
        "lines": lines,
        "remask": [_retirement(c.source, item) for c in plan.changes for item in c.remask],
        "already_adopted": [
            {"source": item.origin.source, "line": item.line, "job": item.job}
            for item in plan.already
        ],
        "notes": list(plan.notes),
        "refusals": list(plan.refusals),
        "changed": changed,
        "backups": None if backups is None else str(backups),
        "restore": [restore_command(backup, original) for backup, original in restores],
    }


def purge_document(done: Purge) -> dict[str, Any]:
    """Return the document of ``adopt --purge-backups``: the folder, what was removed
    (path, number of files) and what was left alone (path, why)."""
    return {
        "format": ADOPT_FORMAT,
        "action": "purge-backups",
        "ok": not done.left,
        "base": str(done.base),
        "removed": [{"path": str(path), "files": count} for path, count in done.removed],
        "left": [{"path": str(path), "why": why} for path, why in done.left],
    }
