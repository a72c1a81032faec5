"""Cron's ``@`` macros: the table Debian's cron knows, and the advice for one it does not.

Pure. ``unknown_macro_message`` is the error for a macro cron does not know, with the 5
fields to write for another cron's ``@every 5m``. :mod:`cronsync.core.schedule` parses
the macros with this table and raises that error; the English of schedules
(:mod:`cronsync.core.scheduletext`) stays out of the parser's imports.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

MACROS: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

REBOOT = "@reboot"
_INTERVAL = re.compile(r"(?:([0-9]{1,4})h)?(?:([0-9]{1,6})m)?(?:([0-9]{1,8})s)?", re.IGNORECASE)


def unknown_macro_message(name: str, rest: Sequence[str]) -> str:
    """Say that a macro is unknown, with what to write instead.

    Args:
        name: the ``@word`` that is not a cron macro. rest: the words after it.
    Returns:
        the message: the known macros, a close match, the lower-case spelling, or for
        ``@every 5m`` (other crons' syntax) the equivalent 5 fields when there are any.
    """
    known = [REBOOT, *MACROS]
    if name.lower() in known:
        return f"unknown macro {name!r}: cron macros are lower-case ({name.lower()})"
    listed = f"known: {' '.join(known)}"
    if name.lower() == "@every":
        return f"unknown macro {name!r} ({listed}); {_every_advice(''.join(rest))}"
    close = difflib.get_close_matches(name.lower(), known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown macro {name!r} ({hint}{listed})"


def _every_advice(interval: str) -> str:
    """Suggest 5 fields for ``@every <interval>`` (``5m``, ``2h``, ``1h30m``)."""
    match = _INTERVAL.fullmatch(interval)
    if match is None or not any(match.groups()):
        return "write 5 fields instead, e.g. '*/5 * * * *' for every 5 minutes"
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    total, odd_seconds = divmod(hours * 3600 + minutes * 60 + seconds, 60)
    if odd_seconds:
        return f"cron cannot run every {interval}: it runs at most once a minute"
    fields = _every_fields(total)
    if fields is None:
        return (
            f"no 5 fields run every {interval}: cron's steps start again each hour and "
            "day, so use minutes that divide 60 or hours that divide 24"
        )
    return f"for every {interval} write '{fields}'"


def _every_fields(minutes: int) -> str | None:
    """The 5 fields that run every ``minutes``, if cron's steps can say it."""
    if minutes in (1, 60, 1440):
        return {1: "* * * * *", 60: "0 * * * *", 1440: "0 0 * * *"}[minutes]
    if 0 < minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if 0 < minutes < 1440 and minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return f"0 */{minutes // 60} * * *"
    return None
