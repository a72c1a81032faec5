"""Read what is installed on a host, and build what a sync would install (for ``plan``
and ``status``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from . import gitsource
from .build import Build, build_tree
from .compiled import JOBS_FILE
from .config import AgentConfig
from .errors import UsageError
from .fsutil import ExclusiveLock, remove_tree
from .install import RELEASE_REPO, new_staging_dir, read_cron_file
from .render import SourceInfo
from .sync import utc_now
from .urls import redact_url

WORKTREE = "working-tree"


def installed_jobs(config: AgentConfig) -> Optional[dict[str, Any]]:
    """Return the compiled jobs document of the installed release, or None."""
    try:
        data = json.loads((config.paths.current / JOBS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def installed_cron_text(config: AgentConfig) -> Optional[str]:
    """Return the managed cron file's text, or None when it does not exist."""
    data = read_cron_file(config.paths.cron_file)
    return None if data is None else data.decode("utf-8", "replace")


def build_worktree(config: AgentConfig, tree: Path) -> Build:
    """Build a local directory of job files as this host would install it."""
    if not tree.is_dir():
        raise UsageError(f"{tree} is not a directory")
    source = SourceInfo(redact_url(config.repo_url), config.branch, WORKTREE)
    return build_tree(config, tree, source, utc_now())


def build_remote(config: AgentConfig) -> tuple[str, Build]:
    """Fetch the configured branch and build its tip without installing anything.

    Returns:
        The fetched commit and its build.

    Raises:
        LockBusyError: a sync is running (it owns the checkout).
        SourceError: the remote cannot be fetched.
    """
    paths = config.paths
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    with ExclusiveLock(paths.sync_lock, "sync"):
        fetched = gitsource.fetch_branch(
            config.repo_url, config.branch, paths.checkout, timeout=config.git_timeout_seconds
        )
        staging = new_staging_dir(paths, fetched.commit)
        try:
            gitsource.export_commit(paths.checkout, fetched.commit, staging / RELEASE_REPO)
            source = SourceInfo(redact_url(config.repo_url), config.branch, fetched.commit)
            return fetched.commit, build_tree(config, staging / RELEASE_REPO, source, utc_now())
        finally:
            remove_tree(staging)


def current_release(config: AgentConfig) -> Optional[str]:
    """Return the name of the release ``current`` points at, or None."""
    try:
        return os.path.basename(os.readlink(config.paths.current))
    except OSError:
        return None
