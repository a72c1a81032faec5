"""``cronsync fleet`` for a terminal, rendered from its JSON document (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cronsync.core.staleness import human_seconds


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _short(commit: Any) -> str:
    return commit[:12] if isinstance(commit, str) else "-"


def _minute(moment: Any) -> str:
    return str(moment)[:16].replace("T", " ") if moment else "-"


def _tip_lines(doc: Mapping[str, Any]) -> list[str]:
    several = len({tip["repo"] for tip in doc["tips"]}) > 1
    return [
        f"tip:   {tip['repo'] + ' ' if several else ''}{tip['branch']} {_short(tip['commit'])} "
        f"(fetched by {tip['host']} at {_minute(tip['fetched_at'])})"
        for tip in doc["tips"]
    ]


def _host_cells(row: Mapping[str, Any]) -> list[str]:
    sync = row["last_sync"]
    last = f"{sync['result']} {_minute(sync['at'])}" if sync["result"] else "never"
    return [
        row["host"],
        row["state"],
        _short(row["installed_commit"]),
        last,
        f"{human_seconds(row['silent_for'])} ago",
        ", ".join(row["flags"]) or "-",
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    ]


def _job_lines(doc: Mapping[str, Any]) -> list[str]:
    lines = []
    for job in doc["jobs"]:
        if job["flags"]:
            where = (
                f"installed on {', '.join(job['hosts'])}" if job["hosts"] else "installed nowhere"
            )
            lines.append(f"  {job['job']}: no healthy host installs it ({where})")
    return ["", "one-host jobs that do not run:", *lines] if lines else []


def _summary_line(doc: Mapping[str, Any]) -> str:
    hosts = doc["hosts"]
    flagged = sum(1 for row in hosts if row["flags"])
    stopped = sum(1 for job in doc["jobs"] if job["flags"])
    line = f"fleet: {_plural(len(hosts), 'host')}, "
    line += f"{flagged} flagged" if flagged else "all healthy"
    if stopped:
        line += f"; {_plural(stopped, 'one-host job')} without a healthy host"
    return line


def fleet_text(doc: Mapping[str, Any]) -> str:
    """Render a ``cronsync.fleet/1`` document: the tips, a row per host (worst first),
    the one-host jobs no healthy host installs, and a summary line."""
    missing = [
        f"{host} (this host) has written no status: is its agent running? (only "
        "`cronsync agent` writes one, not the sync timer)"
        for host in doc.get("not_reporting", [])
    ]
    if not doc["hosts"] and not doc["unreadable"] and not doc["jobs"]:
        return "\n".join(["fleet: no host has written its status yet", *missing])
    lines = _tip_lines(doc)
    header = ["HOST", "STATE", "INSTALLED", "LAST SYNC", "HEARD", "FLAGS"]
    if doc["hosts"]:
        lines += ["", *_table([header, *(_host_cells(row) for row in doc["hosts"])])]
    lines += _job_lines(doc)
    if doc["unreadable"]:
        names = ", ".join(doc["unreadable"])
        lines += ["", f"unreadable items: {names} (not a host status item this cronsync reads)"]
    if doc["expired"]:
        lines.append(f"left out: {_plural(doc['expired'], 'item')} whose expires_at has passed")
    if missing:
        lines += ["", *missing]
    return "\n".join([*lines, "", _summary_line(doc)]).lstrip("\n")
