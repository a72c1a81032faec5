"""How ``cronsync adopt`` comments crontab lines out, and how it knows the ones it did (pure).

A retired entry line becomes::

    # cronsync-adopted (job NAME, line N): <the line, every secret masked>

N is the line's number at import time (its origin's). The tag, not the text, says which
origin a comment retired: the masked text cannot be checked against the digest the
import recorded, and a digest of the line itself would let anyone who reads the crontab
test guesses of the secret. A secret setting (``DB_PASSWORD=...``) that no entry line
below it still uses is commented out too, masked::

    # cronsync-adopted (secret setting no job uses now): DB_PASSWORD=***

Lines adopted before cronsync masked them (``# cronsync-adopted: <line as it was>``)
are still recognised, by the import's digest, so they can be rewritten masked.

A line is the one an origin names when :meth:`~cronsync.migrate.jobwriter.Origin.matches`
says so: the digest of the line with its secrets masked (an older import's job file: of
the line as written). So a line whose only change since the import is a secret value
the detectors mask is still taken for the original.

Masking is the one every text cronsync shows from a crontab gets
(:func:`cronsync.crontab.printable.read_line_secrets`: the secret scanner's detectors
over every reading of the line, and the value of a setting that holds a secret).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

from cronsync.core.textshow import visible
from cronsync.crontab.line import BLANKS, parse_env_line
from cronsync.migrate.jobwriter import Origin, masked_line

ADOPTED = b"# cronsync-adopted"
"""What every line adopt commented out starts with."""
OLD_ADOPTED = b"# cronsync-adopted: "
"""How adopt commented a line out before it masked secrets (the line as it was)."""
SETTING = b"# cronsync-adopted (secret setting no job uses now): "
_TAG = re.compile(rb"# cronsync-adopted \(job (?P<job>[a-z][a-z0-9_-]*), line (?P<line>[0-9]+)\): ")


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "surrogateescape")  # bytes that are not UTF-8 survive


def mask_line(line: bytes) -> bytes:
    """Return a crontab line (no ``\\n``) with its secrets masked, other bytes kept."""
    return masked_line(line)


def shown(line: bytes) -> str:
    """Return a crontab line as adopt prints it: secrets masked, controls escaped."""
    return visible(_decode(mask_line(line)))


def retired_line(line: bytes, job: str, origin: Origin) -> bytes:
    """Return the comment that retires ``line`` (an entry, or one adopted before) for
    ``origin`` of ``job``; its secrets are masked."""
    tag = f"# cronsync-adopted (job {job}, line {origin.line}): ".encode()
    text = adopted_text(line)
    return tag + mask_line(line if text is None else text)


def retired_setting(line: bytes) -> bytes:
    """Return the comment that retires a secret setting no job uses now (masked)."""
    return SETTING + mask_line(line)


def adopted_text(line: bytes) -> Optional[bytes]:
    """Return the crontab text an adopt comment holds, or None when ``line`` is none."""
    match = _TAG.match(line)
    if match:
        return line[match.end() :]
    if line.startswith(SETTING):
        return line[len(SETTING) :]
    return line[len(OLD_ADOPTED) :] if line.startswith(OLD_ADOPTED) else None


def is_adopted(line: bytes, job: str, origin: Origin) -> bool:
    """Whether ``line`` is adopt's comment for ``origin`` of ``job``: tagged so, or (the
    old form) holding the very line the import read."""
    match = _TAG.match(line)
    if match:
        return match["job"].decode() == job and int(match["line"]) == origin.line
    return line.startswith(OLD_ADOPTED) and origin.matches(line[len(OLD_ADOPTED) :])


def holds_a_secret(line: bytes) -> bool:
    """Whether an adopt comment still shows a secret (one written before masking)."""
    text = adopted_text(line)
    return text is not None and mask_line(text) != text


def locate(lines: Sequence[bytes], job: str, origin: Origin) -> tuple[Optional[int], Optional[int]]:
    """Find ``origin`` of ``job`` in a crontab's lines.

    Returns:
        (index to retire, index already adopted): the line at the origin's number if
        its digest is unchanged or it is adopt's comment for it, else the only such
        line of the file (lines were added above it); (None, None) when neither is
        found once (the line changed, or is there more than once).
    """
    index = origin.line - 1
    if index < len(lines):
        if origin.matches(lines[index]):
            return index, None
        if is_adopted(lines[index], job, origin):
            return None, index
    same = [i for i, line in enumerate(lines) if origin.matches(line)]
    done = [i for i, line in enumerate(lines) if is_adopted(line, job, origin)]
    if len(same) == 1:
        return same[0], None
    if not same and len(done) == 1:
        return None, done[0]
    return None, None


def unused_secret_settings(lines: Sequence[bytes], retiring: set[int]) -> list[int]:
    """Return the indexes of the secret settings no entry line below them still uses.

    Args:
        lines: a crontab's lines. retiring: indexes of the entry lines adopt retires.
    Returns:
        indexes of ``NAME=value`` lines that show a secret (masking changes them) with
        nothing below them but comments, blanks, settings and retired lines; any
        other line below (even one cron rejects) keeps a setting in use.
    """
    found = []
    in_use = False
    for index in range(len(lines) - 1, -1, -1):
        body = _decode(lines[index]).lstrip(BLANKS)
        if index in retiring or not body.strip() or body.startswith("#"):
            continue
        if parse_env_line(body) is None:
            in_use = True
        elif not in_use and mask_line(lines[index]) != lines[index]:
            found.append(index)
    return sorted(found)
