"""``cronsync adopt``: after a sync installed imported jobs, retire the lines they replace.

Every job file written by ``cronsync import`` names the crontab lines it replaces
(``# cronsync-import: source=... line=... sha256=...``, see ``jobwriter``). Adopt reads
them from the *installed* release (``current/repo/jobs``), never from a working tree,
so a line is retired only when the job that replaces it is really installed:

* jobs that are in the release's jobs.json as installed, and in the cron file;
* the line still has the digest it had at import time (found at its line number,
  or as the only such line of the file if lines were added above it); a changed line
  is refused, and a refusal anywhere changes nothing anywhere;
* a retired line is prefixed with ``# cronsync-adopted: `` (cron then ignores it;
  running adopt again finds it already done).

With ``apply`` each file is first copied to
``ROOT/var/lib/cronsync/adopt-backups/TIMESTAMP/<host path>`` (mode and times kept,
folders 0700), then rewritten atomically with its owner and mode; the restore command
of each file is returned. Debian's cron picks up a rewritten ``/etc/crontab``,
``/etc/cron.d`` file or spool file at the next minute.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from cronsync.core.errors import CronsyncError
from cronsync.core.release import RELEASE_REPO
from cronsync.core.textshow import visible
from cronsync.files.atomic import atomic_write
from cronsync.host.config import Paths
from cronsync.host.install import make_cron_notice
from cronsync.migrate.jobwriter import Origin, line_digest, parse_origins
from cronsync.migrate.lines import command_field, entry_body
from cronsync.secretscan import scan

ADOPTED = b"# cronsync-adopted: "
BACKUPS = "var/lib/cronsync/adopt-backups"


class AdoptRefused(CronsyncError):
    """Adopt found a reason not to touch any crontab (every reason is in the message)."""


@dataclass(frozen=True)
class Retirement:
    """One original line: the job replacing it, its origin, where it is now (1-based)
    and its text with secrets masked."""

    job: str
    origin: Origin
    line: int
    text: str


@dataclass
class FileChange:
    """One crontab to rewrite: its host path, real path, bytes before and after."""

    source: str
    path: Path
    before: bytes = field(repr=False)
    after: bytes = field(repr=False)
    retire: list[Retirement] = field(default_factory=list)


@dataclass
class AdoptPlan:
    """What adopt would do (or refuses to do)."""

    commit: str
    release: str
    jobs: int = 0
    changes: list[FileChange] = field(default_factory=list)
    already: list[Retirement] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _masked(line: bytes) -> str:
    """Return a crontab line with its secrets masked. The scanner reads a command (its
    rules know programs), so the command is cut out both as a user crontab's and as
    a system crontab's (with a user field) and masked each time."""
    text = line.decode("utf-8", "replace")
    for system in (False, True):
        body = entry_body(text, commented=False)
        command = command_field(body, system)
        cut = len(text) - len(command)
        text = text[:cut] + scan.mask_secrets(command)
    return visible(scan.mask_secrets(text))


def _load_release(paths: Paths) -> tuple[Path, dict[str, Any]]:
    current = paths.current
    try:
        release = current.resolve(strict=True)
        document = json.loads((release / "jobs.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdoptRefused(
            f"no installed release at {current}: push the imported repository and run "
            "`cronsync sync` first"
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
        raise AdoptRefused(f"{release}/jobs.json is not a jobs document")
    return release, document


def _cron_jobs(cron_file: Path) -> set[str]:
    """Return the job names the cron file starts (the last word of each entry line)."""
    try:
        text = cron_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    names = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) > 1 and not line.lstrip().startswith("#") and "=" not in words[0]:
            names.add(words[-1])
    return names


def _job_origins(release: Path, name: str, record: Any) -> list[Origin]:
    relative = record.get("file") if isinstance(record, dict) else None
    if not isinstance(relative, str) or ".." in relative.split("/"):
        return []
    try:
        text = (release / RELEASE_REPO / relative).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return parse_origins(text)


def installed_origins(
    paths: Paths, plan: AdoptPlan, release: Path, document: dict[str, Any]
) -> dict[str, list[tuple[str, Origin]]]:
    """Return source -> (job, origin) of every imported job installed on this host."""
    in_cron = _cron_jobs(paths.cron_file)
    found: dict[str, list[tuple[str, Origin]]] = {}
    for name, record in sorted(document["jobs"].items()):
        origins = _job_origins(release, name, record)
        if not origins:
            continue
        if not record.get("installed"):
            status = record.get("status", "not installed")
            plan.notes.append(f"job {name}: {status}; its original line is left alone")
            continue
        if name not in in_cron:
            plan.refusals.append(
                f"job {name} is installed in the release but not in {paths.cron_file}: "
                "run `cronsync sync` (drift?) and try again"
            )
            continue
        plan.jobs += 1
        for origin in origins:
            found.setdefault(origin.source, []).append((name, origin))
    return found


def _locate(lines: list[bytes], origin: Origin) -> tuple[Optional[int], Optional[int]]:
    """Return (index to retire, index already retired) of an origin in a file's lines."""
    index = origin.line - 1
    if index < len(lines):
        if line_digest(lines[index]) == origin.sha256:
            return index, None
        if lines[index].startswith(ADOPTED) and (
            line_digest(lines[index][len(ADOPTED) :]) == origin.sha256
        ):
            return None, index
    same = [i for i, line in enumerate(lines) if line_digest(line) == origin.sha256]
    done = [
        i
        for i, line in enumerate(lines)
        if line.startswith(ADOPTED) and line_digest(line[len(ADOPTED) :]) == origin.sha256
    ]
    if len(same) == 1:
        return same[0], None
    if not same and len(done) == 1:
        return None, done[0]
    return None, None


def _plan_file(plan: AdoptPlan, root: Path, source: str, items: list[tuple[str, Origin]]) -> None:
    path = root / source.lstrip("/")
    try:
        if stat.S_ISLNK(path.lstat().st_mode):
            plan.refusals.append(f"{source} is a symlink: comment its lines out by hand")
            return
        before = path.read_bytes()
    except OSError as exc:
        plan.refusals.append(f"cannot read {source}: {exc.strerror or exc}")
        return
    lines = before.split(b"\n")
    retire: dict[int, Retirement] = {}
    for job, origin in items:
        index, done = _locate(lines, origin)
        if index is not None:
            retire[index] = Retirement(job, origin, index + 1, _masked(lines[index]))
        elif done is not None:
            text = _masked(lines[done][len(ADOPTED) :])
            plan.already.append(Retirement(job, origin, done + 1, text))
        else:
            plan.refusals.append(
                f"{source}:{origin.line} changed since the import (job {job}): re-import "
                "it, or comment the old line out by hand once the job is right"
            )
    if retire:
        after = b"\n".join(ADOPTED + line if i in retire else line for i, line in enumerate(lines))
        ordered = [retire[i] for i in sorted(retire)]
        plan.changes.append(FileChange(source, path, before, after, ordered))


def plan_adopt(paths: Paths, sources: Optional[set[str]] = None) -> AdoptPlan:
    """Work out which original lines to retire.

    Args:
        paths: the host's paths (root, cron file, installed release).
        sources: host paths to limit adopt to; None for every imported source.
    Returns:
        the plan; ``refusals`` non-empty means nothing may be changed.
    Raises:
        AdoptRefused: nothing is installed.
    """
    release, document = _load_release(paths)
    commit = str(document.get("commit", "?"))
    plan = AdoptPlan(commit, release.name)
    by_source = installed_origins(paths, plan, release, document)
    if sources is not None:
        for source in sorted(sources - set(by_source)):
            plan.refusals.append(
                f"the installed commit {commit[:12]} has no job imported from {source}: "
                "push and sync the imported jobs first"
            )
        by_source = {s: items for s, items in by_source.items() if s in sources}
    elif not by_source and not plan.refusals:
        plan.refusals.append(
            f"the installed commit {commit[:12]} has no job made by `cronsync import`: "
            "push the imported repository and sync first"
        )
    for source, items in sorted(by_source.items()):
        _plan_file(plan, paths.root, source, items)
    return plan


def _private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each mode 0700 (backups hold secrets)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)
        path.chmod(0o700)


def _backup_dir(root: Path, now: datetime) -> Path:
    base = root / BACKUPS
    _private_dirs(base)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    folder, number = base / stamp, 1
    while folder.exists():
        number += 1
        folder = base / f"{stamp}-{number}"
    _private_dirs(folder)
    return folder


def _owner(info: os.stat_result) -> Optional[tuple[int, int]]:
    return (info.st_uid, info.st_gid) if os.geteuid() == 0 else None


def apply_adopt(
    plan: AdoptPlan, root: Path, now: datetime
) -> tuple[Optional[Path], list[tuple[Path, Path]]]:
    """Back up and rewrite every file of the plan.

    Returns:
        the backup folder (None when there was nothing to change) and (backup,
        original) of each file, for the restore commands.
    Raises:
        AdoptRefused: the plan has refusals, or a file changed since it was read
            (nothing is written then).
        InstallError: a file could not be written.
    """
    if plan.refusals:
        raise AdoptRefused("refusing to change anything: " + "; ".join(plan.refusals))
    for change in plan.changes:
        if change.path.read_bytes() != change.before:
            raise AdoptRefused(f"{change.source} changed while adopt ran: run it again")
    if not plan.changes:
        return None, []
    folder = _backup_dir(root, now)
    restores = []
    for change in plan.changes:
        info = change.path.stat()
        backup = folder / change.source.lstrip("/")
        _private_dirs(backup.parent)
        atomic_write(backup, change.before, mode=stat.S_IMODE(info.st_mode), owner=_owner(info))
        os.utime(backup, ns=(info.st_atime_ns, info.st_mtime_ns))
        restores.append((backup, change.path))
    for change in plan.changes:
        info = change.path.stat()
        mode = stat.S_IMODE(info.st_mode)
        atomic_write(change.path, change.after, mode=mode, owner=_owner(info))
    # cron sees a new /etc/crontab by the file's own time, the others by their folder's
    listed = {change.path.parent for change in plan.changes if change.source != "/etc/crontab"}
    for folder_read_by_cron in sorted(listed):
        make_cron_notice(folder_read_by_cron)
    return folder, restores
