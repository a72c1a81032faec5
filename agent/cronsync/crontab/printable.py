"""Where crontab text becomes text cronsync shows: every secret masked, whatever the
state of the line.

Pure. Everything cronsync prints or writes from a crontab (``cronsync inventory`` in
every format, ``cronsync import``'s MIGRATION.md, job files and summaries) is made from
what this module returns:

* :func:`read_line_secrets` finds the secrets of one line read every way cron could
  read it (``secretscan.scan.find_line_secrets``: the command may start at any of the
  first words, so a line cron rejects or a file read in the wrong format is masked all
  the same), plus the value of an environment line that sets a secret (cron's own
  reading of ``NAME = "value"``). :meth:`LineSecrets.shown` is a piece of the line with
  each of them masked; :meth:`LineSecrets.record` hides the line's values in every
  text of a record made from it, so a fragment of the line (a user field, a word
  quoted in a problem) is masked too.
* :class:`Redactor` remembers every value found in a file and hides them in a whole
  report when one shows on a line where no detector found it (a value set on one line
  and echoed on another).

Both walk every text of a record, however deep (:func:`hide_in`), so a field a record
gains later cannot be forgotten. Values shorter than ``secretscan.known.MIN_HIDDEN``
characters are masked only where a detector found them.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, TypeVar, cast

from cronsync.core.textshow import visible
from cronsync.crontab.line import BLANKS, parse_env_line
from cronsync.secretscan import kinds, scan
from cronsync.secretscan.known import MIN_HIDDEN, KnownValues

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_PERCENT = re.compile(r"\\?%")  # where cron's % rule may cut a value in what it shows
Record = TypeVar("Record")


@dataclass(frozen=True)
class LineSecrets:
    """One crontab line and the secrets found in it in any reading.

    Attributes:
        line: the line as written (no ``\\n``).
        findings: each secret's span in ``line`` and its value (spans may overlap).
    """

    line: str
    findings: tuple[kinds.Finding, ...] = ()

    def shown(self, start: int = 0, end: Optional[int] = None) -> str:
        """Return ``line[start:end]`` with every part of a secret in it replaced by
        ``***`` (one ``***`` for overlapping or adjoining secrets)."""
        if not self.findings:
            return self.line[start:end]
        stop = len(self.line) if end is None else end
        pieces: list[str] = []
        done = start
        for first, last in self._spans(start, stop):
            if first > done or not pieces:
                pieces += [self.line[done:first], kinds.MASK]
            done = max(done, last)
        pieces.append(self.line[done:stop])
        return "".join(pieces)

    def _spans(self, start: int, stop: int) -> list[tuple[int, int]]:
        spans = [(max(f.start, start), min(f.end, stop)) for f in self.findings]
        return sorted((first, last) for first, last in spans if first < last)

    def cut_at(self, start: int) -> Optional[str]:
        """Return the label of a secret that ``start`` cuts in two, if any."""
        cut = (f.label for f in self.findings if f.start < start < f.end)
        return next(cut, None)

    def in_suffix(self, start: int) -> list[kinds.Finding]:
        """Return the findings wholly inside ``line[start:]``, spans counted from
        ``start`` (see :meth:`cut_at` for one that is not)."""
        found = []
        for finding in self.findings:
            if finding.start >= start:
                shifted = (finding.start - start, finding.end - start)
                found.append(dataclasses.replace(finding, start=shifted[0], end=shifted[1]))
        return found

    def hide(self, text: str) -> str:
        """Return ``text`` with each of the line's values (:meth:`values`, from
        ``MIN_HIDDEN`` characters, the longest first) replaced by ``***``."""
        for value in self._hidden_values:
            text = text.replace(value, kinds.MASK)
        return text

    @functools.cached_property
    def _hidden_values(self) -> list[str]:
        found = {value for value in self.values() if len(value) >= MIN_HIDDEN}
        return sorted(found, key=len, reverse=True)

    def record(self, record: Record) -> Record:
        """Return ``record`` (made from this line) with the line's values hidden in
        every text of it (see :func:`hide_in`); ``record`` itself when none shows."""
        if not self.findings:
            return record
        values = self._hidden_values
        if not any(value in text for text in _texts(record) for value in values):
            return record
        return hide_in(record, self.hide)

    def values(self) -> Iterator[str]:
        """Yield each secret as it may show elsewhere: its value, as written in the line
        (quotes and escapes), with controls escaped, and its pieces between ``%``."""
        for finding in self.findings:
            written = self.line[finding.start : finding.end]
            for text in {finding.value, written}:
                yield text
                yield visible(text)
                if "%" in text:
                    yield from _PERCENT.split(text)


LineScans = dict[tuple[str, int], LineSecrets]
"""Lines scanned already: ``(line, command_at)`` -> ``read_line_secrets(line, command_at)``."""


def read_line_secrets(line: str, command_at: int = 0) -> LineSecrets:
    """Find the secrets of one crontab line in every reading of it, whatever it is (an
    entry, an environment setting, a commented-out job, prose).

    Args:
        line: one line as written (no ``\\n``; a trailing ``\\r`` is not scanned).
        command_at: where the command starts in the reading that seems right: where
            readings agree on a secret, that one names it (see
            ``secretscan.scan.find_line_secrets``).
    Returns:
        the line with what the detectors find when its command starts at any of its
        first words, and the value of a setting whose name or value marks a secret
        (``DB_PASSWORD = 'x'``). Never raises.
    """
    body = line.lstrip(BLANKS)
    setting = None if body.startswith("#") else parse_env_line(body)
    return line_secrets(line, command_at, setting)


def line_secrets(
    line: str,
    command_at: int,
    setting: Optional[tuple[str, str]],
    scans: Optional[LineScans] = None,
) -> LineSecrets:
    """:func:`read_line_secrets` for a caller that has read the line already.

    Args:
        setting: ``(name, value)`` when cron reads the line as an environment setting
            (``line.parse_env_line``), else None.
        scans: when given, a line that is no setting is added to it at 0 (what
            ``read_line_secrets(line)`` returns: what the masked digest of an imported
            line's origin masks, which may find what the reading at the command does
            not) and, when it holds a secret, at ``command_at`` (what this returns);
            the reading at 0 costs a second scan of the line's first command only.
    """
    scanned = line[:-1] if line.endswith("\r") else line
    readings = scan.LineScan(scanned)
    value = _setting_secret(line, setting) if setting is not None else None
    found = LineSecrets(line, tuple(readings.findings(command_at)) + ((value,) if value else ()))
    if scans is not None and setting is None:
        if found.findings:
            scans[(line, command_at)] = found
        at_0 = found if command_at == 0 else LineSecrets(line, tuple(readings.findings(0)))
        scans[(line, 0)] = at_0
    return found


def _setting_secret(line: str, setting: tuple[str, str]) -> Optional[kinds.Finding]:
    """The value of an environment setting that is a secret, as a finding."""
    name, value = setting
    if not value or scan.mask_env_value(name, value) != kinds.MASK:
        return None
    start = line.find(value, line.index("=") + 1)
    if start < 0:
        return None
    return kinds.Finding(kinds.ENV_ASSIGNMENT, start, start + len(value), name, name, value)


class Redactor:
    """Every secret value found in the lines of a file, hidden wherever it shows."""

    def __init__(self) -> None:
        self.known = KnownValues()
        self._shown: list[str] = []

    def add(self, secrets: LineSecrets) -> None:
        """Remember one line read for the report: its values, and the line as shown."""
        for value in secrets.values():
            self.known.add(value)
        self._shown.append(secrets.shown())

    def record(self, record: Record) -> Record:
        """Return ``record`` (a report of the lines added) with every known value
        hidden in every text of it (see :func:`hide_in`).

        ``record`` itself when no known value shows in any line added outside where a
        detector found it (one regex pass): then no text made from those lines holds
        one but a fragment of its own line, which :meth:`LineSecrets.record` hides.
        """
        if not self.known or not self.known.contains("\n".join(self._shown)):
            return record
        return hide_in(record, self.known.hide)


def hide_in(record: Record, hide: Callable[[str], str]) -> Record:
    """Return ``record`` with ``hide`` applied to every string in it: its fields, and
    strings inside tuples, lists and nested dataclasses (``record`` is a dataclass
    instance, or any of those)."""
    return cast(Record, _hidden(record, hide))


def _hidden(value: object, hide: Callable[[str], str]) -> object:
    if isinstance(value, str):
        return hide(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_hidden(item, hide) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _hidden(getattr(value, f.name), hide) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def _texts(record: object) -> list[str]:
    """Return every string in ``record``, as :func:`hide_in` reaches them."""
    found: list[str] = []
    pending = [record]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            pending.extend(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            pending.extend(_field_values(value))
    return found


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass type -> its fields, in order


def _field_values(value: DataclassInstance) -> list[object]:
    """The field values of a dataclass instance (the names read once per type)."""
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    return [getattr(value, name) for name in names]
