"""Facts about the host cronsync runs on (adapter: reads /etc and the user database)."""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

_ZONEINFO_MARK = "zoneinfo/"


def detect_host_name() -> str:
    """Return this host's short name (``batch-1`` of ``batch-1.example.internal``)."""
    return socket.gethostname().split(".", 1)[0] or "localhost"


def detect_host_timezone(etc: Path = Path("/etc")) -> str:
    """Return the zone the cron daemon schedules in.

    Debian cron uses the system zone: ``/etc/timezone``, else the target of the
    ``/etc/localtime`` link; ``UTC`` when neither says.
    """
    try:
        name = (etc / "timezone").read_text(encoding="utf-8").strip()
        if name:
            return name
    except (OSError, UnicodeDecodeError):
        pass
    try:
        target = os.readlink(etc / "localtime")
    except OSError:
        return "UTC"
    index = target.rfind(_ZONEINFO_MARK)
    return target[index + len(_ZONEINFO_MARK) :] if index >= 0 else "UTC"


def existing_users() -> frozenset[str]:
    """Return the names of every user this host knows (passwd, NSS)."""
    return frozenset(entry.pw_name for entry in pwd.getpwall())
