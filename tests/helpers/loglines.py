"""The agent's and the broker's log lines, as the tests read them.

Written to a file or a pipe (never the journal in a test), a line is
``2026-12-07T16:00:00Z cronsync agent: [LEVEL: ]MESSAGE`` (``cronsync.host.logline``):
:func:`agent_line` and :func:`broker_line` give the regex of one, its level included,
so a test says which level a line must have. :class:`LogLines` is a log function
(``log(message, level)``) that keeps what it was given, for components that take one.
"""

from __future__ import annotations

import re
import threading

from cronsync.host.logline import DEBUG, ERROR, INFO, WARNING

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
LEVELS = {"error": ERROR, "warning": WARNING, "info": INFO, "debug": DEBUG}
# A level, a word on the line (none for information) or, under the journal, <N>.
_WORD = {"error": "error: ", "warning": "warning: ", "info": "", "debug": "debug: "}


def log_line(tag: str, message: str, level: str = "info") -> str:
    """The regex (for ``re.M``) of a line of ``tag``'s log whose message matches
    ``message`` (a regex; anchor its end with ``$`` if need be), written at ``level``
    (``error``, ``warning``, ``info``, ``debug``); ``any`` accepts every level."""
    word = "(?:(?:error|warning|debug): )?" if level == "any" else _WORD[level]
    return rf"^{STAMP} {re.escape(tag)}: {word}{message}"


def agent_line(message: str, level: str = "info") -> str:
    """:func:`log_line` of ``cronsync agent``."""
    return log_line("cronsync agent", message, level)


def broker_line(message: str, level: str = "info") -> str:
    """:func:`log_line` of ``cronsync broker``."""
    return log_line("cronsync broker", message, level)


def journal_line(tag: str, message: str, level: str = "info") -> str:
    """The regex of the same line written to the journal: ``<N>TAG: MESSAGE``."""
    return rf"^<{LEVELS[level]}>{re.escape(tag)}: {message}"


class LogLines(list[str]):
    """A log function for the tests: the messages it was given, in order (it is a list
    of them), and ``levels``, the level of each (from any thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, message: str, level: int = INFO) -> None:
        with self._lock:
            self.levels.append(level)
            self.append(message)

    def at(self, level: int) -> list[str]:
        """The messages logged at ``level``."""
        with self._lock:
            return [message for message, at in zip(self, self.levels) if at == level]
