"""What ``cronsync import`` plans: its data types (pure).

``importplan`` fills an :class:`ImportPlan` (a :class:`Draft` per entry, turned into a
``jobwriter.JobModel`` by :func:`build_model`); ``importer`` writes it out and
``report`` turns it into MIGRATION.md and the ``--json`` document.
:class:`KnownValues` holds every secret value found anywhere, which
``leaks.hide_known_values`` keeps out of everything written. Reading the parts
of a crontab line is ``lines``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from cronsync.core.textshow import visible
from cronsync.crontab.records import InventoryEntry
from cronsync.migrate.jobwriter import JobModel, Origin
from cronsync.secretscan.known import KnownValues

TODO_DESCRIPTION = "TODO: what this job does (imported from {where})"
TODO_OWNER = "TODO: team or e-mail"


@dataclass(frozen=True)
class ImportOptions:
    """What the operator asked for (``--copy-scripts``, ``--include-commented``,
    ``--secret-prefix``)."""

    copy_scripts: bool = False
    include_commented: bool = False
    secret_prefix: str = "imported/"  # noqa: S105 (a name prefix, not a secret)


@dataclass(frozen=True)
class ScriptFile:
    """A script read from the host for ``--copy-scripts``."""

    host_path: str
    data: bytes = field(repr=False)
    mode: int


ScriptReader = Callable[[str, str], Union[ScriptFile, str]]  # (program, the job's user)
"""Host path -> the script, or why it cannot be copied."""
HomeLookup = Callable[[str], Optional[str]]
"""User -> home directory, or None when unknown."""


@dataclass
class MovedSecret:
    """One secret value moved out of the crontabs (stored once per reference)."""

    reference: str
    env: str
    kind: str
    label: str
    value: str = field(repr=False)
    users: set[str] = field(default_factory=set)
    jobs: list[str] = field(default_factory=list)


@dataclass
class PlannedJob:
    """An entry that becomes ``jobs/NAME.toml``, with what changed and what is left."""

    model: JobModel
    entry: InventoryEntry
    changes: list[str]
    todo: list[str]
    secrets: list[MovedSecret]
    script: Optional[str] = None


@dataclass(frozen=True)
class Skipped:
    """Something not imported: an entry (``line``) or a whole file (``line`` None).

    ``category``: ``broken``, ``not run``, ``duplicate``, ``commented out``,
    ``unsupported``, ``file``, ``managed``; ``text`` is the line, secrets masked.
    """

    source: str
    line: Optional[int]
    category: str
    reason: str
    text: str = ""


@dataclass
class ImportPlan:
    """Everything an import writes and reports."""

    timezone: str
    options: ImportOptions
    sources: list[str] = field(default_factory=list)
    jobs: list[PlannedJob] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    secrets: dict[str, MovedSecret] = field(default_factory=dict)
    scripts: dict[str, ScriptFile] = field(default_factory=dict)
    known: KnownValues = field(default_factory=KnownValues, repr=False)


class Unsupported(Exception):
    """An entry cron runs that the import cannot carry over (the message says why;
    ``name`` is the job name it had been given, if any)."""

    name = ""


@dataclass
class Draft:
    """A job being built from one entry."""

    entry: InventoryEntry
    name: str
    changes: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, MovedSecret] = field(default_factory=dict)
    shell: str = "sh"
    workdir: Optional[str] = None
    script: Optional[str] = None

    @property
    def user(self) -> str:
        """The user it runs as (known: checked before the draft is made)."""
        return self.entry.user or ""


def build_model(
    draft: Draft,
    schedule: str,
    origins: tuple[Origin, ...],
    masked: str,
    argv: tuple[str, ...],
    shell: Optional[str],
) -> JobModel:
    """Return the job file model of a finished draft."""
    entry = draft.entry
    where = visible(f"{entry.source}:{entry.line}")
    return JobModel(
        name=draft.name,
        origins=origins,
        original=masked,
        description=TODO_DESCRIPTION.format(where=where),
        owner=TODO_OWNER,
        schedule=schedule,
        user=draft.user,
        command=argv,
        shell=shell,
        workdir=draft.workdir,
        env=tuple(sorted(draft.env.items())),
        secrets=tuple(sorted((env, s.reference) for env, s in draft.secrets.items())),
        enabled=not entry.commented_out,
        reason=f"commented out in {where} before the migration" if entry.commented_out else None,
    )
