"""``cronsync export``'s work: validate a repository, translate it, write the files.

The only module of ``export`` that touches the filesystem. Files are written
atomically (``files.atomic``), mode 0644. ``.cronsync-export`` in the output folder
lists what the last export wrote, so a job removed since loses its file too; any other
file there is left alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from cronsync.core.errors import UsageError
from cronsync.export.cloudformation import export_eventbridge
from cronsync.export.kubernetes import export_kubernetes
from cronsync.export.result import ExportResult
from cronsync.files.atomic import atomic_write
from cronsync.files.trusted import output_folder
from cronsync.repo.gate import GateReport, check_repository

TARGETS = ("kubernetes", "eventbridge")
LEDGER = ".cronsync-export"


def export_repository(
    root: Path, target: str, image: Optional[str], now: Optional[datetime] = None
) -> tuple[GateReport, Optional[ExportResult]]:
    """Validate ``root`` as ``cronsync validate`` does, then translate it for ``target``.

    Args:
        root: a jobs repository's working tree.
        target: one of ``TARGETS``.
        image: the container image (kubernetes only; required there).
        now: the current time, for the years clock changes are checked in.
    Returns:
        the validation report and, when it has no errors, the translation.
    Raises:
        UsageError: an unknown target, or kubernetes without an image.
    """
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    if target == "kubernetes" and not image:
        raise UsageError("--to kubernetes needs --image IMAGE (the image holding the repository)")
    if target != "kubernetes" and image is not None:
        raise UsageError("--image is for --to kubernetes only")
    if image is not None and any(char.isspace() or not char.isprintable() for char in image):
        raise UsageError(
            f"--image {image!r}: an image reference has no blanks or control characters"
        )
    report = check_repository(root, None, lint=False)
    if not report.ok:
        return report, None
    year = (now or datetime.now(timezone.utc)).year
    if target == "kubernetes":
        return report, export_kubernetes(report.repo, image or "", year)
    return report, export_eventbridge(report.repo)


def combined_document(result: ExportResult) -> dict[str, Any]:
    """Everything in one document, for stdout: a ``v1 List`` of the CronJobs (which
    ``kubectl apply -f -`` reads), or the CloudFormation template."""
    documents = [dict(result.documents[name]) for name in sorted(result.documents)]
    if result.target == "kubernetes":
        return {"apiVersion": "v1", "kind": "List", "items": documents}
    return documents[0]


def write_export(result: ExportResult, out: Path) -> list[Path]:
    """Write the documents into ``out`` (created if missing; its parent must exist) and
    remove the files of the previous export that this one no longer has.

    Returns:
        the files written, sorted.
    Raises:
        UsageError: ``out`` is a file, or its parent does not exist, or (as root) another
            user could swap it (``files.trusted.output_folder``).
        InstallError: a file could not be written.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if not out.exists():
        if not out.parent.is_dir():
            raise UsageError(f"--out {out}: {out.parent} does not exist")
        out = Path(output_folder(str(out.parent), "--out"), out.name)  # before making it
        out.mkdir(mode=0o755)
    out = Path(output_folder(str(out), "--out"))
    written = []
    for name in sorted(result.documents):
        path = out / name
        atomic_write(path, _dump(result.documents[name]))
        written.append(path)
    for stale in sorted(set(_previous(out)) - set(result.documents)):
        (out / stale).unlink(missing_ok=True)
    atomic_write(out / LEDGER, _dump({"target": result.target, "files": sorted(result.documents)}))
    return written


def _previous(out: Path) -> list[str]:
    """The files the last export into ``out`` wrote (only plain names, nothing else)."""
    try:
        files = json.loads((out / LEDGER).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str) and f.endswith(".json") and "/" not in f]


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
