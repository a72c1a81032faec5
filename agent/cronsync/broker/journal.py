"""The broker's log: one line per event on stderr (the journal, under systemd).

Refusals, delivery problems and errors go here, with the job, the caller's uid and the
reason, never a secret's value. Names and paths in a message may come from job users'
files (a folder named with a newline, say): :func:`printable` escapes every control
character, so no user can forge a line of this log. The agent passes its own log
function instead, wrapped by :func:`sanitized`.
"""

from __future__ import annotations

from cronsync.host.logline import INFO, Log, stderr_log

__all__ = ["Log", "log_to_stderr", "printable", "sanitized"]


def printable(text: str) -> str:
    """``text`` with every control character (newlines included) escaped as ``\\xNN``."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)


def sanitized(log: Log) -> Log:
    """Return ``log`` writing :func:`printable` lines only (at the level asked)."""

    def write(message: str, level: int = INFO) -> None:
        log(printable(message), level)

    return write


_stderr = stderr_log("cronsync broker")


def log_to_stderr(message: str, level: int = INFO) -> None:
    """Write ``cronsync broker: MESSAGE`` on stderr as one line, in one write, with its
    level for the journal or a timestamp (:mod:`cronsync.host.logline`)."""
    _stderr(printable(message), level)
