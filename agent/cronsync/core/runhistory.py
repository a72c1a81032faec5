"""Where a job's runs under its earlier users are kept: the names of the layout.

When a job's ``user`` changes, the sync (:mod:`cronsync.host.jobdirs`) sets the old
user's run folder and log folder aside, as they are, under a root-only folder of the
same parent, and the new user starts with fresh ones::

    <runs_dir>/.history/<job>/<entry>/   the old runs/<job>/ (records, last.json, ...)
    <log_dir>/.history/<job>/<entry>/    the old <log_dir>/<job>/ (run logs)

``<entry>`` is ``<UTC time of the move>-<old user>``, so entries sort oldest first.
Readers (:mod:`cronsync.run.history`: ``history``, ``logs``, ``status``) look there too.
Shared by both sides, so it imports nothing (pure).
"""

from __future__ import annotations

import re

HISTORY_DIR = ".history"  # no job has this name: job names start with a letter
HISTORY_MODE = 0o700  # root's only: neither the old nor the new user may read or change it

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # for time.strftime, in UTC
_SAFE_OWNER = re.compile(r"[A-Za-z0-9_.$-]{1,64}")
ENTRY_NAME = re.compile(r"[0-9]{8}T[0-9]{6}Z-[A-Za-z0-9_.$-]{1,64}(-[0-9]{1,4})?")


def entry_name(stamp: str, owner: str, attempt: int = 0) -> str:
    """Return the name of a history entry.

    Args:
        stamp: the moment of the move, formatted with ``time.strftime(STAMP_FORMAT)``.
        owner: the old user's name (a name unsafe in a file name is given as ``uidN``
            by the caller; anything else is replaced by ``unknown``).
        attempt: above 0 when an entry of that name exists already (``-N`` is added).

    Returns:
        ``<stamp>-<owner>`` or ``<stamp>-<owner>-<attempt>``.
    """
    safe = owner if _SAFE_OWNER.fullmatch(owner) and owner not in (".", "..") else "unknown"
    return f"{stamp}-{safe}" + (f"-{attempt}" if attempt else "")


def is_entry_name(name: str) -> bool:
    """Whether ``name`` is a history entry's name (anything else there is skipped)."""
    return ENTRY_NAME.fullmatch(name) is not None
