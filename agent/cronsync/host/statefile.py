"""The agent's state on disk: ``/var/lib/cronsync/state.json`` (adapter)."""

from __future__ import annotations

import json
from pathlib import Path

from cronsync.core.state import AgentState, state_from_json
from cronsync.files.atomic import atomic_write

MAX_STATE_BYTES = 16 * 1024 * 1024


def load_state(path: Path) -> AgentState:
    """Read the state file.

    Returns:
        The state; a missing file gives an empty state, an unreadable or damaged one an
        empty state whose ``unreadable`` says why (never an exception).
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return AgentState()
    except OSError as exc:
        return AgentState(unreadable=f"cannot read {path}: {exc.strerror}")
    if len(data) > MAX_STATE_BYTES:
        return AgentState(unreadable=f"{path} is larger than 16 MiB")
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError:
        return AgentState(unreadable=f"{path} is not valid JSON")
    state = state_from_json(document)
    if state.unreadable:
        state.unreadable = f"{path}: {state.unreadable}"
    return state


def save_state(path: Path, state: AgentState) -> None:
    """Write the state file atomically (0644: status is readable by any operator).

    Raises:
        InstallError: the file cannot be written.
    """
    text = json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n"
    atomic_write(path, text.encode(), mode=0o644)
