"""A jobs repository pushed to a real bare remote, and a host sandbox to sync it into.

``make_sandbox(tmp)`` gives a :class:`Sandbox`: a bare ``remote.git`` and a ``work``
repository (its ``origin``) holding a copy of ``repo-template/`` already pushed to
``main``, plus ``root/etc/cronsync/agent.toml`` with ``paths.root`` = ``root``, host
``batch-1`` in group ``eu``, user ``batch`` allowed and ``users.must_exist = false``.
Everything runs real ``git`` and real files; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from cronsync.host.config import AgentConfig, load_config
from cronsync.host.sync import SyncOutcome, run_sync

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}
"""Keeps the machine's git config out (set with ``monkeypatch.setenv`` by the fixture)."""

CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = CHECKOUT_ROOT / "repo-template"
SHIM = "/usr/local/bin/cronsync-run"
FIXED_NOW = datetime(2025, 6, 2, 12, 0, tzinfo=timezone.utc)
"""The clock of in-process syncs (only its year shapes time-zone renderings)."""


def git(cwd: Path, *args: str) -> str:
    """Run the git CLI in ``cwd`` and return its stdout, stripped."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        timeout=120,
    )
    return done.stdout.strip()


class Upstream:
    """A bare "remote" and a work repository that commits and pushes to it."""

    def __init__(self, base: Path) -> None:
        self.bare = base / "remote.git"
        self.work = base / "work"
        git(base, "init", "--quiet", "--bare", "-b", "main", str(self.bare))
        git(base, "init", "--quiet", "-b", "main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))

    def write(self, rel: str, text: str, mode: int = 0o644) -> Path:
        """Write a file of the work tree (parents created) with ``mode``."""
        path = self.work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path

    def remove(self, rel: str) -> None:
        """Delete a file of the work tree (if present)."""
        (self.work / rel).unlink(missing_ok=True)

    def commit(self, message: str = "change") -> str:
        """Commit everything in the work tree; return the new commit's sha."""
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def push(self, force: bool = False) -> None:
        """Push the work tree's HEAD to ``main`` of the bare remote."""
        extra = ["--force"] if force else []
        git(self.work, "push", "--quiet", *extra, "origin", "HEAD:refs/heads/main")

    def commit_and_push(self, message: str = "change", force: bool = False) -> str:
        """Commit everything and push it; return the sha."""
        sha = self.commit(message)
        self.push(force=force)
        return sha

    def head(self) -> str:
        """The work repository's HEAD sha."""
        return git(self.work, "rev-parse", "HEAD")


def agent_toml(url: str, root: Path, extra: str = "", host: str = "batch-1") -> str:
    """The sandbox host's agent.toml text (``extra`` is appended verbatim)."""
    return f"""\
[repo]
url = {json.dumps(url)}
branch = "main"

[host]
name = {json.dumps(host)}
groups = ["eu"]
timezone = "UTC"

[users]
allowed = ["batch"]
must_exist = false

[paths]
root = {json.dumps(str(root))}
{extra}"""


@dataclass
class Sandbox:
    """One host sandbox (``root``) and the upstream it syncs from."""

    base: Path
    root: Path
    config_path: Path
    upstream: Upstream
    host: str = "batch-1"

    @property
    def shim(self) -> str:
        """How the rendered cron lines start cronsync-run in this sandbox (the root is
        not the default, so it is passed along)."""
        return f"{SHIM} --root {self.root}"

    @property
    def cron_file(self) -> Path:
        """``<root>/etc/cron.d/cronsync``."""
        return self.root / "etc/cron.d/cronsync"

    @property
    def state_dir(self) -> Path:
        """``<root>/var/lib/cronsync``."""
        return self.root / "var/lib/cronsync"

    @property
    def releases(self) -> Path:
        """``<root>/var/lib/cronsync/releases``."""
        return self.state_dir / "releases"

    @property
    def current(self) -> Path:
        """``<root>/var/lib/cronsync/current``."""
        return self.state_dir / "current"

    @property
    def checkout(self) -> Path:
        """The agent's git checkout."""
        return self.state_dir / "repo"

    def write_config(self, extra: str = "") -> None:
        """(Re)write agent.toml, with ``extra`` TOML appended."""
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            agent_toml(str(self.upstream.bare), self.root, extra, self.host)
        )

    def config(self) -> AgentConfig:
        """Load agent.toml the way the CLI does."""
        return load_config(str(self.config_path))

    def sync(self, force: bool = False) -> SyncOutcome:
        """Run one sync cycle in-process with the fixed clock."""
        return run_sync(self.config(), force=force, clock=lambda: FIXED_NOW)

    def state(self) -> dict[str, Any]:
        """The state file, as JSON."""
        data: dict[str, Any] = json.loads((self.state_dir / "state.json").read_text())
        return data

    def jobs_json(self) -> dict[str, Any]:
        """The installed release's jobs.json."""
        data: dict[str, Any] = json.loads((self.current / "jobs.json").read_text())
        return data

    def cli(
        self, *args: str, env: Optional[dict[str, str]] = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m cronsync.cli.main ARGS`` as a real process with this sandbox's
        config in ``$CRONSYNC_CONFIG``."""
        return subprocess.run(
            [sys.executable, "-m", "cronsync.cli.main", *args],
            cwd=self.base,
            capture_output=True,
            text=True,
            env={**os.environ, "CRONSYNC_CONFIG": str(self.config_path), **(env or {})},
            timeout=120,
        )


def copy_template(dest: Path, template: Path = TEMPLATE) -> None:
    """Copy the jobs repository template into ``dest`` (modes kept, caches skipped)."""
    shutil.copytree(
        template,
        dest,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"),
    )


def make_sandbox(base: Path, extra_config: str = "") -> Sandbox:
    """Create the upstream (template pushed to ``main``) and the host sandbox in ``base``.

    Call with the git environment of :data:`GIT_ENV` already set.
    """
    upstream = Upstream(base)
    copy_template(upstream.work)
    upstream.commit_and_push("Jobs of the batch host")
    root = base / "root"
    sandbox = Sandbox(base, root, root / "etc/cronsync/agent.toml", upstream)
    sandbox.write_config(extra_config)
    return sandbox


def another_host(sandbox: Sandbox, name: str, extra_config: str = "") -> Sandbox:
    """A second host of the same upstream: its own root (``base/NAME``), agent.toml and
    host name ``name`` (group ``eu``); nothing synced."""
    root = sandbox.base / name
    other = Sandbox(sandbox.base, root, root / "etc/cronsync/agent.toml", sandbox.upstream, name)
    other.write_config(extra_config)
    return other
