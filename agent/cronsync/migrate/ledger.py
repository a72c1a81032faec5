"""``cronsync migration``: the verification ledger of the imported jobs on this host.

The adapter around ``cronsync.core.migrationledger`` (which decides): it reads the
installed release (``jobs.json``, and each job file for its import header, which names
the crontab lines it replaces, and its ``[migration]`` sign-off), the state file (when
the release was installed) and each job's run records, its earlier users' too
(``run.history``). A job without an import header was not imported and is not listed.
Nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from cronsync.core.errors import CronsyncError
from cronsync.core.migrationledger import ledger_document, ledger_entry
from cronsync.core.release import RELEASE_REPO
from cronsync.core.textshow import visible
from cronsync.core.tomlcheck import parse_toml
from cronsync.host.config import AgentConfig
from cronsync.host.statefile import load_state
from cronsync.host.view import installed_jobs
from cronsync.migrate.jobwriter import parse_origins
from cronsync.run.history import all_records
from cronsync.run.store import list_records


class NothingInstalled(CronsyncError):
    """No release is installed (or it cannot be used): there is no ledger yet."""


def _job_text(release: Path, record: Mapping[str, Any]) -> Optional[str]:
    relative = record.get("file")
    if not isinstance(relative, str) or ".." in relative.split("/"):
        return None
    try:
        return (release / RELEASE_REPO / relative).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _signoff(text: str) -> Optional[tuple[str, str]]:
    """``[migration]``'s (verified_by, verified_on), both set (the release validated
    them), or None."""
    document, _problems = parse_toml("job", text)
    table = document.data.get("migration") if document is not None else None
    if not isinstance(table, dict):
        return None
    by, on = table.get("verified_by"), table.get("verified_on")
    return (visible(by), visible(on)) if isinstance(by, str) and isinstance(on, str) else None


def read_ledger(
    config: AgentConfig, now: datetime, needed: int, since: Optional[datetime] = None
) -> dict[str, Any]:
    """Return the ledger document of the imported jobs this host installs.

    Args:
        config: the agent config. now: an aware datetime.
        needed: successes that verify a job.
        since: the cut-over (aware) to count from, or None: from each job's install.
    Returns:
        ``core.migrationledger.ledger_document`` of every installed job whose file has
        an import header, in name order.
    Raises:
        NothingInstalled: no release is installed, or it cannot be read.
    """
    jobs_doc = installed_jobs(config)
    if jobs_doc is None or jobs_doc.get("problem"):
        why = jobs_doc.get("problem") if jobs_doc else None
        raise NothingInstalled(
            f"nothing is installed on this host{f' ({why})' if why else ''}: push the "
            "imported repository and run `cronsync sync` (or `cronsync adopt --apply --sync`)"
        )
    release = config.paths.current.resolve()
    state = load_state(config.paths.state_file)
    installed_at = state.installed.at if state.installed else None
    runs_dir = config.paths.runs_dir
    rows = []
    for name, record in sorted(jobs_doc["jobs"].items()):
        text = _job_text(release, record) if record.get("installed") else None
        origins = parse_origins(text) if text else []
        if not origins:
            continue
        runs = all_records(runs_dir, name, list_records(runs_dir, name))
        shown = [visible(f"{o.source}:{o.line}") for o in origins]
        row = ledger_entry(
            name,
            record,
            shown,
            [r.to_json() for r in runs],
            _signoff(text or ""),
            installed_at,
            config.host.timezone,
            now,
            needed,
            since,
        )
        rows.append(row)
    return ledger_document(rows, needed, now, since)
