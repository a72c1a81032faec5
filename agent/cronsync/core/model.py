"""The in-memory model of a job repository: frozen dataclasses, no I/O.

``manifest`` builds these from TOML text, ``validate`` checks them, ``compile`` and
``render`` turn them into the files the host reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as we know.

    Attributes:
        file: path relative to the repository root ("jobs/x.toml"), or a config path.
        line: 1-based line in that file, when known.
        field: dotted key ("success.within"), or "" for the whole file.
        message: what is wrong, for a person.
        severity: ``ERROR`` blocks an install; ``WARNING`` is reported only.
    """

    file: str
    line: Optional[int]
    field: str
    message: str
    severity: str = ERROR

    def format(self) -> str:
        """Return ``file:line: field: message`` (line and field left out when unknown)."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        prefix = "warning: " if self.severity == WARNING else ""
        subject = f"{self.field}: " if self.field else ""
        return f"{where}: {prefix}{subject}{self.message}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        """Rebuild a problem from its ``as_dict`` form (e.g. read from state.json)."""
        line = data.get("line")
        return cls(
            str(data.get("file", "")),
            line if isinstance(line, int) else None,
            str(data.get("field") or ""),
            str(data.get("message", "")),
            str(data.get("severity", ERROR)),
        )

    def as_dict(self) -> dict[str, object]:
        """Return the problem as a JSON-ready dict (the ``--json`` shape)."""
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class SecretRef:
    """Where one environment variable's secret value comes from.

    Attributes:
        env: the variable the job sees.
        store: ``"secretsmanager"`` or ``"ssm"``.
        name: secret id (Secrets Manager name or ARN) or parameter path.
        key: for a JSON secret, the key whose value is used; else None.
    """

    env: str
    store: str
    name: str
    key: Optional[str] = None

    def as_dict(self) -> dict[str, object]:
        """Return the reference as a JSON-ready dict (never a value)."""
        return {"env": self.env, "store": self.store, "name": self.name, "key": self.key}


@dataclass(frozen=True)
class SuccessSpec:
    """What "it worked" means for a job."""

    within_seconds: Optional[int] = None
    check: tuple[str, ...] = ()


@dataclass(frozen=True)
class Defaults:
    """Repo-wide defaults from ``cronsync.toml``.

    ``lines`` maps ``defaults.FIELD`` to the line it was written on; ``broken`` names
    the fields given a value of the wrong type (reported once, at ``cronsync.toml``,
    and left out: a job relying on one is not reported again for lacking it).
    """

    user: Optional[str] = None
    timezone: Optional[str] = None
    timeout_seconds: Optional[int] = None
    concurrency: str = "forbid"
    jitter_seconds: int = 0
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)
    broken: frozenset[str] = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class Job:
    """One job, with the repository defaults already applied.

    ``lines`` maps dotted field names to the line they were written on, so checks
    made after parsing can still say where a problem is.
    """

    name: str
    file: str
    description: str
    owner: str
    schedule: str
    user: str
    timezone: Optional[str] = None
    command: tuple[str, ...] = ()
    shell: Optional[str] = None
    workdir: Optional[str] = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretRef, ...] = ()
    timeout_seconds: Optional[int] = None
    concurrency: str = "forbid"
    jitter_seconds: int = 0
    enabled: bool = True
    reason: Optional[str] = None
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    run_on: str = "every-host"  # "one-host": one lease per occurrence across the fleet
    fleet_unreachable: str = "skip"  # one-host and the fleet's table unreachable: skip | run
    success: SuccessSpec = field(default_factory=SuccessSpec)
    verified_by: Optional[str] = None  # [migration]: who signed the imported job off
    verified_on: Optional[str] = None  # [migration]: the day, YYYY-MM-DD
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def line_of(self, dotted: str) -> Optional[int]:
        """Return the line a field was written on, else the nearest enclosing table's."""
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            dotted = dotted.rpartition(".")[0]
        return None

    def problem(self, dotted: str, message: str, severity: str = ERROR) -> Problem:
        """Build a Problem located at one of this job's fields."""
        return Problem(self.file, self.line_of(dotted), dotted, message, severity)


@dataclass(frozen=True)
class RepoSettings:
    """Repo-wide settings from ``cronsync.toml`` that are not job defaults."""

    log_group: str = "/cronsync/jobs"
    metrics_namespace: str = "Cronsync"


@dataclass(frozen=True)
class JobRepo:
    """A parsed job repository: defaults, settings and every job file that parsed."""

    defaults: Defaults
    jobs: tuple[Job, ...]
    settings: RepoSettings = field(default_factory=RepoSettings)


@dataclass(frozen=True)
class HostContext:
    """What validation needs to know about the host it installs on.

    Attributes:
        name: the host name, for ``hosts`` targeting.
        groups: the host's groups, for ``groups`` targeting.
        timezone: the zone cron runs in here.
        allowed_users: users jobs may run as; empty means any but root and the
            system users, who run jobs only when listed here by name.
        existing_users: users that exist here, or None when not checked
            (validating in a repository's CI rather than on a host).
        system_users: the users whose uid is below ``uid_min`` (root among them), or
            None when not known (then only ``root`` counts as one).
        uid_min: the host's UID_MIN, for messages.
        config_file: the agent config the user rules come from, for messages.
    """

    name: str
    groups: tuple[str, ...] = ()
    timezone: str = "UTC"
    allowed_users: tuple[str, ...] = ()
    existing_users: Optional[frozenset[str]] = None
    system_users: Optional[frozenset[str]] = None
    uid_min: int = 1000
    config_file: str = "agent.toml"
