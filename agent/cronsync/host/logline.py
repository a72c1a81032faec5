"""One line of the agent's or the broker's log, with its level, for journald or a file.

Under systemd, a service's stdout and stderr go to the journal, and a line that begins
``<N>`` (sd-daemon(3); the units keep ``SyslogLevelPrefix=yes``) is stored with
priority N, so ``journalctl -p warning -u cronsync-agent`` shows the failures: the
journal adds its own timestamp. Anywhere else (a terminal, a file, a pipe) a line
begins with an ISO 8601 UTC timestamp and says its level in a word when it is not
plain information. systemd says which stream is the journal: ``$JOURNAL_STREAM`` is
``DEVICE:INODE`` of that stream, compared with ``fstat`` of the descriptor written to
(an inherited variable whose stream was redirected since does not match).

    <4>cronsync agent: drift: the managed cron file was edited by hand
    2026-12-07T16:00:00Z cronsync agent: warning: drift: the managed cron file ...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Optional, Protocol, TextIO

# syslog priorities (sd-daemon(3)): the ones cronsync's lines use.
ERROR, WARNING, INFO, DEBUG = 3, 4, 6, 7
_WORDS = {ERROR: "error", WARNING: "warning", DEBUG: "debug"}


class Log(Protocol):
    """Writes one line of a log: ``log(message)`` (information) or
    ``log(message, WARNING)``."""

    def __call__(self, message: str, level: int = INFO) -> None: ...


def journal_stream_is(fd: int, journal_stream: Optional[str]) -> bool:
    """Whether descriptor ``fd`` is the journal's stream.

    Args:
        fd: the descriptor a line is written to.
        journal_stream: ``$JOURNAL_STREAM`` (``DEVICE:INODE``, decimal), or None.

    Returns:
        True when the variable names the device and inode ``fstat(fd)`` reports; False
        when it is missing or malformed, or ``fd`` is something else or closed.
    """
    device, colon, inode = (journal_stream or "").partition(":")
    if not colon or not device.isdigit() or not inode.isdigit():
        return False
    try:
        info = os.fstat(fd)
    except OSError:
        return False
    return info.st_dev == int(device) and info.st_ino == int(inode)


def format_lines(tag: str, message: str, level: int, *, journald: bool, now: datetime) -> str:
    """The text written for ``message``: one line per line of it, each with the prefix.

    Args:
        tag: who speaks (``cronsync agent``).
        message: what happened; a message of several lines gives as many log lines,
            each with the level (so none of them falls to the journal's default).
        level: a syslog priority, 0 to 7 (``ERROR``, ``WARNING``, ``INFO``, ``DEBUG``).
        journald: prefix ``<N>`` instead of a timestamp and a level word.
        now: the time stamped on a line not for the journal (shown in UTC, to the
            second).

    Returns:
        The lines, each ending in a newline.

    Raises:
        ValueError: ``level`` is not a syslog priority.
    """
    if not 0 <= level <= 7:
        raise ValueError(f"log level {level} is not a syslog priority (0-7)")
    if journald:
        prefix = f"<{level}>{tag}: "
    else:
        stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        word = _WORDS.get(level, "error" if level < ERROR else "")
        prefix = f"{stamp} {tag}: {word + ': ' if word else ''}"
    return "".join(f"{prefix}{line}\n" for line in message.splitlines() or [""])


def _fileno(stream: TextIO) -> int:
    try:
        return stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both; a closed stream
        return -1


class LogWriter:
    """A :class:`Log` writing ``TAG: MESSAGE`` lines to a stream, for the journal or not
    (decided at each line, by :func:`journal_stream_is`), in one write and flushed, so
    that lines from several threads never interleave.

    Args:
        tag: who speaks (``cronsync agent``, ``cronsync broker``).
        stream: returns the stream to write to (looked up at each line, so a replaced
            ``sys.stdout`` is followed).
        clock: the time of a line (tests pass their own).
    """

    def __init__(
        self,
        tag: str,
        stream: Callable[[], TextIO],
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.tag = tag
        self._stream = stream
        self._clock = clock

    def __call__(self, message: str, level: int = INFO) -> None:
        """Write ``message`` at ``level`` (raises ValueError for a level outside 0-7)."""
        stream = self._stream()
        journald = journal_stream_is(_fileno(stream), os.environ.get("JOURNAL_STREAM"))
        stream.write(format_lines(self.tag, message, level, journald=journald, now=self._clock()))
        stream.flush()


def stdout_log(tag: str) -> LogWriter:
    """A :class:`LogWriter` on ``sys.stdout``."""
    return LogWriter(tag, lambda: sys.stdout)


def stderr_log(tag: str) -> LogWriter:
    """A :class:`LogWriter` on ``sys.stderr``."""
    return LogWriter(tag, lambda: sys.stderr)
