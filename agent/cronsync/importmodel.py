"""What ``cronsync import`` plans: its data types and the crontab-line helpers (pure).

``importplan`` fills an :class:`ImportPlan` (a :class:`Draft` per entry, turned into a
``jobwriter.JobModel`` by :func:`build_model`); ``importer`` writes it out and
``importreport`` turns it into MIGRATION.md and the ``--json`` document.
:class:`KnownValues` and :func:`hide_known_values` keep every secret value found
anywhere out of everything written. ``debianschedule.read_debian_schedule`` is cron's
own reading of a schedule (``1-5-7`` as ``1-5``, reversed ranges dropped): the one place
that knows it.
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from . import secretkinds, secretscan
from .cronline import parse_env_line
from .debianschedule import read_debian_schedule
from .errors import ScheduleError
from .inventoryrecords import InventoryEntry
from .jobwriter import JobModel, Origin, visible
from .schedule import parse_schedule

BLANKS = " \t"
TODO_DESCRIPTION = "TODO: what this job does (imported from {where})"
TODO_OWNER = "TODO: team or e-mail"
_MIN_CHECKED = 4  # shorter secret values are not searched for in the output (false hits)
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
        return self._compiled().sub(secretkinds.MASK, text)


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


@functools.lru_cache(maxsize=4096)
def effective_schedule(written: str) -> Optional[str]:
    """Return the schedule cron really uses for ``written``, or None if it never runs."""
    try:
        parse_schedule(written)
        return written
    except ScheduleError:
        when = read_debian_schedule(written)
        return when.schedule.text if when.schedule is not None and not when.error else None


@functools.lru_cache(maxsize=4096)
def env_is_secret(name: str, value: str) -> bool:
    return secretscan.mask_env_value(name, value) != value


CRON_PATH = "/usr/bin:/bin"
"""The PATH cron gives a job unless the crontab sets one."""
_STANDARD_BIN = ("/bin", "/usr/bin")


def shell_program(shell: str, path: str) -> str:
    """Return how a job names the shell cron ran it with (``SHELL=...``).

    Args:
        shell: the SHELL value (cron execs it as written).
        path: the PATH the job gets (cronsync looks a bare program name up in it).
    Returns:
        the bare name (``bash``) when that finds the same program: the shell is in
        /bin or /usr/bin and no other folder comes before it in ``path``; else the
        value as written (``/usr/local/bin/bash``), so the same interpreter runs.
    """
    folder, name = posixpath.split(shell)
    if folder not in _STANDARD_BIN:
        return shell
    folders = path.split(":")
    before = folders[: folders.index(folder)] if folder in folders else folders
    return name if all(f in _STANDARD_BIN for f in before) else shell


_ONE_WORD = re.compile(r"(?:[^ \t]+[ \t]*)?")
_FIVE_WORDS = re.compile(r"(?:[^ \t]+[ \t]*){0,5}")


def command_field(body: str, system: bool) -> str:
    """Return the command field of an entry line (leading blanks and ``#`` removed):
    what follows the macro or the 5 time fields, and the user field of a system
    crontab, each word ending at a blank (cron's reader)."""
    rest = _after(_ONE_WORD if body.startswith("@") else _FIVE_WORDS, body)
    return _after(_ONE_WORD, rest) if system else rest


def _after(words: re.Pattern[str], text: str) -> str:
    match = words.match(text)
    return text[match.end() :] if match else text


def entry_body(line: str, commented: bool) -> str:
    """Return an entry line as cron's reader sees it (a commented one without ``#``)."""
    body = line.lstrip(BLANKS)
    return body.lstrip("#").lstrip(BLANKS) if commented else body


def env_at(lines: Sequence[str], wanted: set[int]) -> dict[int, tuple[tuple[str, str], ...]]:
    """Return the environment in force at each of the ``wanted`` line numbers."""
    env: dict[str, str] = {}
    snapshot: Optional[tuple[tuple[str, str], ...]] = ()
    found = {}
    for number, line in enumerate(lines, 1):
        body = line.lstrip(BLANKS)
        if number in wanted:
            snapshot = tuple(env.items()) if snapshot is None else snapshot
            found[number] = snapshot
        elif body and not body.startswith("#"):
            setting = parse_env_line(body)
            if setting is not None:
                env[setting[0]] = setting[1]
                snapshot = None
    return found


def where_value_shows(model: JobModel, value: str) -> str:
    """Say where ``value`` shows in a job's command or variables, without the value.

    Returns:
        "as the value of -u", "inside word 3 of the command", "in the value of X
        (set above the line)", or "in the command" when it cannot be told better.
    """
    for name, text in model.env:
        if value in text:
            return f"in the value of {name} (set above the line)"
    words = list(model.command) if model.shell is None else (model.shell or "").split()
    for number, word in enumerate(words, 1):
        if value not in word:
            continue
        before = words[number - 2] if number > 1 else ""
        bare = word.strip("'\"") == value
        if bare and before.startswith("-") and value not in before:
            return f"as the value of {before}"
        option = word.partition("=")[0]
        if "=" in word and option.startswith("-") and value not in option:
            return f"as the value of {option}="
        return f"{'as' if bare else 'inside'} word {number} of the command"
    return "in the command"


def secret_left_behind(model: JobModel, secrets: Sequence[MovedSecret]) -> Optional[str]:
    """Return why a job cannot be written when a moved-out secret value still shows in
    its command or variables (it also stood somewhere no rule replaced), else None.
    Values shorter than 4 characters are not looked for (they match by chance)."""
    text = written_values(model)
    secret = next((s for s in secrets if len(s.value) >= _MIN_CHECKED and s.value in text), None)
    return None if secret is None else _left_behind(model, secret)


def _left_behind(model: JobModel, secret: MovedSecret) -> str:
    where = where_value_shows(model, secret.value)
    if secret.kind == secretkinds.ENV_ASSIGNMENT:
        what = f"the value of the secret variable {secret.label} also shows in this job"
    else:
        what = f"the secret value ({secret.label}) also shows elsewhere in this line"
    return f"{what} ({where}), so it cannot be replaced safely: move it out by hand"


def written_values(model: JobModel) -> str:
    """Return every text of a job file that comes from the crontab (not from a mask)."""
    return "\n".join([model.shell or "", *model.command, *(v for _k, v in model.env)])


def _job_texts(job: PlannedJob) -> str:
    return "\n".join([written_values(job.model), job.model.original, *job.changes, *job.todo])


def hide_known_values(plan: ImportPlan) -> None:
    """Mask every secret value found anywhere wherever else it shows, and drop a job
    whose command holds one that no rule moved out (found on another line, or
    elsewhere in its own line, where it was too short for ``secret_left_behind``).

    One regex pass over everything first: usually no value shows anywhere but where
    the scanner masked it, and nothing else is done."""
    known = plan.known
    texts = [_job_texts(job) for job in plan.jobs]
    texts += [f"{item.text}\n{item.reason}" for item in plan.skipped]
    if not known.contains("\n".join(texts)):
        return
    kept = []
    for job, text in zip(plan.jobs, texts):
        if not known.contains(text):
            kept.append(job)
            continue
        model = job.model
        value = known.first(written_values(model))
        if value is not None:
            where = model.origins[0]
            reason = _known_value_reason(plan, job, value)
            hidden = known.hide(model.original)
            plan.skipped.append(Skipped(where.source, where.line, "unsupported", reason, hidden))
            continue
        job.model = dataclasses.replace(model, original=known.hide(model.original))
        job.changes = [known.hide(text) for text in job.changes]
        job.todo = [known.hide(text) for text in job.todo]
        kept.append(job)
    if len(kept) != len(plan.jobs):
        plan.jobs = kept
        plan.secrets = {s.reference: s for job in kept for s in job.secrets}
    plan.skipped = [
        dataclasses.replace(item, text=known.hide(item.text), reason=known.hide(item.reason))
        for item in plan.skipped
    ]


def _known_value_reason(plan: ImportPlan, job: PlannedJob, value: str) -> str:
    own = next((s for s in job.secrets if s.value == value), None)
    if own is not None:
        return _left_behind(job.model, own)
    where = where_value_shows(job.model, value)
    other = next((s for s in plan.secrets.values() if s.value == value and s.jobs), None)
    found = f" (job {other.jobs[0]}'s {other.label})" if other else ""
    return (
        f"its command holds ({where}) a value that is a secret on another line{found}, "
        "so it cannot be replaced safely here: move it out by hand"
    )


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
