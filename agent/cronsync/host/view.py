"""Read what is installed on a host, and build what a sync would install (for ``plan``
and ``status``)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from cronsync.core.errors import UsageError
from cronsync.core.release import JOBS_FILE, RELEASE_REPO
from cronsync.core.render import SourceInfo
from cronsync.core.state import AgentState, Installed
from cronsync.core.urls import redact_url
from cronsync.files.lock import ExclusiveLock
from cronsync.files.tree import remove_tree
from cronsync.host.config import AgentConfig
from cronsync.host.install import make_dir, new_staging_dir, read_cron_file

if TYPE_CHECKING:
    from cronsync.host.build import Build

WORKTREE = "working-tree"


PROBLEM = "problem"  # the key of an unusable release's stand-in document (views reads it)


def installed_jobs(config: AgentConfig) -> Optional[dict[str, Any]]:
    """Return the compiled jobs document of the installed release, or None when none is
    installed.

    A release this cronsync cannot use (a newer ``format``, not JSON, no jobs table) is
    not returned as is: its stand-in ``{"format": N, "jobs": {}, "settings": {},
    "problem": WHY}`` has no jobs, and ``problem`` says why (status shows it as a state
    problem). Job entries that are not tables are left out.
    """
    from cronsync.core.release import format_problem

    path = config.paths.current / JOBS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unusable(None, f"cannot read {path}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _unusable(None, f"cannot read {path}: {exc}")
    if not isinstance(data, dict):
        return _unusable(None, f"{path} is not a cronsync jobs file")
    problem = format_problem(data.get("format"), "cronsync")
    if problem:
        return _unusable(data.get("format"), f"{path}: {problem}")
    jobs = data.get("jobs")
    if not isinstance(jobs, dict):
        return _unusable(data.get("format"), f"{path} is not a cronsync jobs file (no jobs)")
    data["jobs"] = {name: job for name, job in jobs.items() if isinstance(job, dict)}
    if not isinstance(data.get("settings", {}), dict):
        data["settings"] = {}
    return data


def release_as_installed(
    config: AgentConfig, jobs_doc: Optional[dict[str, Any]]
) -> Optional[Installed]:
    """What the ``current`` release says was installed, for ``status`` when the state
    file cannot say (unreadable or damaged): the commit from the release's jobs file,
    the release from the link, the time the link was made. None when no usable release
    is installed. The hashes stay empty (unknown)."""
    commit = (jobs_doc or {}).get("commit")
    if not isinstance(commit, str) or not commit:
        return None
    try:
        release = Path(os.readlink(config.paths.current)).name
        made = os.lstat(config.paths.current).st_mtime
    except OSError:
        return None
    at = datetime.fromtimestamp(made, timezone.utc).isoformat(timespec="seconds")
    return Installed(commit, release, at, cron_sha256="", config_digest="")


def _unusable(fmt: Any, problem: str) -> dict[str, Any]:
    return {"format": fmt, "jobs": {}, "settings": {}, PROBLEM: problem}


def installed_cron_text(config: AgentConfig) -> Optional[str]:
    """Return the managed cron file's text, or None when it does not exist."""
    data = read_cron_file(config.paths.cron_file)
    return None if data is None else data.decode("utf-8", "replace")


def build_worktree(config: AgentConfig, tree: Path) -> Build:
    """Build a local directory of job files as this host would install it."""
    from cronsync.host.build import build_tree  # validation machinery: only plan pays for it

    if not tree.is_dir():
        raise UsageError(f"{tree} is not a directory")
    source = SourceInfo(redact_url(config.repo_url), config.branch, WORKTREE)
    return build_tree(config, tree, source, datetime.now(timezone.utc))


def build_remote(config: AgentConfig) -> tuple[str, Build]:
    """Fetch the configured branch and build its tip without installing anything.

    With ``[repo] require_signed`` the tip's signature is checked first, as a sync does:
    a commit a sync would refuse is never exported or built (bash -n, shellcheck and
    the compile of its files run as root).

    Returns:
        The fetched commit and its build.

    Raises:
        UsageError: this user cannot write the state directory (not root).
        LockBusyError: a sync is running (it owns the checkout).
        SourceError: the remote cannot be fetched.
        SignatureRefused: the tip's signature does not verify (the line a sync records).
        ConfigError: the trust set or its program is not usable.
    """
    from cronsync.host.build import build_tree
    from cronsync.repo import (
        gitexport,  # GitPython: only plan pays for it
        gitsource,
        signature,
    )

    paths = config.paths
    if paths.state_dir.is_dir() and not os.access(paths.state_dir, os.W_OK):
        raise UsageError(
            f"plan fetches into {paths.state_dir}, which this user cannot write: run it "
            "as root, or `cronsync plan --repo DIR` on a clone of the jobs repository"
        )
    make_dir(paths.state_dir, 0o755)
    with ExclusiveLock(paths.sync_lock, "sync"):
        fetched = gitsource.fetch_branch(
            config.repo_url, config.branch, paths.checkout, timeout=config.git_timeout_seconds
        )
        signature.refuse_unsigned(
            paths.checkout, fetched.commit, config.signing, timeout=config.git_timeout_seconds
        )
        staging = new_staging_dir(paths, fetched.commit)
        try:
            gitexport.export_commit(paths.checkout, fetched.commit, staging / RELEASE_REPO)
            source = SourceInfo(redact_url(config.repo_url), config.branch, fetched.commit)
            now = datetime.now(timezone.utc)
            return fetched.commit, build_tree(config, staging / RELEASE_REPO, source, now)
        finally:
            remove_tree(staging)


def live_drift(config: AgentConfig, state: AgentState) -> list[dict[str, str]]:
    """Compare the host with the last install now (status must not show a stale
    snapshot): the drift findings as JSON-ready dicts."""
    from cronsync.core.drift import find_drift, with_recorded_release_drift
    from cronsync.host.install import observe

    installed = state.installed
    if installed is None:
        return []
    cron_file = Path(installed.cron_file) if installed.cron_file else config.paths.cron_file
    quick = find_drift(installed, observe(config.paths, cron_file))
    return [f.as_dict() for f in with_recorded_release_drift(quick, state.drift)]


def unmanaged_entries(config: AgentConfig) -> int:
    """Count the cron entries on this host that cronsync does not own (commented-out
    lines left out): the batches nobody registered. ``cronsync inventory`` lists them."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from cronsync.crontab.hostfiles import host_users, read_host_crontabs
    from cronsync.crontab.inventory import HostFacts, inventory_files

    root = config.paths.root
    users = host_users(root)
    try:
        zone = ZoneInfo(config.host.timezone)
    except (KeyError, ValueError, OSError):
        zone = ZoneInfo("UTC")
    facts = HostFacts(
        datetime.now(timezone.utc), zone, frozenset(users) if users is not None else None
    )
    reports = inventory_files(read_host_crontabs(root, users), facts)
    return sum(
        1
        for report in reports
        if not report.managed
        for entry in report.entries
        if not entry.commented_out
    )
