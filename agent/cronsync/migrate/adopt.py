"""``cronsync adopt``: after a sync installed imported jobs, retire the lines they replace.

Every job file written by ``cronsync import`` names the crontab lines it replaces
(``# cronsync-import: source=... line=... sha256=...``, see ``jobwriter``). Adopt reads
them from the *installed* release (``current/repo/jobs``), never from a working tree,
so a line is retired only when the job that replaces it is really installed:

* jobs that are in the release's jobs.json as installed, and in the cron file;
* only crontabs cron reads, reached without a symlink (``adoptfiles``): the origins
  come from job files, which anyone who can push writes, so an origin naming any
  other file (``/etc/passwd``, ``/etc/cron.d/../x``) is refused, with its job file;
* the line still has the digest it had at import time (found at its line number,
  or as the only such line of the file if lines were added above it); a changed line
  is refused, and a refusal anywhere changes nothing anywhere;
* a retired line is commented out, secrets masked, tagged with its job and origin
  (``adoptmark``; cron then ignores it, and adopt run again finds it already done);
  a secret setting no remaining line uses is commented out masked as well, and a line
  an older cronsync adopted with its secrets in clear is rewritten masked.

With ``apply`` each file is first copied into a root-only backup folder
(``adoptbackup``: ``ROOT/var/lib/cronsync/adopt-backups/TIMESTAMP/<host path>``, files
0600, folders 0700), then rewritten atomically with its owner and mode; the backup and
the original of each file are returned, for the restore commands. Debian's cron picks
up a rewritten ``/etc/crontab``, ``/etc/cron.d`` file or spool file at the next minute.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from cronsync.core.errors import CronsyncError
from cronsync.core.release import RELEASE_REPO
from cronsync.core.textshow import visible
from cronsync.host.config import Paths
from cronsync.host.install import make_cron_notice
from cronsync.migrate import adoptbackup, adoptfiles, adoptmark
from cronsync.migrate.adoptmark import ADOPTED
from cronsync.migrate.jobwriter import Origin, parse_origins

__all__ = [
    "ADOPTED",
    "AdoptPlan",
    "AdoptRefused",
    "FileChange",
    "Retirement",
    "apply_adopt",
    "installed_origins",
    "plan_adopt",
]


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
    """One crontab to rewrite: its host path, real path, bytes before and after, the
    lines it retires, the (1-based line, masked text) of the secret settings it comments
    out, and the lines adopted before whose secrets it masks."""

    source: str
    path: Path
    before: bytes = field(repr=False)
    after: bytes = field(repr=False)
    retire: list[Retirement] = field(default_factory=list)
    settings: list[tuple[int, str]] = field(default_factory=list)
    remask: list[Retirement] = field(default_factory=list)


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


def _foreign_sources(
    plan: AdoptPlan, document: dict[str, Any], by_source: dict[str, list[tuple[str, Origin]]]
) -> None:
    """Refuse every origin that names no crontab adopt changes (one line per job file
    and source) and drop those sources."""
    for source in sorted(by_source):
        if adoptfiles.source_problem(source) is None:
            continue
        for job in sorted({job for job, _origin in by_source.pop(source)}):
            file = visible(str(document["jobs"][job].get("file")))
            plan.refusals.append(
                f"job file {file} names {visible(source)} as its crontab: {adoptfiles.WHICH}"
            )


def _plan_file(plan: AdoptPlan, root: Path, source: str, items: list[tuple[str, Origin]]) -> None:
    path = root / source.lstrip("/")  # a crontab cron reads (adoptfiles.source_problem)
    try:
        before, _info = adoptfiles.read_crontab(root, source)
    except adoptfiles.CrontabRefused as exc:
        plan.refusals.append(exc.message)
        return
    except OSError as exc:
        plan.refusals.append(f"cannot read {source}: {exc.strerror or exc}")
        return
    lines = before.split(b"\n")
    retire: dict[int, Retirement] = {}
    remask: dict[int, Retirement] = {}
    for job, origin in items:
        index, done = adoptmark.locate(lines, job, origin)
        if index is not None:
            retire[index] = Retirement(job, origin, index + 1, adoptmark.shown(lines[index]))
        elif done is not None:
            text = adoptmark.adopted_text(lines[done]) or b""
            retirement = Retirement(job, origin, done + 1, adoptmark.shown(text))
            plan.already.append(retirement)
            if adoptmark.holds_a_secret(lines[done]):
                remask[done] = retirement
        else:
            plan.refusals.append(
                f"{source}:{origin.line} changed since the import (job {job}): re-import "
                "it, or comment the old line out by hand once the job is right"
            )
    settings = adoptmark.unused_secret_settings(lines, set(retire))
    if retire or remask or settings:
        after = _rewritten(lines, retire, remask, set(settings))
        change = FileChange(source, path, before, after, [retire[i] for i in sorted(retire)])
        change.settings = [(i + 1, adoptmark.shown(lines[i])) for i in settings]
        change.remask = [remask[i] for i in sorted(remask)]
        plan.changes.append(change)


def _rewritten(
    lines: list[bytes],
    retire: dict[int, Retirement],
    remask: dict[int, Retirement],
    settings: set[int],
) -> bytes:
    """Return a crontab's new bytes: retired lines, adopted lines rewritten masked and
    unused secret settings commented out."""
    new = list(lines)
    for index, which in [*retire.items(), *remask.items()]:
        new[index] = adoptmark.retired_line(lines[index], which.job, which.origin)
    for index in settings:
        new[index] = adoptmark.retired_setting(lines[index])
    return b"\n".join(new)


def _backup_refusal(root: Path) -> tuple[Optional[str], Optional[str]]:
    """Return (why no backup may go into the backup folder, a note that adopt tightens
    it), each None when there is nothing to say."""
    problem, note = adoptbackup.backup_folder_problem(root)
    if problem is None:
        return None, note
    return (
        f"the backup folder {adoptbackup.backup_base(root)} {problem}: remove it "
        "(backups hold the original lines, secrets and all: adopt keeps them only in "
        "a private folder of its own)"
    ), note


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
    _foreign_sources(plan, document, by_source)
    for source, items in sorted(by_source.items()):
        _plan_file(plan, paths.root, source, items)
    if plan.changes:
        refusal, note = _backup_refusal(paths.root)
        plan.refusals += [refusal] if refusal else []
        plan.notes += [note] if note else []
    return plan


def _read_unchanged(root: Path, change: FileChange) -> os.stat_result:
    """Read a crontab of the plan again (no symlink on the way) and return its stat.

    Raises:
        AdoptRefused: it changed since the plan, became a symlink or cannot be read.
    """
    try:
        data, info = adoptfiles.read_crontab(root, change.source)
    except adoptfiles.CrontabRefused as exc:
        raise AdoptRefused(f"refusing to change anything: {exc.message}") from exc
    except OSError as exc:
        raise AdoptRefused(f"cannot read {change.source}: {exc.strerror or exc}") from exc
    if data != change.before:
        raise AdoptRefused(f"{change.source} changed while adopt ran: run it again")
    return info


def apply_adopt(
    plan: AdoptPlan, root: Path, now: datetime
) -> tuple[Optional[Path], list[tuple[Path, Path]]]:
    """Back up and rewrite every file of the plan.

    Returns:
        the backup folder (None when there was nothing to change) and (backup,
        original) of each file, for the restore commands.
    Raises:
        AdoptRefused: the plan has refusals, a file changed since it was read or is
            now reached through a symlink, or the backup folder is not a private folder
            of adopt's (nothing is written then).
        InstallError: a file could not be written.
    """
    if plan.refusals:
        raise AdoptRefused("refusing to change anything: " + "; ".join(plan.refusals))
    infos = [_read_unchanged(root, change) for change in plan.changes]
    if not plan.changes:
        return None, []
    refusal, _note = _backup_refusal(root)
    if refusal is not None:
        raise AdoptRefused("refusing to change anything: " + refusal)
    try:
        folder = adoptbackup.make_backup_folder(root, now)
    except adoptbackup.BackupFolderRefused as exc:
        raise AdoptRefused(exc.message) from exc
    restores = []
    for change, info in zip(plan.changes, infos):
        backup = adoptbackup.write_backup(folder, change.source, change.before, info)
        restores.append((backup, change.path))
    for change in plan.changes:
        try:
            adoptfiles.replace_crontab(root, change.source, change.after, os.geteuid() == 0)
        except adoptfiles.CrontabRefused as exc:  # a symlink put there since the check
            done = f"the files before it are changed already, backups in {folder}"
            raise AdoptRefused(f"{exc.message} ({done})") from exc
    # cron sees a new /etc/crontab by the file's own time, the others by their folder's
    listed = {change.path.parent for change in plan.changes if change.source != "/etc/crontab"}
    for folder_read_by_cron in sorted(listed):
        make_cron_notice(folder_read_by_cron)
    return folder, restores
