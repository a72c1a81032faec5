"""The agent's memory: what is installed, how syncs went, what drifted (pure).

``statefile`` keeps it on disk as one JSON file; ``state_from_json`` accepts anything
and keeps only well-formed parts, so a damaged file never crashes a reader.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

FORMAT = 1
HISTORY_LENGTH = 50

INSTALLED = "installed"
UNCHANGED = "unchanged"
REFUSED = "refused"
FAILED = "failed"


@dataclass(frozen=True)
class Installed:
    """What cronsync last installed on this host (the last-known-good).

    Attributes:
        commit: full sha of the installed commit.
        release: directory name under ``releases/``.
        at: ISO 8601 time of the install.
        cron_sha256: hash of the cron file as written.
        config_digest: hash of the agent config fields that shape the output.
        cron_file: the absolute path of the cron file written ("" when unknown).
        release_digest: hash of every file of the release ("" when unknown).
    """

    commit: str
    release: str
    at: str
    cron_sha256: str
    config_digest: str
    cron_file: str = ""
    release_digest: str = ""


@dataclass(frozen=True)
class SyncRecord:
    """The outcome of one sync cycle."""

    started: str
    finished: str
    result: str
    commit: Optional[str]
    message: str
    errors: tuple[dict[str, Any], ...] = ()
    warnings: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the cycle installed something or had nothing to do."""
        return self.result in (INSTALLED, UNCHANGED)


@dataclass
class AgentState:
    """Everything the agent remembers between cycles."""

    installed: Optional[Installed] = None
    last_success: Optional[str] = None
    history: list[SyncRecord] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    unreadable: Optional[str] = None  # why the state file could not be read (not saved)

    @property
    def last_sync(self) -> Optional[SyncRecord]:
        """The most recent cycle, if any."""
        return self.history[-1] if self.history else None

    def record(self, outcome: SyncRecord) -> None:
        """Remember a finished cycle (keeps the last ``HISTORY_LENGTH``; a no-op cycle
        updates the last record instead of growing the history)."""
        if outcome.ok:
            self.last_success = outcome.finished
        if outcome.result == UNCHANGED and self.history and self.history[-1].result == UNCHANGED:
            self.history[-1] = outcome
        else:
            self.history.append(outcome)
        del self.history[:-HISTORY_LENGTH]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready form written to disk."""
        return {
            "format": FORMAT,
            "installed": asdict(self.installed) if self.installed else None,
            # derived (history's last entry), written for people reading the file
            "last_sync": _record_json(self.last_sync),
            "last_success": self.last_success,
            "history": [_record_json(item) for item in self.history],
            "drift": self.drift,
        }


def _record_json(record: Optional[SyncRecord]) -> Optional[dict[str, Any]]:
    if record is None:
        return None
    data = asdict(record)
    for key in ("errors", "warnings", "notes"):
        data[key] = list(data[key])
    return data


def _dicts(value: Any, keys: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """Keep the items of a list that are dicts holding ``keys`` as strings."""
    if not isinstance(value, list):
        return ()
    return tuple(
        item
        for item in value
        if isinstance(item, dict) and all(isinstance(item.get(k), str) for k in keys)
    )


def _record_from(data: Any) -> Optional[SyncRecord]:
    if not isinstance(data, dict):
        return None
    fields = ("started", "finished", "result", "message")
    if not all(isinstance(data.get(key, ""), str) for key in fields):
        return None
    commit = data.get("commit")
    notes = data.get("notes")
    try:
        return SyncRecord(
            started=data["started"],
            finished=data["finished"],
            result=data["result"],
            commit=commit if isinstance(commit, str) else None,
            message=data.get("message", ""),
            errors=_dicts(data.get("errors"), ("file", "message")),
            warnings=_dicts(data.get("warnings"), ("file", "message")),
            notes=tuple(n for n in notes if isinstance(n, str)) if isinstance(notes, list) else (),
        )
    except KeyError:
        return None


def _installed_from(data: Any) -> Optional[Installed]:
    if not isinstance(data, dict):
        return None
    optional = ("cron_file", "release_digest")
    values = {
        key: data.get(key, "" if key in optional else None)
        for key in Installed.__dataclass_fields__
    }
    strings = {key: value for key, value in values.items() if isinstance(value, str)}
    if len(strings) != len(values):
        return None
    return Installed(**strings)


def state_from_json(data: Any) -> AgentState:
    """Rebuild the state from its JSON form, keeping only well-formed parts.

    Returns:
        The state; a foreign or damaged document gives an empty state with
        ``unreadable`` saying why.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return AgentState(unreadable="not a cronsync state file of format 1")
    history = [r for r in map(_record_from, data.get("history") or []) if r is not None]
    success = data.get("last_success")
    return AgentState(
        installed=_installed_from(data.get("installed")),
        last_success=success if isinstance(success, str) else None,
        history=history,
        drift=list(_dicts(data.get("drift"), ("what", "message"))),
    )
