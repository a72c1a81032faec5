"""The files ``cronsync import`` writes, as text: job files, ``cronsync.toml``, secrets.

Pure: a model in, TOML text out. A small TOML writer for what these files hold
(strings, booleans, arrays of strings, flat tables); every string is a basic string
with every control character escaped, so any text (tabs, ``\\r``, quotes, backslashes,
non-ASCII) round-trips through ``tomllib`` unchanged.

Every imported job file starts with one origin comment per crontab line it replaces::

    # cronsync-import: source=/etc/crontab line=12 masked-sha256=<hex digest>

``cronsync adopt`` reads these (:func:`parse_origins`) from the installed release to
find the original lines to retire, and refuses a line whose digest changed. The digest
is of the line with its secrets masked (:func:`masked_line`, the masking MIGRATION.md
shows), never of the line as written: anyone who reads the repository could test
guesses of a short password against that. Job files of an older import hold
``sha256=`` of the line as written; adopt still reads those (the repository holds
them already), the import writes none.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional, Union
from urllib.parse import quote, unquote

from cronsync.core.textshow import visible
from cronsync.crontab.printable import read_line_secrets

ORIGIN_PREFIX = "# cronsync-import: "
_ORIGIN = re.compile(
    r"# cronsync-import: source=(?P<source>\S+) line=(?P<line>[0-9]+) "
    r"(?P<masked>masked-)?sha256=(?P<digest>[0-9a-f]{64})[ \t]*"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPECIAL = re.compile('["\\\\\x00-\x1f\x7f\ud800-\udfff]')  # what needs an escape
_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
_ESCAPES.update({code: f"\\u{code:04X}" for code in [*range(0x20), 0x7F] if code not in _ESCAPES})
# Safe in an origin's source= word: everything else is %-escaped (blanks, '%', controls).
_SOURCE_SAFE = "/-_.~+@:,="

TomlValue = Union[str, bool, int, Sequence[str]]


# --- values ---------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """Return ``text`` as a TOML basic string (quotes, backslashes and every control
    character escaped; a lone surrogate becomes U+FFFD, which TOML cannot hold)."""
    if not _SPECIAL.search(text):
        return f'"{text}"'
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return '"' + text.translate(_ESCAPES) + '"'


def toml_key(key: str) -> str:
    """Return ``key`` bare when TOML allows it, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: TomlValue) -> str:
    """Return a string, boolean, integer or array of strings as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    return "[" + ", ".join(toml_string(item) for item in value) + "]"


def _comment(text: str) -> str:
    return ("# " + visible(text)).rstrip()


# --- origins --------------------------------------------------------------------------


def line_digest(line: bytes) -> str:
    """Return the hex SHA-256 of one crontab line as stored (without its ``\\n``)."""
    return hashlib.sha256(line).hexdigest()


def masked_line(line: bytes) -> bytes:
    """Return a crontab line (bytes, no ``\\n``) with every secret the detectors find
    masked (``read_line_secrets``), other bytes kept (bytes that are not UTF-8 too)."""
    text = line.decode("utf-8", "surrogateescape")
    return read_line_secrets(text).shown().encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=65536)  # adopt looks for each origin in every line of a file
def masked_digest(line: bytes) -> str:
    """Return :func:`line_digest` of :func:`masked_line` of ``line``: it tells a line
    apart from a changed one without being a test for guesses of its secrets."""
    return line_digest(masked_line(line))


@dataclass(frozen=True)
class Origin:
    """One crontab line a job replaces.

    Attributes:
        source: the host path of the crontab (``/etc/cron.d/backup``), as the job file
            says it: whoever can push writes it (adopt checks it before any use).
        line: the 1-based line number.
        sha256: the digest of the line when it was imported.
        masked: True when ``sha256`` is :func:`masked_digest` of the line (what the
            import writes), False for :func:`line_digest` of it (older imports).
    """

    source: str
    line: int
    sha256: str
    masked: bool = False

    @classmethod
    def of_line(
        cls, source: str, number: int, line: bytes, masked: Optional[bytes] = None
    ) -> Origin:
        """Return the origin the import records for line ``number`` of ``source``
        (its :func:`masked_digest`); ``masked`` is :func:`masked_line` of ``line``
        when the caller knows it already (it is not scanned again then)."""
        digest = masked_digest(line) if masked is None else line_digest(masked)
        return cls(source, number, digest, masked=True)

    def matches(self, line: bytes) -> bool:
        """Whether ``line`` (no ``\\n``) has the digest this origin recorded."""
        digest = masked_digest(line) if self.masked else line_digest(line)
        return digest == self.sha256

    def comment(self) -> str:
        """Return the origin comment line (no newline)."""
        source = quote(self.source, safe=_SOURCE_SAFE)
        key = "masked-sha256" if self.masked else "sha256"
        return f"{ORIGIN_PREFIX}source={source} line={self.line} {key}={self.sha256}"


def parse_origins(text: str) -> list[Origin]:
    """Return the origins written in the leading comment block of a job file.

    Args:
        text: a job file's text.
    Returns:
        the origins in file order; none for a file without origin comments (a job not
        made by ``cronsync import``). Only comments before the first key count.
    """
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        match = _ORIGIN.fullmatch(line.rstrip("\r"))
        if match:
            source, number, masked = unquote(match["source"]), int(match["line"]), match["masked"]
            found.append(Origin(source, number, match["digest"], masked=masked is not None))
    return found


# --- files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobModel:
    """An imported job, as its file will say it.

    Attributes:
        name: the job name (the file is ``jobs/NAME.toml``).
        origins: the crontab lines it replaces (the first is where it came from).
        original: the first original line, secrets masked, quoted in a comment.
        description, owner, schedule, user: the job's fields.
        command: the argv, or () when ``shell`` is set.
        shell: the /bin/sh line, or None.
        workdir: the directory it starts in, or None.
        env: variables, in order. secrets: (variable, secret reference) pairs.
        enabled: False for a commented-out entry imported disabled (``reason`` says so).
        notes: comment lines written under the header (what changed, in short).
    """

    name: str
    origins: tuple[Origin, ...]
    original: str
    description: str
    owner: str
    schedule: str
    user: str
    command: tuple[str, ...] = ()
    shell: Optional[str] = None
    workdir: Optional[str] = None
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()
    enabled: bool = True
    reason: Optional[str] = None
    notes: tuple[str, ...] = ()


def _pairs(model: JobModel) -> Iterable[tuple[str, TomlValue]]:
    yield "description", model.description
    yield "owner", model.owner
    yield "schedule", model.schedule
    yield "user", model.user
    if model.shell is not None:
        yield "shell", model.shell
    else:
        yield "command", model.command
    if model.workdir is not None:
        yield "workdir", model.workdir
    if not model.enabled:
        yield "enabled", False
        if model.reason is not None:
            yield "reason", model.reason


def _table(name: str, items: Sequence[tuple[str, str]]) -> list[str]:
    if not items:
        return []
    return ["", f"[{name}]", *(f"{toml_key(key)} = {toml_string(value)}" for key, value in items)]


def render_job(model: JobModel) -> str:
    """Return the text of ``jobs/NAME.toml`` for an imported job (ends in a newline)."""
    first = model.origins[0] if model.origins else None
    where = f"{first.source}:{first.line}" if first else "?"
    lines = [origin.comment() for origin in model.origins]
    lines.append(_comment(f"Imported by `cronsync import` from {where}; see MIGRATION.md."))
    lines.append(_comment(f"Original line: {model.original}"))
    lines += [_comment(note) for note in model.notes]
    lines.append("")
    lines += [f"{key} = {toml_value(value)}" for key, value in _pairs(model)]
    lines += _table("env", model.env)
    lines += _table("secrets", model.secrets)
    return "\n".join(lines) + "\n"


def render_repo_config(timezone: str, sources: Sequence[str]) -> str:
    """Return ``cronsync.toml`` for an imported repository.

    Args:
        timezone: the host's zone, so schedules mean what they meant in cron.
        sources: the crontabs imported (named in a comment).
    """
    lines = [
        "# cronsync.toml — written by `cronsync import`; review MIGRATION.md first.",
        _comment("Imported from: " + (", ".join(sources) or "nothing")),
        "",
        "[defaults]",
        f"timezone = {toml_string(timezone)}  # the host's zone: schedules keep their meaning",
        '# cron let a run overlap the previous one; cronsync\'s default ("forbid") skips it.',
        "# Keep allow where that is intended; set concurrency per job otherwise.",
        'concurrency = "allow"',
    ]
    return "\n".join(lines) + "\n"


def render_secrets(values: Sequence[tuple[str, str]], header: Sequence[str] = ()) -> str:
    """Return a secrets file in the file backend's format: ``"name" = "value"`` lines.

    Args:
        values: (secret reference, value) pairs, in order.
        header: comment lines written first.
    """
    lines = [_comment(line) for line in header]
    lines += [f"{toml_string(name)} = {toml_string(value)}" for name, value in values]
    return "\n".join(lines) + "\n"
