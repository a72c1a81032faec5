"""One sync cycle: lock -> fetch -> export -> validate -> render -> install -> record.

Any failure before the install leaves the last-known-good installed and is recorded
with every error. A cycle with nothing new upstream and an intact install writes
nothing but the state file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from cronsync.core.drift import RELEASE, DriftFinding, find_drift, with_recorded_release_drift
from cronsync.core.errors import EXIT_PROBLEMS, CronsyncError, InstallError, SourceError
from cronsync.core.release import RELEASE_REPO
from cronsync.core.render import SourceInfo
from cronsync.core.state import (
    FAILED,
    INSTALLED,
    REFUSED,
    UNCHANGED,
    AgentState,
    Installed,
    SyncRecord,
)
from cronsync.core.urls import redact_url
from cronsync.files.durable import TreeFlush
from cronsync.files.lock import ExclusiveLock
from cronsync.files.tree import remove_tree
from cronsync.host.build import Build, build_tree, config_digest
from cronsync.host.checkcache import load_cache, save_cache
from cronsync.host.config import AgentConfig
from cronsync.host.install import (
    finish_release,
    make_dir,
    new_staging_dir,
    observe,
    prune_releases,
    release_digest,
    restore_release,
    retire_cron_file,
    switch_current,
    write_cron_file,
)
from cronsync.host.jobdirs import ensure_job_dirs
from cronsync.host.statefile import load_state, save_state
from cronsync.repo import gitexport, gitsource, signature

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """Format a moment as ISO 8601 with seconds."""
    return moment.isoformat(timespec="seconds")


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync did, for the CLI and the agent loop."""

    record: SyncRecord
    drift: tuple[DriftFinding, ...] = ()
    exit_code: int = 0


class _Cycle:
    """The state of one running cycle (kept small: one object per sync)."""

    def __init__(self, config: AgentConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.started = clock()
        self.state: AgentState = load_state(config.paths.state_file)
        self.digest = config_digest(config)
        self.notes: list[str] = []
        self.commit: Optional[str] = None  # the fetched tip, once known

    def finish(
        self, result: str, commit: Optional[str], message: str, build: Optional[Build] = None
    ) -> SyncRecord:
        errors = tuple(p.as_dict() for p in build.errors) if build else ()
        warnings = tuple(p.as_dict() for p in build.warnings) if build else ()
        record = SyncRecord(
            iso(self.started),
            iso(self.clock()),
            result,
            commit,
            message,
            errors,
            warnings,
            tuple(self.notes),
        )
        self.state.record(record)
        save_state(self.config.paths.state_file, self.state)
        return record


def _source_info(config: AgentConfig, commit: str) -> SourceInfo:
    return SourceInfo(redact_url(config.repo_url), config.branch, commit)


def _export(cycle: _Cycle, commit: str, dest: Path) -> None:
    """Export ``commit``; when the checkout turns out corrupt (an object that cannot be
    read), clone afresh once and try again. Any other failure (a full disk, an unsafe
    archive...) is raised as it is: a clone would not help."""
    config = cycle.config
    try:
        gitexport.export_commit(config.paths.checkout, commit, dest)
        return
    except gitexport.DamagedCheckoutError as exc:
        cycle.notes.append(f"export failed ({exc.message}); cloned afresh")
    remove_tree(config.paths.checkout)
    fetched = gitsource.fetch_branch(
        config.repo_url, config.branch, config.paths.checkout, timeout=config.git_timeout_seconds
    )
    if fetched.commit != commit:
        raise SourceError(
            f"branch {config.branch} moved to {fetched.commit[:12]} while "
            f"exporting {commit[:12]}; the next sync installs it"
        )
    gitexport.export_commit(config.paths.checkout, commit, dest)


def _job_users(build: Build) -> dict[str, str]:
    """Return job -> user of every job the build installs."""
    jobs = build.jobs_doc["jobs"]
    return {name: str(job["user"]) for name, job in jobs.items() if job["installed"]}


def _listing(cycle: _Cycle, commit: str) -> Optional[dict[str, str]]:
    """git's listing of ``commit`` (the keys of the check cache); None when git cannot
    give it: the build then checks everything."""
    try:
        return gitexport.list_commit(
            cycle.config.paths.checkout, commit, timeout=cycle.config.git_timeout_seconds
        )
    except SourceError as exc:
        cycle.notes.append(f"checked every job file: {exc.message}")
        return None


def _build(cycle: _Cycle, commit: str, tree: Path, reuse: bool) -> Build:
    """Build ``tree`` (the export of ``commit``), reusing (with ``reuse``) what the
    installed release's check cache still holds for."""
    installed = cycle.state.installed
    releases = cycle.config.paths.releases
    cache = load_cache(releases / installed.release) if installed and reuse else None
    source = _source_info(cycle.config, commit)
    build = build_tree(
        cycle.config, tree, source, cycle.started, listing=_listing(cycle, commit), cache=cache
    )
    if build.reused and installed is not None:
        cycle.notes.append(
            f"reused the checks of {build.reused} of {build.files} job files "
            f"(cache of release {installed.release})"
        )
    return build


def _stage(cycle: _Cycle, commit: str, staging: Path, reuse: bool) -> Build:
    """Export ``commit`` into ``staging``, build it and, when it is clean, save its
    check cache there and prepare the job folders; return the build."""
    paths = cycle.config.paths
    _export(cycle, commit, staging / RELEASE_REPO)
    build = _build(cycle, commit, staging / RELEASE_REPO, reuse)
    if build.ok:
        if build.checks is not None:
            save_cache(staging, build.checks)
        cycle.notes += ensure_job_dirs(paths.runs_dir, paths.log_dir, _job_users(build))
    return build


def _install(cycle: _Cycle, commit: str, reuse: bool) -> tuple[str, Optional[Build]]:
    """Export, validate and (when clean) install ``commit``; return (result, build).
    ``reuse``: take what still holds from the installed release's check cache (not for
    ``--force`` nor for a damaged release, which are built whole)."""
    paths = cycle.config.paths
    staging = new_staging_dir(paths, commit)
    try:
        # opened while the staging folder is empty: see cronsync.files.durable
        with TreeFlush(staging) as flush:
            build = _stage(cycle, commit, staging, reuse)
            if not build.ok:
                remove_tree(staging)
                return REFUSED, build
            release = finish_release(
                paths, staging, commit, build.jobs_json, build.cron_text, flush
            )
    except BaseException:
        remove_tree(staging)
        raise
    previous = cycle.state.installed
    switch_current(paths, release)
    try:
        cron_sha = write_cron_file(paths.cron_file, build.cron_text)
    except InstallError:
        # Keep the shim and the old cron file consistent: back to the previous release,
        # or no `current` at all when nothing was installed before.
        if previous is not None:
            switch_current(paths, previous.release)
        else:
            paths.current.unlink(missing_ok=True)
        raise
    cycle.state.installed = Installed(
        commit,
        release,
        iso(cycle.clock()),
        cron_sha,
        cycle.digest,
        str(paths.cron_file),
        release_digest(paths.releases / release),
    )
    cycle.state.drift = []
    if (
        previous
        and previous.cron_file
        and Path(previous.cron_file) != paths.cron_file
        and retire_cron_file(Path(previous.cron_file))
    ):
        cycle.notes.append(f"removed the previous cron file {previous.cron_file}")
    prune_releases(paths, cycle.config.keep_releases, release)
    return INSTALLED, build


def _note_history(cycle: _Cycle, fetched: gitsource.FetchResult) -> None:
    installed = cycle.state.installed
    if fetched.recloned and cycle.state.history:  # not worth a note on the first sync
        cycle.notes.append("the checkout was missing or broken and was cloned afresh")
    if (
        installed
        and installed.commit != fetched.commit
        and not gitsource.is_ancestor(cycle.config.paths.checkout, installed.commit, fetched.commit)
    ):
        cycle.notes.append(
            f"branch {cycle.config.branch} was rewritten (force-push): "
            f"installed {installed.commit[:12]} is not an ancestor of "
            f"{fetched.commit[:12]}"
        )


def _handle_drift(cycle: _Cycle, full: bool = False) -> tuple[list[DriftFinding], bool]:
    """Compare the host with the last install; revert it when the policy says so.

    Done before the fetch, so drift is seen (and reverted) even while the remote is
    down or its tip is refused. ``full`` also compares every file of the release.

    Returns:
        The findings, and whether the installed release itself is damaged and must be
        rebuilt from git (a revert can only restore a complete release).
    """
    installed = cycle.state.installed
    if installed is None:
        return [], False
    paths = cycle.config.paths
    cron_file = Path(installed.cron_file) if installed.cron_file else paths.cron_file
    drift = find_drift(installed, observe(paths, cron_file, full))
    if not full:
        drift = with_recorded_release_drift(drift, cycle.state.drift)
    cycle.state.drift = [finding.as_dict() for finding in drift]
    if not drift or cycle.config.drift_policy != "revert":
        return drift, False
    if any(finding.what == RELEASE for finding in drift):
        cycle.notes.append("drift: the installed release is damaged; rebuilding it from git")
        return drift, True
    sha = restore_release(paths, installed.release, cron_file)
    cycle.state.installed = replace(installed, cron_sha256=sha)
    cycle.state.drift = []
    cycle.notes.append("drift reverted: " + "; ".join(f.message for f in drift))
    return drift, False


def _unchanged_message(drift: list[DriftFinding], policy: str) -> str:
    if not drift:
        return "up to date"
    return (
        "up to date; drift reverted"
        if policy == "revert"
        else ("up to date; drift found (policy: report)")
    )


def _signature_refusal(
    cycle: _Cycle, commit: str, installed: bool, note: bool
) -> Optional[SyncRecord]:
    """With ``[repo] require_signed``, check the signature of the tip: the one about to be
    installed, or (``installed``) the one installed, checked again at every sync so that a
    key taken out of the trust set or a newly required signature counts at once. Return
    the recorded refusal, or None to go on (the good signature noted with ``note``).

    Raises:
        ConfigError: the trust set or its program is not usable.
        SourceError: git cannot read the commit.
    """
    trust = cycle.config.signing
    if trust is None:
        return None
    verdict = signature.verify_commit(
        cycle.config.paths.checkout, commit, trust, timeout=cycle.config.git_timeout_seconds
    )
    refusal = signature.verdict_line(commit, verdict, installed)
    if refusal is None:
        if note:
            cycle.notes.append(f"signature: {verdict.reason}")
        return None
    return cycle.finish(REFUSED, commit, refusal)


def _cycle(cycle: _Cycle, force: bool) -> SyncOutcome:
    config = cycle.config
    drift, rebuild = _handle_drift(cycle)
    try:
        fetched = gitsource.fetch_branch(
            config.repo_url,
            config.branch,
            config.paths.checkout,
            timeout=config.git_timeout_seconds,
        )
    except SourceError as exc:
        record = cycle.finish(FAILED, None, exc.message)
        return SyncOutcome(record, tuple(drift), exit_code=exc.exit_code)
    cycle.commit = fetched.commit
    _note_history(cycle, fetched)
    installed = cycle.state.installed
    same = (
        installed is not None
        and installed.commit == fetched.commit
        and installed.config_digest == cycle.digest
    )
    keep = same and not force and not rebuild
    is_installed = installed is not None and installed.commit == fetched.commit
    unsigned = _signature_refusal(cycle, fetched.commit, is_installed, note=not keep)
    if unsigned is not None:
        return SyncOutcome(unsigned, tuple(drift), exit_code=EXIT_PROBLEMS)
    if keep:
        message = _unchanged_message(drift, config.drift_policy)
        return SyncOutcome(cycle.finish(UNCHANGED, fetched.commit, message), tuple(drift))
    result, build = _install(cycle, fetched.commit, reuse=not (force or rebuild))
    assert build is not None
    if result == REFUSED:
        count = len(build.errors)
        message = (
            f"commit {fetched.commit[:12]} refused: {count} problem"
            f"{'s' if count != 1 else ''}; the last-known-good stays installed"
        )
        record = cycle.finish(REFUSED, fetched.commit, message, build)
        return SyncOutcome(record, tuple(drift), exit_code=1)
    message = f"{fetched.commit[:12]} of branch {config.branch}"
    return SyncOutcome(cycle.finish(INSTALLED, fetched.commit, message, build), tuple(drift))


def run_sync(config: AgentConfig, force: bool = False, clock: Clock = utc_now) -> SyncOutcome:
    """Run one sync cycle under the sync lock.

    Args:
        config: the host's agent config.
        force: rebuild and reinstall even when nothing changed.
        clock: source of the current time (tests pass a fixed one).

    Returns:
        The outcome, already recorded in the state file.

    Raises:
        LockBusyError: another sync is running.
        InstallError: the state directory or an install step failed (recorded when the
            state file is still writable).
    """
    paths = config.paths
    make_dir(paths.state_dir, 0o755)
    with ExclusiveLock(paths.sync_lock, "sync"):
        cycle = _Cycle(config, clock)
        try:
            return _cycle(cycle, force)
        except CronsyncError as exc:
            record = cycle.finish(FAILED, cycle.commit, exc.message)
            return SyncOutcome(record, exit_code=exc.exit_code)
        except Exception as exc:
            # Record it, so status and the failure metric show it, then let the CLI
            # report the internal error.
            cycle.finish(FAILED, cycle.commit, f"internal error: {type(exc).__name__}: {exc}")
            raise


@dataclass(frozen=True)
class DriftCheck:
    """What a drift check between syncs found and did.

    Attributes:
        findings: every difference found.
        reverted: the policy is revert and the host was restored from the release.
        rebuild: the release itself is damaged; only a sync can rebuild it from git.
        notes: what happened, for the log.
    """

    findings: tuple[DriftFinding, ...]
    reverted: bool
    rebuild: bool
    notes: tuple[str, ...]


def check_drift(config: AgentConfig, full: bool = False, clock: Clock = utc_now) -> DriftCheck:
    """Compare the host with the last install now (the agent does this when a watched
    file changes, and with ``full`` periodically); revert when the policy says so.

    Raises:
        LockBusyError: a sync is running (it checks drift itself).
        InstallError: the state file or a restored file cannot be written.
    """
    with ExclusiveLock(config.paths.sync_lock, "sync"):
        cycle = _Cycle(config, clock)
        before = (cycle.state.drift, cycle.state.installed)
        drift, rebuild = _handle_drift(cycle, full)
        reverted = bool(drift) and not rebuild and config.drift_policy == "revert"
        if (cycle.state.drift, cycle.state.installed) != before:
            save_state(config.paths.state_file, cycle.state)
        return DriftCheck(tuple(drift), reverted, rebuild, tuple(cycle.notes))
