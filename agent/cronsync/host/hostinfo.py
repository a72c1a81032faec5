"""Facts about the host cronsync runs on (adapter: reads /etc and the user database)."""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

_ZONEINFO_MARK = "zoneinfo/"
DEFAULT_UID_MIN = 1000  # Debian's, and useradd's when login.defs does not say
_UID_LIMIT = 1 << 32
_MAX_LOGIN_DEFS = 1 << 20


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


def _login_defs_number(text: str) -> int:
    """A number as shadow's login.defs reader takes it (strtol with base 0: decimal,
    ``0x`` hex or ``0`` octal).

    Raises:
        ValueError: it is not one.
    """
    if "_" in text:  # Python's int() takes 1_000; shadow does not
        raise ValueError(text)
    if text[:2].lower() == "0x":
        return int(text[2:], 16)
    if len(text) > 1 and text.startswith("0"):
        return int(text[1:], 8)
    return int(text, 10)


def read_uid_min(etc: Path = Path("/etc")) -> int:
    """Return UID_MIN of ``etc/login.defs``: the lowest uid of an ordinary user.

    The last ``UID_MIN`` line counts (as for shadow). A missing, unreadable or
    oversized file, no such line, or a value that is not a uid gives
    :data:`DEFAULT_UID_MIN` (1000, Debian's default). Never raises.
    """
    try:
        with open(etc / "login.defs", "rb") as handle:
            text = handle.read(_MAX_LOGIN_DEFS).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return DEFAULT_UID_MIN
    found = DEFAULT_UID_MIN
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "UID_MIN":
            try:
                value = _login_defs_number(words[1])
            except ValueError:
                continue
            found = value if 0 < value < _UID_LIMIT else found
    return found


def system_users(uid_min: int) -> frozenset[str]:
    """Return the names of the users whose uid is below ``uid_min`` (root and the
    system accounts), from passwd and NSS."""
    return frozenset(entry.pw_name for entry in pwd.getpwall() if entry.pw_uid < uid_min)
