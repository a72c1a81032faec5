"""``cronsync import``: read crontabs, plan the jobs, store the secrets, write the repository.

The adapter around the pure planner (``importplan``): it reads the crontabs (the host's
below a root, or files given), the users' home directories and, for
``--copy-scripts``, the scripts; it stores the secrets (``movesecrets``: a 0600 TOML
file outside the repository, or Secrets Manager) and writes ``cronsync.toml``,
``jobs/NAME.toml``, ``scripts/`` and ``MIGRATION.md``.

Everything that can refuse is checked before anything is written: a missing or
unreadable SOURCE (or no crontab for ``--user``), a non-empty ``REPO/jobs``, a
``cronsync.toml`` of another content, a secrets file inside the repository or readable
by others, a secret name that already holds another value (in the secrets file or in
Secrets Manager: another import's secret is never overwritten). The secrets are stored
first, so a failure there leaves the repository untouched and a re-run is safe (a
secret that already holds the same value is left as it is).
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union
from zoneinfo import ZoneInfo

from cronsync.core.errors import InstallError, UsageError
from cronsync.crontab.evidence import Evidence
from cronsync.crontab.hostfiles import (
    SPOOL,
    host_users,
    read_crontab_file,
    read_host_crontabs,
    user_lookup,
)
from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_files
from cronsync.crontab.printable import LineScans
from cronsync.files.atomic import atomic_write
from cronsync.files.tree import remove_tree
from cronsync.host.awsclients import AwsSettings
from cronsync.migrate.cronlogs import JournalReader
from cronsync.migrate.importmodel import ImportOptions, ImportPlan, ScriptFile, ScriptReader
from cronsync.migrate.importplan import plan_import
from cronsync.migrate.jobwriter import render_job, render_repo_config
from cronsync.migrate.lifecheck import gather_evidence
from cronsync.migrate.movesecrets import create_aws_secrets, write_secrets_files
from cronsync.migrate.report import LifeReport, render_migration

DEFAULT_SECRETS_FILE = "cronsync-import-secrets.toml"
MAX_SCRIPT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ImportRequest:
    """What to import and where.

    Attributes:
        into: the repository directory to write.
        sources: crontab files given on the command line; empty reads the host's.
        system: the ``sources`` are system crontabs (a user field); without sources,
            import only the host's system crontabs.
        user: the ``sources`` are this user's crontab; without sources, import only
            this user's crontab on the host (none is a usage error).
        root: the host root (the host's crontabs, ``etc/passwd``, scripts).
        timezone: the host's zone.
        options: ``--copy-scripts``, ``--include-commented``, ``--secret-prefix``.
        secrets_file: where the values go (``{user}`` makes one file per user); None
            is ``./cronsync-import-secrets.toml``.
        create_secrets: store them in Secrets Manager instead.
        aws: how to reach AWS.
        skip_sources: host paths never imported (cronsync's own cron file).
        now: the time for the inventory (next runs); default the clock.
        evidence: judge each entry's evidence of life for MIGRATION.md (the host's
            crontabs only: the cron log is this host's, not that of SOURCES).
        journal: the journal seam for the evidence (None: the log files only).
    """

    into: Path
    sources: tuple[Path, ...] = ()
    system: bool = False
    user: Optional[str] = None
    root: Path = Path("/")
    timezone: str = "UTC"
    options: ImportOptions = field(default_factory=ImportOptions)
    secrets_file: Optional[Path] = None
    create_secrets: bool = False
    aws: AwsSettings = field(default_factory=AwsSettings)
    skip_sources: frozenset[str] = frozenset()
    now: Optional[datetime] = None
    evidence: bool = True
    journal: Optional[JournalReader] = None


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the plan, the files written (relative to the repository),
    where the secrets went (``file:PATH``, ``aws:PREFIX`` or None) and the evidence of
    life of the entries (None for SOURCES)."""

    plan: ImportPlan
    written: tuple[str, ...]
    destination: Optional[str]
    evidence: Optional[Evidence] = None


# --- reading --------------------------------------------------------------------------


def host_path(path: Path, root: Path) -> str:
    """Return how cron on the host names ``path`` (``/etc/cron.d/x`` for ``ROOT/etc/cron.d/x``)."""
    absolute = Path(os.path.abspath(path))
    try:
        return "/" + absolute.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return absolute.as_posix()


def _kind_of(path: str, request: ImportRequest) -> tuple[bool, Optional[str]]:
    """Return (system, user) of a crontab given on the command line."""
    if request.system or request.user:
        return request.system, request.user
    parent = Path(path).parent.name
    if path.endswith("/etc/crontab") or parent == "cron.d":
        return True, None
    if parent == "crontabs":
        return False, Path(path).name
    raise UsageError(
        f"{path}: is it a system crontab (--system) or whose crontab is it (--user USER)?"
    )


def read_sources(request: ImportRequest) -> list[CrontabFile]:
    """Read the crontabs to import, sources named as host paths.

    Without ``request.sources``: the host's crontabs below ``request.root`` (a file
    absent there is simply not imported); with ``--user USER`` only USER's crontab,
    with ``--system`` only the system ones.

    Raises:
        UsageError: a SOURCE cannot be read (``SOURCE: No such file or directory``),
            its kind is unknown, or ``--user USER`` has no crontab on the host (nothing
            is written).
    """
    if not request.sources:
        files = read_host_crontabs(request.root)
        if request.user is not None:
            files = _user_crontab(files, request.user, request.root)
        elif request.system:
            files = [f for f in files if f.system]
    else:
        files = []
        for path in request.sources:
            shown = host_path(path, request.root)
            system, user = _kind_of(shown, request)
            crontab = read_crontab_file(path, user, system)
            if crontab.text is None:
                raise UsageError(f"{path}: {_unreadable(crontab)}")
            files.append(replace(crontab, source=shown))
    return [f for f in files if f.source not in request.skip_sources]


def _unreadable(crontab: CrontabFile) -> str:
    """Why a crontab could not be read (``No such file or directory``)."""
    reason = crontab.problems[-1] if crontab.problems else "cannot read it"
    prefix = "cannot read: "
    return reason[len(prefix) :] if reason.startswith(prefix) else reason


def _user_crontab(files: list[CrontabFile], user: str, root: Path) -> list[CrontabFile]:
    """Return USER's crontab among the host's ``files``.

    Raises:
        UsageError: there is none, the spool cannot be listed or the file not read.
    """
    spool = root / SPOOL
    mine = [f for f in files if f.source == f"/{SPOOL}/{user}"]
    if not mine:
        unlisted = [f for f in files if f.source == f"/{SPOOL}" and f.text is None]
        if unlisted:
            raise UsageError(f"{spool}: {_unreadable(unlisted[0])}")
        raise UsageError(f"no crontab for user {user} in {spool}")
    if mine[0].text is None:
        raise UsageError(f"{spool / user}: {_unreadable(mine[0])}")
    return mine


def home_directories(root: Path) -> dict[str, str]:
    """Return user -> home directory from ``ROOT/etc/passwd`` (the user database for /)."""
    if root == Path("/"):
        return {entry.pw_name: entry.pw_dir for entry in pwd.getpwall()}
    try:
        text = (root / "etc/passwd").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    homes: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[5].startswith("/"):
            homes.setdefault(parts[0], parts[5])
    return homes


def script_reader(root: Path, uids: Optional[Mapping[str, int]]) -> ScriptReader:
    """Return a reader of host scripts for ``--copy-scripts`` (copies only scripts:
    a regular file up to 10 MiB starting with ``#!``).

    A crontab names a script for its job's user, and ``import`` runs as root: a script is
    copied only when that user could read it (the file, and every folder on its real
    path), so a user's crontab cannot copy root's files into the repository. ``uids``:
    name -> uid of the host's users (None or a missing name: only what every user may
    read). Root's entries copy anything below ``root``.
    """

    def read(program: str, user: str) -> Union[ScriptFile, str]:
        path = root / program.lstrip("/")
        uid = 0 if user == "root" else (uids or {}).get(user)
        try:
            real = path.resolve(strict=True)
            blocked = _unreadable_for(real, root.resolve(), uid)
            if blocked:
                return blocked
            info = real.stat()
            if not stat.S_ISREG(info.st_mode):
                return "not a regular file"
            if info.st_size > MAX_SCRIPT_BYTES:
                return "larger than 10 MiB"
            data = real.read_bytes()
        except OSError as exc:
            return f"cannot read it here ({exc.strerror or exc})"
        if not data.startswith(b"#!"):
            return "not a script (no #! line): a program does not belong in the repository"
        return ScriptFile(program, data, stat.S_IMODE(info.st_mode) & 0o755 | 0o644)

    return read


def _unreadable_for(real: Path, root: Path, uid: Optional[int]) -> Optional[str]:
    """Why the user ``uid`` (None: an unknown user) could not read ``real``, or None.

    Raises:
        OSError: a folder or the file cannot be looked at.
    """
    if real != root and root not in real.parents:
        return "its real path leads out of the host root"
    if uid == 0:
        return None
    who = "its user" if uid is not None else "every user"
    for folder in [*reversed(real.relative_to(root).parents), real.relative_to(root)]:
        where = root / folder
        info = where.stat()
        want = (stat.S_IXUSR, stat.S_IXOTH) if where != real else (stat.S_IRUSR, stat.S_IROTH)
        mine = uid is not None and info.st_uid == uid and info.st_mode & want[0]
        if not (mine or info.st_mode & want[1]):
            kind = "folder" if where != real else "file"
            return (
                f"{who} cannot read it ({kind} {'/' + str(folder).lstrip('.') or '/'} is "
                f"mode {stat.S_IMODE(info.st_mode):04o}, owner uid {info.st_uid}): "
                "copy it by hand if it belongs in the repository"
            )
    return None


# --- checks ---------------------------------------------------------------------------


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_target(request: ImportRequest) -> None:
    """Refuse a repository that has jobs already, or a secrets file inside it.

    Raises:
        UsageError: what is wrong and what to do.
    """
    into = request.into
    if into.exists() and not into.is_dir():
        raise UsageError(f"--into {into}: not a directory")
    jobs = into / "jobs"
    if jobs.is_symlink() or (jobs.exists() and (not jobs.is_dir() or any(jobs.iterdir()))):
        raise UsageError(
            f"{jobs} is not empty: import into a new or empty directory "
            "(an import never overwrites jobs)"
        )
    if not request.create_secrets and _inside(secrets_path(request), into):
        raise UsageError(
            f"the secrets file {secrets_path(request)} would be inside the repository "
            f"{into}: pass --secrets-file PATH outside it (or --create-secrets)"
        )


def secrets_path(request: ImportRequest) -> Path:
    """Return the secrets file (template) the request writes."""
    return request.secrets_file or Path.cwd() / DEFAULT_SECRETS_FILE


# --- writing --------------------------------------------------------------------------


def _write(root: Path, relative: str, data: bytes, mode: int = 0o644) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, mode=mode, durable=False)
    return relative


def _write_new(path: Path, data: bytes, exact: Optional[bool] = None) -> bool:
    """Create a file that cannot exist yet (in a fresh staging folder), mode 0644.

    Args:
        exact: whether the umask leaves a file created here 0644 as asked (None: not
            known yet, so this file is looked at). A ``fchmod`` costs as much as the
            rest of a small file's creation: thousands of job files skip it when the
            umask makes it a no-op.
    Returns:
        ``exact``, as known now (pass it to the next call).
    Raises:
        OSError: from any step.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o644)
    try:
        if exact is None:
            exact = stat.S_IMODE(os.fstat(fd).st_mode) == 0o644
        if not exact:
            os.fchmod(fd, 0o644)
        os.write(fd, data)
    finally:
        os.close(fd)
    return exact


def _write_jobs(into: Path, plan: ImportPlan) -> list[str]:
    """Write every job file into a staging folder renamed to ``jobs/`` at the end, so
    ``jobs/`` appears complete or not at all (and thousands of files stay fast)."""
    jobs = into / "jobs"
    staging = into / f".jobs.tmp-{os.getpid()}"
    remove_tree(staging)
    staging.mkdir(mode=0o755)
    try:
        exact: Optional[bool] = None
        for job in plan.jobs:
            path = staging / f"{job.model.name}.toml"
            exact = _write_new(path, render_job(job.model).encode(), exact)
        if jobs.is_dir():
            jobs.rmdir()  # empty: checked before anything was written
        os.rename(staging, jobs)
    except OSError as exc:
        remove_tree(staging)
        raise InstallError(f"cannot write {jobs}: {exc.strerror or exc}") from exc
    return [f"jobs/{job.model.name}.toml" for job in plan.jobs]


def check_files(request: ImportRequest, plan: ImportPlan) -> None:
    """Refuse to replace a ``cronsync.toml`` or a script of other content.

    Raises:
        UsageError: the repository holds such a file.
    """
    into = request.into
    wanted = {"cronsync.toml": render_repo_config(plan.timezone, plan.sources).encode()}
    wanted.update({relative: script.data for relative, script in plan.scripts.items()})
    for relative, data in wanted.items():
        target = into / relative
        if target.is_symlink() or (target.exists() and target.read_bytes() != data):
            raise UsageError(f"{target} exists: import into a new or empty directory")


def write_repository(
    request: ImportRequest,
    plan: ImportPlan,
    destination: Optional[str],
    evidence: Optional[LifeReport] = None,
) -> list[str]:
    """Write the repository (after :func:`check_files`); return the files written."""
    into = request.into
    config = render_repo_config(plan.timezone, plan.sources).encode()
    into.mkdir(parents=True, exist_ok=True)
    written = [_write(into, "cronsync.toml", config)]
    written += _write_jobs(into, plan)
    for relative, script in sorted(plan.scripts.items()):
        written.append(_write(into, relative, script.data, script.mode))
    migration = render_migration(plan, destination, evidence).encode()
    written.append(_write(into, "MIGRATION.md", migration))
    return written


def run_import(request: ImportRequest) -> ImportResult:
    """Import crontabs into a new job repository.

    Returns:
        what was done (see :class:`ImportResult`).
    Raises:
        UsageError: the target or a source cannot be used (nothing written).
        SecretsNotStored: the secrets could not be stored, or a secret name already
            holds another value (nothing written).
        InstallError: a file could not be written.
    """
    check_target(request)
    files = read_sources(request)
    users = user_lookup(request.root)
    now = request.now or datetime.now(timezone.utc)
    # The host's crontabs as its cron reads them; SOURCES may come from another host:
    # their jobs are imported, and a user this host lacks is left for a person.
    checked = users if not request.sources else None
    facts = HostFacts(now, ZoneInfo(request.timezone), checked, details=False)
    homes = home_directories(request.root)
    reader = (
        script_reader(request.root, host_users(request.root))
        if request.options.copy_scripts
        else None
    )
    scans: LineScans = {}
    pairs = list(zip(files, inventory_files(files, facts, scans)))
    plan = plan_import(pairs, request.timezone, request.options, homes.get, reader, users, scans)
    scans.clear()  # values: no longer needed
    check_files(request, plan)
    life = None
    if request.evidence and not request.sources:
        evidence, logs = gather_evidence(
            request.root, [r for _f, r in pairs], facts, request.journal
        )
        life = LifeReport(evidence, tuple(logs.notes))
    destination = None
    if plan.secrets and request.create_secrets:
        create_aws_secrets(plan.secrets, request.aws)
        destination = f"aws:{request.options.secret_prefix}"
    elif plan.secrets:
        template = secrets_path(request)
        write_secrets_files(template, plan.secrets)
        destination = f"file:{template}"
    written = write_repository(request, plan, destination, life)
    return ImportResult(plan, tuple(written), destination, life.evidence if life else None)
