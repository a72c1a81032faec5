"""What the shim knows about a job: read from the installed release's jobs.json only.

Never the TOML, never git: the shim resolves ``current`` once, reads that release's
compiled jobs, and runs the job from that release even if a sync switches ``current``
meanwhile.
"""

from __future__ import annotations

import json
import os

from .errors import CronsyncError
from .frozen import Frozen
from .fsutil import path_str

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any, Optional

    from .fsutil import StrPath

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


class Release(Frozen):
    """The installed release the shim runs from.

    Attributes:
        directory: its directory, as a str (``str(path)``).
        document: its jobs.json.
    """

    __slots__ = ("directory", "document")
    directory: str
    document: Mapping[str, Any]

    def __init__(self, path: StrPath, document: Mapping[str, Any]) -> None:
        self._fill(path_str(path), document)

    @property
    def path(self) -> Path:
        """The release directory (the shim itself uses :attr:`directory`)."""
        from pathlib import Path

        return Path(self.directory)

    @property
    def name(self) -> str:
        """The release directory's name."""
        return os.path.basename(self.directory)

    @property
    def settings(self) -> Mapping[str, Any]:
        """The host's run settings compiled into the release."""
        value = self.document.get("settings")
        return value if isinstance(value, dict) else {}


def state_dir(root: StrPath) -> str:
    """Return ``/var/lib/cronsync`` below ``root``."""
    return path_str(root, "var/lib/cronsync")


def load_release(root: StrPath) -> Release:
    """Resolve ``current`` and read its jobs.json.

    Raises:
        ShimError: nothing is installed, or the release is incomplete or unreadable.
    """
    current = path_str(state_dir(root), "current")
    try:
        path = path_str(os.path.realpath(current, strict=True))
    except OSError as exc:
        raise ShimError(
            f"no release installed ({current} is missing): run cronsync sync first"
        ) from exc
    jobs_file = path_str(path, JOBS_FILE)
    try:
        with open(jobs_file, encoding="utf-8") as handle:
            document = json.loads(handle.read())
    except (OSError, ValueError) as exc:
        raise ShimError(f"cannot read {jobs_file}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
        raise ShimError(f"{jobs_file} is not a cronsync jobs file")
    return Release(path, document)


class JobSpec(Frozen):
    """One job as the shim runs it (paths resolved against its release)."""

    __slots__ = ("name", "raw", "release")
    name: str
    raw: Mapping[str, Any]
    release: Release

    def __init__(self, name: str, raw: Mapping[str, Any], release: Release) -> None:
        self._fill(name, raw, release)

    @property
    def installed(self) -> bool:
        """Whether the job is installed on this host (enabled and targeted)."""
        return bool(self.raw.get("installed"))

    def resolve_argv(self, argv: list[str]) -> list[str]:
        """Resolve a repository path (``scripts/x.sh``) against the release."""
        if argv and "/" in argv[0] and not argv[0].startswith("/"):
            return [path_str(self.release.directory, RELEASE_REPO, argv[0]), *argv[1:]]
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
        repo = path_str(self.release.directory, RELEASE_REPO)
        if not workdir:
            return repo
        return workdir if workdir.startswith("/") else path_str(repo, workdir)

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
