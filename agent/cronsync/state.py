"""The agent's memory: what is installed, how syncs went, what drifted.

Kept as one JSON file (``/var/lib/cronsync/state.json``) written atomically; a missing
or unreadable file means "nothing known yet", never a crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from .fsutil import atomic_write

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
    """

    commit: str
    release: str
    at: str
    cron_sha256: str
    config_digest: str
    cron_file: str = ""


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
    last_sync: Optional[SyncRecord] = None
    last_success: Optional[str] = None
    history: list[SyncRecord] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)

    def record(self, outcome: SyncRecord) -> None:
        """Remember a finished cycle (keeps the last ``HISTORY_LENGTH``; a no-op cycle
        updates the last record instead of growing the history)."""
        self.last_sync = outcome
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


def _record_from(data: Any) -> Optional[SyncRecord]:
    if not isinstance(data, dict):
        return None
    try:
        return SyncRecord(
            started=str(data["started"]),
            finished=str(data["finished"]),
            result=str(data["result"]),
            commit=data.get("commit"),
            message=str(data.get("message", "")),
            errors=tuple(data.get("errors", ())),
            warnings=tuple(data.get("warnings", ())),
            notes=tuple(data.get("notes", ())),
        )
    except (KeyError, TypeError):
        return None


def _installed_from(data: Any) -> Optional[Installed]:
    if not isinstance(data, dict):
        return None
    try:
        return Installed(
            **{
                key: str(data.get(key, "") if key == "cron_file" else data[key])
                for key in Installed.__dataclass_fields__
            }
        )
    except (KeyError, TypeError):
        return None


def load_state(path: Path) -> AgentState:
    """Read the state file; a missing, unreadable or foreign file gives an empty state."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return AgentState()
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return AgentState()
    history = [r for r in map(_record_from, data.get("history") or []) if r is not None]
    drift = data.get("drift")
    return AgentState(
        installed=_installed_from(data.get("installed")),
        last_sync=_record_from(data.get("last_sync")),
        last_success=data.get("last_success"),
        history=history,
        drift=drift if isinstance(drift, list) else [],
    )


def save_state(path: Path, state: AgentState) -> None:
    """Write the state file atomically (0644: status is readable by any operator).

    Raises:
        InstallError: the file cannot be written.
    """
    text = json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n"
    atomic_write(path, text.encode(), mode=0o644)
