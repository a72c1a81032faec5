"""What the shim knows about a job: read from the installed release's jobs.json only.

Never the TOML, never git: the shim resolves ``current`` once, reads that release's
compiled jobs, and runs the job from that release even if a sync switches ``current``
meanwhile.
"""

from __future__ import annotations

import os

from cronsync.core import fastjson
from cronsync.core.errors import CronsyncError
from cronsync.core.frozen import Frozen
from cronsync.core.release import JOBS_FILE, RELEASE_REPO, format_problem
from cronsync.files.paths import path_str

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any, Optional

    from cronsync.files.paths import StrPath

EXIT_SHIM = 125  # cronsync could not find or read the job
EXIT_CANNOT_RUN = 126  # secrets unavailable, program not executable
EXIT_NOT_FOUND = 127  # the program does not exist

CONCURRENCY_POLICIES = ("forbid", "allow", "replace")
RUN_ON_CHOICES = ("every-host", "one-host")
UNREACHABLE_CHOICES = ("skip", "run")


class ShimError(CronsyncError):
    """The shim could not run the job at all; ``exit_code`` says why (125-127).

    ``shown`` is set when the message already reached the terminal (a run by hand
    shows cronsync's notes as they are logged): the CLI does not print it again.
    """

    def __init__(self, message: str, exit_code: int = EXIT_SHIM) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.shown = False


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
            document = fastjson.loads(handle.read())
    except (OSError, ValueError, RecursionError) as exc:
        raise ShimError(f"cannot read {jobs_file}: {exc}") from exc
    if not isinstance(document, dict):
        raise ShimError(f"{jobs_file} is not a cronsync jobs file")
    problem = format_problem(document.get("format"), "cronsync-run")
    if problem:
        raise ShimError(f"{jobs_file}: {problem}")
    if not isinstance(document.get("jobs"), dict):
        raise ShimError(f"{jobs_file} is not a cronsync jobs file (no jobs table)")
    settings_problem = _settings_problem(document.get("settings", {}))
    if settings_problem:
        raise ShimError(f"{jobs_file}: settings: {settings_problem}")
    return Release(path, document)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _settings_problem(settings: Any) -> Optional[str]:
    """Say what is wrong with the shape of a release's ``settings`` (None: nothing)."""
    if not isinstance(settings, dict):
        return "not a table"
    checks = (
        ("host", "a string", lambda v: isinstance(v, str)),
        ("runs_dir", "a string", lambda v: isinstance(v, str)),
        ("log_dir", "a string", lambda v: isinstance(v, str)),
        ("log_group", "a string", lambda v: isinstance(v, str)),
        ("kill_grace", "a number", lambda v: _is_number(v) and v >= 0),
        ("keep_runs", "a whole number", lambda v: _is_int(v) and v >= 0),
        ("keep_days", "a whole number", lambda v: _is_int(v) and v >= 0),
        ("secrets", "a table", lambda v: isinstance(v, dict)),
        ("logs", "a table", lambda v: isinstance(v, dict)),
        ("metrics", "a table", lambda v: isinstance(v, dict)),
        ("aws", "a table", lambda v: isinstance(v, dict)),
        ("broker", "a table", lambda v: isinstance(v, dict)),
    )
    for key, what, check in checks:
        value = settings.get(key)
        if value is not None and not check(value):
            return f"{key} is not {what}"
    return None


def _job_problem(raw: Mapping[str, Any]) -> Optional[str]:
    """Say what is wrong with the shape of a job's fields the shim uses (None: nothing)."""
    optional_str = ("shell", "workdir", "user", "schedule", "timezone", "status")
    for key in optional_str:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            return f"{key} is not a string"
    for key in ("timeout", "jitter"):
        if raw.get(key) is not None and not _is_number(raw[key]):
            return f"{key} is not a number"
    for key in ("installed", "gate"):
        if raw.get(key) is not None and not isinstance(raw[key], bool):
            return f"{key} is not true or false"
    if raw.get("command") is not None and not _is_str_list(raw["command"]):
        return "command is not a list of strings"
    if not raw.get("shell") and not raw.get("command"):
        return "has neither command nor shell"
    env = raw.get("env")
    if env is not None and not (
        isinstance(env, dict) and all(isinstance(v, str) for v in env.values())
    ):
        return "env is not a table of strings"
    secrets = raw.get("secrets")
    if secrets is not None and not (
        isinstance(secrets, list) and all(isinstance(ref, dict) for ref in secrets)
    ):
        return "secrets is not a list of tables"
    concurrency = raw.get("concurrency")
    if concurrency is not None and concurrency not in CONCURRENCY_POLICIES:
        return f"concurrency is not one of {', '.join(CONCURRENCY_POLICIES)}"
    for key, choices in (("run_on", RUN_ON_CHOICES), ("fleet_unreachable", UNREACHABLE_CHOICES)):
        if raw.get(key) is not None and raw[key] not in choices:
            return f"{key} is not one of {', '.join(choices)}"
    success = raw.get("success")
    if success is not None:
        if not isinstance(success, dict):
            return "success is not a table"
        if success.get("check") is not None and not _is_str_list(success["check"]):
            return "success.check is not a list of strings"
    if raw.get("gate") and not (
        isinstance(raw.get("schedule"), str) and isinstance(raw.get("timezone"), str)
    ):
        return "a gated job needs its schedule and timezone"
    return None


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
    def env(self) -> dict[str, str]:
        """The job's own environment variables (checked strings, see :func:`find_job`)."""
        value = self.raw.get("env") or {}
        return {str(key): str(item) for key, item in value.items()}

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
        ShimError: no such job in the installed release, or its fields the shim uses
            are not of the expected types (exit 125).
    """
    raw = release.document["jobs"].get(name)
    if raw is None:
        raise ShimError(
            f"no job {name!r} in the installed release {release.name} (removed "
            "from the repository, or not synced yet)"
        )
    problem = "is not a table" if not isinstance(raw, dict) else _job_problem(raw)
    if problem:
        raise ShimError(
            f"job {name!r} in {path_str(release.directory, JOBS_FILE)}: {problem} "
            "(a damaged release: cronsync sync --force installs it again)"
        )
    return JobSpec(name, raw, release)
