"""The running agent's record in the state directory (for ``cronsync status``).

Light on purpose: status reads it without importing the agent (or GitPython).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from cronsync import __version__
from cronsync.files.atomic import atomic_write
from cronsync.host.config import AgentConfig

AGENT_FILE = "agent.json"


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_agent_file(path: Path, config: AgentConfig) -> None:
    """Record who the running agent is, for ``cronsync status``."""
    document = {
        "pid": os.getpid(),
        "started": now_iso(),
        "version": __version__,
        "interval": config.agent.interval,
        "config": str(config.path),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(document, indent=1).encode() + b"\n", mode=0o644)


def read_agent_file(path: Path) -> Optional[dict[str, Any]]:
    """Return the running agent's record with ``running`` (its pid is alive), or None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    try:
        os.kill(data["pid"], 0)
        data["running"] = True
    except ProcessLookupError:
        data["running"] = False
    except PermissionError:
        data["running"] = True
    return data
