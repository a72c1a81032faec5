"""Find secrets written inline in a cron command or environment value, and mask them.

Pure: no I/O. ``cronsync inventory`` masks what it prints with :func:`mask_secrets`;
``cronsync import`` uses :func:`find_secrets` to move each value out of the repository
(every :class:`~cronsync.secretscan.kinds.Finding` carries the value, a span to cut and a
suggested variable name). What counts as a secret, and the kinds, are in
:mod:`cronsync.secretscan.kinds`; the detectors in :mod:`cronsync.secretscan.commands` (words of a
command) and :mod:`cronsync.secretscan.patterns` (patterns in the raw text).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from cronsync.secretscan.commands import TextScan, scan_text
from cronsync.secretscan.kinds import MASK, Finding
from cronsync.secretscan.names import is_secret_assignment


def find_secrets(text: str) -> list[Finding]:
    """Find every inline secret in a command line or value.

    Args:
        text: a cron command as written (``%`` and all), a shell line, or a value.
    Returns:
        the findings in text order, never overlapping. Each span covers the value only
        (``--password=***``, ``https://user:***@host``, ``'***'`` keeps its quotes).
    """
    return scan_text(text)


LINE_READINGS = 9
"""How many first words of a crontab line may be where its command starts: after a
macro (1) and a user (2), after five time fields (5) and a user (6), after six time
fields and a user, behind one ``#`` word: any of the first nine."""
_TIME_FIELDS = re.compile(r"[ \t]*(?:[0-9*/,#-]+[ \t]+)*")
"""Leading words without a letter (time fields, ``#``): no secret, program or flag."""


def find_line_secrets(line: str, command_at: int = 0) -> list[Finding]:
    """Find every inline secret in a crontab line, read every way cron could read it.

    Where a command starts depends on reading the line right (a macro or five time
    fields, a user field or none, ``#`` before a commented-out job); a line cron rejects,
    or a file read in the wrong format, is read wrong. So the detectors that look at a
    command's program (``redis-cli -a X``, ``mysql -pX``) are run with the program at
    each of the line's first :data:`LINE_READINGS` words, and what any reading finds
    counts.

    Args:
        line: one crontab line (without its ``\\n``), or any part of one.
        command_at: where the command starts in the reading that seems right (its
            index in ``line``); where readings agree on a secret, that reading names it.
    Returns:
        the findings, in text order, never overlapping (spans in ``line``).
    """
    return LineScan(line).findings(command_at)


class LineScan:
    """One crontab line scanned once for what every reading of it shares;
    ``LineScan(line).findings(at)`` is ``find_line_secrets(line, at)``, for any number
    of ``at`` (the import needs the line at its command and at 0), each after the first
    for the cost of the line's first command only."""

    def __init__(self, line: str) -> None:
        """Scan ``line`` (as for :func:`find_line_secrets`); never raises."""
        skip = _TIME_FIELDS.match(line)
        self._start = skip.end() if skip else 0
        self._scan = TextScan(line[self._start :], LINE_READINGS)

    def findings(self, command_at: int = 0) -> list[Finding]:
        """Return :func:`find_line_secrets` of the line at ``command_at``."""
        start = self._start
        found = self._scan.findings(max(command_at - start, 0))
        if not start:
            return found
        return [dataclasses.replace(f, start=f.start + start, end=f.end + start) for f in found]


def mask_secrets(text: str) -> str:
    """Return ``text`` with the value of every finding replaced by ``***``.

    Args:
        text: as for :func:`find_secrets`.
    Returns:
        the masked text; ``text`` itself when nothing is found.
    """
    return mask_findings(text, find_secrets(text))


def mask_findings(text: str, findings: Sequence[Finding]) -> str:
    """Replace the spans of ``findings`` (from :func:`find_secrets` on ``text``) by ``***``."""
    pieces: list[str] = []
    done = 0
    for finding in sorted(findings, key=lambda f: f.start):
        pieces += [text[done : finding.start], MASK]
        done = finding.end
    pieces.append(text[done:])
    return "".join(pieces)


def mask_env_value(name: str, value: str) -> str:
    """Mask an environment value for display.

    Args:
        name: the variable's name. value: its value as the job sees it.
    Returns:
        ``***`` when ``NAME=value`` sets a secret
        (:func:`~cronsync.secretscan.names.is_secret_assignment`: a secret-looking name, a
        KEY-named value that is no path, a webhook URL, a DSN with a key), else the
        value with any inline secret masked (a password in a URL, a known token shape).
    """
    if is_secret_assignment(name, value):
        return MASK
    return mask_secrets(value)
