"""What ``cronsync import`` plans: its data types (pure).

``importplan`` fills an :class:`ImportPlan` (a :class:`Draft` per entry, turned into a
``jobwriter.JobModel`` by :func:`build_model`); ``importer`` writes it out and
``report`` turns it into MIGRATION.md and the ``--json`` document.
:class:`KnownValues` holds every secret value found anywhere, which
``leaks.hide_known_values`` keeps out of everything written. Reading the parts
of a crontab line is ``lines``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from cronsync.core.textshow import visible
from cronsync.crontab.records import InventoryEntry
from cronsync.migrate.jobwriter import JobModel, Origin
from cronsync.secretscan import kinds

TODO_DESCRIPTION = "TODO: what this job does (imported from {where})"
TODO_OWNER = "TODO: team or e-mail"
MIN_HIDDEN = 3  # shorter values are masked where found, not searched for


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


ScriptReader = Callable[[str], Union[ScriptFile, str]]
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


_Trie = dict[str, "_Trie"]
_END = ""  # the key marking that a value ends at this node


def _trie_regex(values: Iterable[str]) -> str:
    """Return one regex matching any of ``values``, shaped as a trie, so the C regex
    engine finds them all in one pass whatever their number."""
    root: _Trie = {}
    for value in values:
        node = root
        for char in value:
            node = node.setdefault(char, {})
        node[_END] = {}
    return _trie_node(root)


def _trie_node(node: _Trie) -> str:
    chain = []
    while len(node) == 1 and _END not in node:  # no branch: plain characters
        char, node = next(iter(node.items()))
        chain.append(re.escape(char))
    branches = [re.escape(char) + _trie_node(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return "".join(chain)
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return "".join(chain) + (f"(?:{body})?" if _END in node else body)


class KnownValues:
    """Every secret value the import found, to mask it wherever it shows up: the
    scanner sees ``--password=X`` after ``mysql`` but not as a line's first word, yet
    the same X must not show there either. Values shorter than 3 characters are
    masked only where the scanner found them."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: Optional[re.Pattern[str]] = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def add(self, value: str) -> None:
        """Remember one value."""
        if len(value) >= MIN_HIDDEN and value not in self._values:
            self._values.add(value)
            self._pattern = None

    def _compiled(self) -> re.Pattern[str]:
        if self._pattern is None:
            # longest first at each branch point is not needed: a trie regex tries the
            # longer continuation before the optional end
            try:
                self._pattern = re.compile(_trie_regex(self._values))
            except (RecursionError, re.error):  # thousands of nested prefixes
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, alternatives)))
        return self._pattern

    def contains(self, text: str) -> bool:
        """Return whether a known value is in ``text``."""
        return bool(self._values) and self._compiled().search(text) is not None

    def first(self, text: str) -> Optional[str]:
        """Return the first known value found in ``text``, or None."""
        match = self._compiled().search(text) if self._values else None
        return match[0] if match else None

    def hide(self, text: str) -> str:
        """Return ``text`` with every known value in it replaced by ``***``."""
        if not self._values:
            return text
        return self._compiled().sub(kinds.MASK, text)


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
