"""What the crontab inventory reports: an entry, a file, and how their problems start.

Pure data: :func:`cronsync.crontab.inventory.inventory_file` fills these; ``cronsync inventory``,
``cronsync import`` and ``cronsync adopt`` read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

REJECTED = "cron rejects this line"
"""How an entry's problem starts when cron cannot read the line (file ignored)."""
FILE_IGNORED = "cron ignores this whole file"
"""How a problem starts when cron ignores the whole file."""
NO_COMMAND = "no command"
PERCENT_CUT = "an unescaped % cuts the command"
"""How an entry's problem starts when cron's ``%`` rule leaves the shell a broken line."""
NOT_EXPANDED = "cron does not expand"
"""How a problem about a ``$`` in an environment value is worded (after ``NAME=value:``)."""


@dataclass(frozen=True)
class InventoryEntry:
    """One cron entry (or commented-out entry) and what cron would do with it.

    Attributes:
        source: the file. line: 1-based line number.
        user: who it runs as (the user field, or the user crontab's owner; None if
            unknown).
        schedule: the time fields as written (blanks normalised), or a macro; ``""``
            for a line cron cannot read as an entry.
        description: the schedule in English (``cronsync.core.scheduletext.describe``);
            "never" when it can never fire.
        next_run: the next time cron starts it, in the host zone; None if never, at boot
            only, or not run at all.
        command: the command field as written (``%`` and ``\\%`` included), secrets
            masked.
        shell_command: what cron hands to the shell after ``%`` processing, masked.
        stdin: what cron feeds the command's standard input (after ``%``), masked;
            None when the command has no unescaped ``%``.
        env: the environment lines in force above the entry, in order, secret values
            masked.
        managed: the file is cronsync's own (starts with ``render.HEADER``).
        commented_out: the line is a job behind ``#``.
        runs: cron would actually run it (False when the file is ignored, the line is
            bad, the schedule never fires, the command is empty, or it is commented out).
        problems: what the operator should know, one sentence each.
        secrets: (kind, where) of each inline secret found in the command (read any
            way cron could read the line) or its environment; values are never kept here.
        text: the whole line as written (a commented-out one with its ``#``), secrets
            masked.

    Every text here went through ``cronsync.crontab.printable`` (secrets masked in any
    reading of the line, and every value found in the file hidden wherever it shows).
    """

    source: str
    line: int
    user: Optional[str]
    schedule: str
    description: str
    next_run: Optional[datetime]
    command: str
    shell_command: str
    stdin: Optional[str]
    env: tuple[tuple[str, str], ...]
    managed: bool
    commented_out: bool
    runs: bool
    problems: tuple[str, ...]
    secrets: tuple[tuple[str, str], ...] = ()
    text: str = ""

    @property
    def state(self) -> str:
        """Return a short state: ``runs``, ``managed``, ``commented-out``,
        ``ignored (bad line)``, ``ignored (whole file)``, ``runs nothing`` or
        ``never runs`` (the problems say why)."""
        if self.commented_out:
            return "commented-out"
        if self.runs:
            return "managed" if self.managed else "runs"
        first = self.problems[0] if self.problems else ""
        if first.startswith(REJECTED):
            return "ignored (bad line)"
        if first.startswith(FILE_IGNORED):
            return "ignored (whole file)"
        if first.startswith(NO_COMMAND):
            return "runs nothing"
        return "never runs"

    def to_json(self) -> dict[str, object]:
        """Return the entry as JSON-ready data (the ``--json`` shape)."""
        return {
            "source": self.source,
            "line": self.line,
            "user": self.user,
            "schedule": self.schedule,
            "description": self.description,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "command": self.command,
            "shell_command": self.shell_command,
            "stdin": self.stdin,
            "env": dict(self.env),
            "managed": self.managed,
            "commented_out": self.commented_out,
            "runs": self.runs,
            "state": self.state,
            "problems": list(self.problems),
            "secrets": [{"kind": kind, "where": where} for kind, where in self.secrets],
            "text": self.text,
        }


@dataclass(frozen=True)
class FileInventory:
    """The inventory of one crontab file.

    Attributes:
        source, system, user: as in :class:`CrontabFile`.
        readable: False when the file could not be read (see ``problems``).
        managed: the file is cronsync's own.
        ignored: cron ignores the whole file.
        problems: file-level problems (why it is ignored, unreadable...).
        notes: harmless facts (a ``crontab -l`` header).
        entries: the entries and commented-out entries, in line order.
    """

    source: str
    system: bool
    user: Optional[str]
    readable: bool
    managed: bool
    ignored: bool
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    entries: tuple[InventoryEntry, ...]

    def to_json(self) -> dict[str, object]:
        """Return the file's summary as JSON-ready data (entries are listed apart)."""
        return {
            "source": self.source,
            "system": self.system,
            "user": self.user,
            "readable": self.readable,
            "managed": self.managed,
            "ignored": self.ignored,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "entries": len(self.entries),
        }
