"""Status and plan as data (the ``--json`` contract) and as text for people.

``status_document`` is the documented, versioned shape of ``cronsync status --json``;
the text forms are rendered from the same data, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any, Optional

from cronsync.core.health import job_window
from cronsync.core.model import Problem
from cronsync.core.plan import NOT_INSTALLED, JobChange, upcoming_runs
from cronsync.core.staleness import SCHEDULE, describe_window, human_seconds
from cronsync.core.state import AgentState

STATUS_FORMAT = 1


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# what status shows of a run, and the type each must have (anything else shows as null)
_RUN_FIELDS = {
    "run_id": _is_str,
    "status": _is_str,
    "exit_code": _is_int,
    "started": _is_str,
    "ended": _is_str,
    "duration": _is_number,
    "reason": _is_str,
}


def _run_summary(run: Any) -> Optional[dict[str, Any]]:
    """Reduce a run record (from last.json, which the job's user can write) to what
    status shows: a field of the wrong type shows as null; a run without a run id or
    status is no run (null)."""
    if not isinstance(run, dict):
        return None
    summary = {
        key: run.get(key) if check(run.get(key)) else None for key, check in _RUN_FIELDS.items()
    }
    if summary["run_id"] is None or summary["status"] is None:
        return None
    return summary


def _job_row(
    record: Mapping[str, Any], host_zone: str, now: datetime, last: Mapping[str, Any]
) -> dict[str, Any]:
    runs = upcoming_runs(record, host_zone, now, count=1)
    return {
        "name": record.get("name"),
        "schedule": record.get("schedule"),
        "timezone": record.get("timezone"),
        "user": record.get("user"),
        "owner": record.get("owner"),
        "installed": bool(record.get("installed")),
        "status": record.get("status"),
        "cron": record.get("cron", []),
        "gated": bool(record.get("gate")),
        "next_run": runs[0].job_time.isoformat() if runs else None,
        "next_run_host": runs[0].host_time.isoformat() if runs else None,
        "last_run": _run_summary(last.get("last_run")),
        "last_success": _run_summary(last.get("last_success")),
        "stale_window": _stale_window(record),
    }


def _stale_window(record: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The job's compiled ``stale_window`` as status shows it: the window health judges
    by (``success.within`` in a release compiled without windows), None when none."""
    window = job_window(record)
    if window is None:
        return None
    compiled = record.get("stale_window")
    if isinstance(compiled, Mapping) and compiled.get("source") == SCHEDULE:
        keys = ("gap", "timeout", "jitter", "margin")
        return {
            "seconds": window[0],
            "source": SCHEDULE,
            **{key: compiled[key] for key in keys if _is_int(compiled.get(key))},
        }
    return {"seconds": window[0], "source": window[1]}


def status_document(
    host: str,
    host_zone: str,
    repo: str,
    branch: str,
    state: AgentState,
    jobs_doc: Optional[Mapping[str, Any]],
    now: datetime,
    last_runs: Optional[Mapping[str, Mapping[str, Any]]] = None,
    agent: Optional[Mapping[str, Any]] = None,
    stale: Optional[Mapping[str, Mapping[str, Any]]] = None,
    unmanaged: Optional[int] = None,
) -> dict[str, Any]:
    """Build the ``cronsync status --json`` document (format ``STATUS_FORMAT``).

    Keys: status_format, host, host_timezone, repo, branch, health (ok | degraded |
    failed), installed {commit, release, at} or null, last_sync (the sync record) or
    null, last_success, drift [ {what, message} ], jobs [ {name, schedule, timezone,
    user, owner, installed, status, cron, gated, next_run, next_run_host, last_run,
    last_success} ] where a run is {run_id, status, exit_code, started, ended, duration,
    reason} or null. ``last_runs`` maps job -> its ``last.json`` document.

    ``agent`` is the running agent's record (pid, started, version, running) or None;
    ``stale`` maps stale jobs to {within, last_success, overdue} (see health.stale_jobs);
    ``unmanaged`` counts the host's cron entries cronsync does not own (None: unknown).
    """
    installed = state.installed
    jobs = (jobs_doc or {}).get("jobs")
    if not isinstance(jobs, dict):
        jobs = {}
    jobs = {name: job for name, job in jobs.items() if isinstance(job, Mapping)}
    stale = stale or {}
    problem = _state_problem(state, jobs_doc)
    return {
        "status_format": STATUS_FORMAT,
        "host": host,
        "host_timezone": host_zone,
        "repo": repo,
        "branch": branch,
        "health": health(state, stale, problem),
        "agent": None
        if agent is None
        else {
            "running": bool(agent.get("running")),
            "pid": agent.get("pid"),
            "up_since": agent.get("started"),
            "version": agent.get("version"),
        },
        "installed": None
        if installed is None
        else {"commit": installed.commit, "release": installed.release, "at": installed.at},
        "last_sync": None if state.last_sync is None else asdict(state.last_sync),
        "last_success": state.last_success,
        "drift": state.drift,
        "state_problem": problem,
        "stale_jobs": sorted(stale),
        "unmanaged_entries": unmanaged,
        "jobs": [
            {
                **_job_row(jobs[name], host_zone, now, (last_runs or {}).get(name, {})),
                "stale": name in stale,
            }
            for name in sorted(jobs)
        ],
    }


def _state_problem(state: AgentState, jobs_doc: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The state file's problem and the installed release's (``problem`` in the stand-in
    document host.view.installed_jobs gives for a release it cannot use), or None."""
    release = (jobs_doc or {}).get("problem")
    problems = [p for p in (state.unreadable, release) if isinstance(p, str) and p]
    return "; ".join(problems) or None


def host_health(
    state: AgentState,
    jobs_doc: Optional[Mapping[str, Any]],
    stale: Optional[Mapping[str, Any]] = None,
) -> str:
    """The health ``cronsync status`` gives (see :func:`health`), from the state, the
    installed jobs document and the stale jobs (a truthy value: stale)."""
    stale_now = {name: True for name, value in (stale or {}).items() if value}
    return health(state, stale_now, _state_problem(state, jobs_doc))


def health(
    state: AgentState, stale: Optional[Mapping[str, Any]] = None, problem: Optional[str] = None
) -> str:
    """Return ``failed`` (nothing installed), ``degraded`` (last sync failed, drift, a
    stale job, the state file unreadable, or another ``problem``) or ``ok``."""
    problem = problem or state.unreadable
    if state.installed is None:
        return "degraded" if problem else "failed"
    if stale or problem or state.drift or (state.last_sync is not None and not state.last_sync.ok):
        return "degraded"
    return "ok"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    ]


def _problem_lines(problems: Any) -> list[str]:
    return ["    " + Problem.from_dict(item).format() for item in problems]


def status_text(doc: Mapping[str, Any]) -> str:
    """Render a status document for a terminal."""
    agent = doc.get("agent")
    agent_line = (
        "agent:      not running (no record)"
        if not agent
        else f"agent:      running since {agent['up_since']} (pid {agent['pid']})"
        if agent["running"]
        else f"agent:      NOT running (last pid {agent['pid']})"
    )
    lines = [
        f"host:       {doc['host']} ({doc['host_timezone']})",
        agent_line,
        f"repository: {doc['repo']} branch {doc['branch']}",
        f"health:     {doc['health']}",
    ]
    installed = doc["installed"]
    lines.append(
        f"installed:  {installed['commit'][:12]} at {installed['at']}"
        if installed
        else "installed:  nothing yet"
    )
    last = doc["last_sync"]
    if last:
        lines.append(f"last sync:  {last['finished']} {last['result']}: {last['message']}")
        lines += _problem_lines(last.get("errors", ()))
        lines += [f"    note: {note}" for note in last.get("notes", ())]
    lines += [f"drift:      {item['message']}" for item in doc["drift"]]
    if doc.get("unmanaged_entries"):
        lines.append(
            f"unmanaged:  {doc['unmanaged_entries']} cron entries outside cronsync "
            "(cronsync inventory --unmanaged-only lists them)"
        )
    if doc.get("stale_jobs"):
        lines.append(f"stale:      {', '.join(doc['stale_jobs'])} (no success within the window)")
    if doc.get("state_problem"):
        lines.append(f"state:      unreadable: {doc['state_problem']}")
    rows = [
        [
            "JOB",
            "SCHEDULE",
            "ZONE",
            "USER",
            "NEXT RUN (job zone)",
            "LAST RUN",
            "LAST SUCCESS",
            "STALE AFTER",
        ]
    ]
    for job in doc["jobs"]:
        rows.append(
            [
                job["name"],
                job["schedule"],
                job["timezone"],
                job["user"],
                (job["next_run"] or "-")[:16].replace("T", " "),
                _last_run_cell(job) if job["installed"] else _shorten(str(job["status"])),
                _when(job.get("last_success")) if job["installed"] else "",
                _window_cell(job.get("stale_window")) if job["installed"] else "",
            ]
        )
    if len(rows) > 1:
        lines += ["", *_table(rows)]
    return "\n".join(lines)


def _window_cell(window: Any) -> str:
    """``26h (within)``, ``1d 2h (schedule)``; ``-`` without a window."""
    if not isinstance(window, Mapping) or not _is_int(window.get("seconds")):
        return "-"
    return f"{human_seconds(window['seconds'])} ({window.get('source')})"


def _shorten(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(run: Optional[Mapping[str, Any]]) -> str:
    """A run's end (or start) time, to the minute, or '-'."""
    if not run:
        return "-"
    moment = run.get("ended") or run.get("started") or ""
    return str(moment)[:16].replace("T", " ") or "-"


def _last_run_cell(job: Mapping[str, Any]) -> str:
    run = job.get("last_run")
    if not run:
        return "never ran"
    code = "" if run.get("exit_code") is None else f" (exit {run['exit_code']})"
    return f"{_when(run)} {run.get('status')}{code}"


def _value(value: Any) -> str:
    return "(unset)" if value in (None, [], {}) else repr(value)


def plan_text(
    changes: list[JobChange],
    cron_diff: str,
    runs: Mapping[str, Any],
    windows: Optional[Mapping[str, Any]] = None,
) -> str:
    """Render a plan (job changes, cron file diff, next runs, and the staleness window
    of each job in ``windows``: its compiled ``stale_window``) for a terminal."""
    if not changes and not cron_diff:
        return "No changes: the installed jobs already match."
    marks = {"added": "+", "removed": "-", "changed": "~", NOT_INSTALLED: " "}
    lines = []
    for change in changes:
        why = f": {change.reason}" if change.reason else ""
        lines.append(f"{marks[change.kind]} {change.name} ({change.kind}{why})")
        lines += [
            f"    {item.field}: {_value(item.old)} -> {_value(item.new)}" for item in change.fields
        ]
        for run in runs.get(change.name, ()):
            lines.append(f"    next: {run['job_time']}  (host {run['host_time']})")
        if windows and windows.get(change.name):
            lines.append(f"    stale after: {describe_window(windows[change.name])}")
    if cron_diff:
        lines += ["", cron_diff.rstrip("\n")]
    return "\n".join(lines)


def change_json(change: JobChange) -> dict[str, Any]:
    """Return the JSON form of one job change (``reason`` only for a job not installed
    here)."""
    found: dict[str, Any] = {
        "name": change.name,
        "kind": change.kind,
        "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in change.fields],
    }
    if change.reason:
        found["reason"] = change.reason
    return found
