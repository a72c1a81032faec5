"""What the shim knows about a job: read from the installed release's jobs.json only.

Never the TOML, never git: the shim resolves ``current`` once, reads that release's
compiled jobs, and runs the job from that release even if a sync switches ``current``
meanwhile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import CronsyncError

EXIT_SHIM = 125  # cronsync could not find or read the job
EXIT_CANNOT_RUN = 126  # secrets unavailable, program not executable
EXIT_NOT_FOUND = 127  # the program does not exist

RELEASE_REPO = "repo"
JOBS_FILE = "jobs.json"


class ShimError(CronsyncError):
    """The shim could not run the job at all; ``exit_code`` says why (125-127)."""

    def __init__(self, message: str, exit_code: int = EXIT_SHIM) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Release:
    """The installed release the shim runs from."""

    path: Path
    document: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The release directory's name."""
        return self.path.name

    @property
    def settings(self) -> Mapping[str, Any]:
        """The host's run settings compiled into the release."""
        value = self.document.get("settings")
        return value if isinstance(value, dict) else {}


def state_dir(root: Path) -> Path:
    """Return ``/var/lib/cronsync`` below ``root``."""
    return root / "var/lib/cronsync"


def load_release(root: Path) -> Release:
    """Resolve ``current`` and read its jobs.json.

    Raises:
        ShimError: nothing is installed, or the release is incomplete or unreadable.
    """
    current = state_dir(root) / "current"
    try:
        path = Path(os.path.realpath(current, strict=True))
    except OSError as exc:
        raise ShimError(
            f"no release installed ({current} is missing): run cronsync sync first"
        ) from exc
    try:
        document = json.loads((path / JOBS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ShimError(f"cannot read {path / JOBS_FILE}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
        raise ShimError(f"{path / JOBS_FILE} is not a cronsync jobs file")
    return Release(path, document)


@dataclass(frozen=True)
class JobSpec:
    """One job as the shim runs it (paths resolved against its release)."""

    name: str
    raw: Mapping[str, Any]
    release: Release

    @property
    def installed(self) -> bool:
        """Whether the job is installed on this host (enabled and targeted)."""
        return bool(self.raw.get("installed"))

    def resolve_argv(self, argv: list[str]) -> list[str]:
        """Resolve a repository path (``scripts/x.sh``) against the release."""
        if argv and "/" in argv[0] and not argv[0].startswith("/"):
            return [str(self.release.path / RELEASE_REPO / argv[0]), *argv[1:]]
        return list(argv)

    @property
    def argv(self) -> list[str]:
        """The command to run: argv, or ``/bin/sh -c SHELL``."""
        if self.raw.get("shell"):
            return ["/bin/sh", "-c", str(self.raw["shell"])]
        return self.resolve_argv(list(self.raw.get("command") or []))

    @property
    def check_argv(self) -> list[str]:
        """The success check's command ([] when none)."""
        return self.resolve_argv(list((self.raw.get("success") or {}).get("check") or []))

    @property
    def cwd(self) -> str:
        """The directory the job starts in."""
        workdir: Optional[str] = self.raw.get("workdir")
        repo = self.release.path / RELEASE_REPO
        if not workdir:
            return str(repo)
        return workdir if workdir.startswith("/") else str(repo / workdir)

    def number(self, key: str) -> Optional[float]:
        """Return a numeric field (timeout, jitter) or None."""
        value = self.raw.get(key)
        return float(value) if isinstance(value, (int, float)) and value > 0 else None


def find_job(release: Release, name: str) -> JobSpec:
    """Return the job ``name`` of a release.

    Raises:
        ShimError: no such job in the installed release.
    """
    raw = release.document["jobs"].get(name)
    if not isinstance(raw, dict):
        raise ShimError(
            f"no job {name!r} in the installed release {release.name} (removed "
            "from the repository, or not synced yet)"
        )
    return JobSpec(name, raw, release)
