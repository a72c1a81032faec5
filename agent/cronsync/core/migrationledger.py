"""The verification ledger of imported jobs: has each one proven itself on the new host?

Pure: an installed job's compiled record, the crontab lines it replaces, its run
records (JSON form) and its sign-off in, one ledger row out; then the document
(``cronsync migration --json``, ``migration_format`` 1) and its text.

States, the first that applies:

* ``failing``: its last run (by cron, not skipped) failed, timed out or could not
  start.
* ``verified``: it succeeded at least N times (default 3) and either has a
  ``success.check`` or ``success.within``, or a person signed it off.
* ``signed-off``: a person recorded it (``[migration] verified_by``/``verified_on`` in
  the job file, a reviewed change), with fewer successes.
* ``running``: it succeeded, not yet N times (or with no check and no sign-off).
* ``never-ran``: no run by cron, though it was due (its first run after the job was
  installed has passed: its ``installed_since``, kept from release to release, else the
  installed release's install time).
* ``pending``: not due yet, or only skipped or still running.

Runs by hand (``cronsync run``) and skipped runs are counted apart: they prove nothing
about the schedule. Every row says why it has its state. Given a cut-over time
(``--since``), runs before it are left out and the never-ran clock starts at it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Optional

from cronsync.core.health import parse_time
from cronsync.core.plan import upcoming_runs

FORMAT = 1
DEFAULT_SUCCESSES = 3
FAILING, VERIFIED, SIGNED_OFF = "failing", "verified", "signed-off"
RUNNING, NEVER_RAN, PENDING = "running", "never-ran", "pending"
STATES = (VERIFIED, SIGNED_OFF, RUNNING, PENDING, NEVER_RAN, FAILING)
DONE = frozenset({VERIFIED, SIGNED_OFF})
_FAILED = frozenset({"failed", "timed-out", "error"})


def _when(text: Optional[str]) -> str:
    moment = parse_time(text)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _job_installed(job: Mapping[str, Any]) -> Optional[str]:
    """The job's ``installed_since`` (a string), or None (an older release has none)."""
    since = job.get("installed_since")
    return since if isinstance(since, str) and since else None


def _first_due(job: Mapping[str, Any], installed_at: Optional[str], zone: str) -> Optional[str]:
    since = parse_time(installed_at)
    if since is None:
        return None
    runs = upcoming_runs(job, zone, since, count=1)
    return runs[0].job_time.isoformat() if runs else None


def _has(job: Mapping[str, Any], key: str) -> bool:
    success = job.get("success")
    return isinstance(success, Mapping) and bool(success.get(key))


def ledger_entry(
    name: str,
    job: Mapping[str, Any],
    origins: Sequence[str],
    runs: Sequence[Mapping[str, Any]],
    signoff: Optional[tuple[str, str]],
    installed_at: Optional[str],
    host_zone: str,
    now: datetime,
    needed: int = DEFAULT_SUCCESSES,
    since: Optional[datetime] = None,
) -> dict[str, Any]:
    """Return one job's ledger row.

    Args:
        name: the job. job: its record in the installed ``jobs.json``.
        origins: the crontab lines it replaces (``source:line``, from its import header).
        runs: its run records (JSON form), any order.
        signoff: (verified_by, verified_on) from its ``[migration]`` table, or None.
        installed_at: when the installed release was installed (ISO 8601), or None.
        host_zone: the host's zone. now: an aware datetime.
        needed: successes that verify it.
        since: the cut-over (aware), when given: runs that started before it are left
            out, and its first expected run is counted from it instead of the install.
    Returns:
        the row: name, file, origins, first_run, last_run, runs, successes, failures,
        skipped, by_hand, success_check, success_within, signed_off, first_due, state,
        why. Never raises.
    """
    if since is not None:
        runs = [r for r in runs if (parse_time(r.get("started")) or since) >= since]
    by_cron = sorted(
        (r for r in runs if not r.get("by_hand") and r.get("status") != "skipped"),
        key=lambda r: str(r.get("started")),
    )
    successes = sum(r.get("status") == "succeeded" for r in by_cron)
    failures = sum(r.get("status") in _FAILED for r in by_cron)
    row: dict[str, Any] = {
        "name": name,
        "file": job.get("file"),
        "origins": list(origins),
        "first_run": by_cron[0].get("started") if by_cron else None,
        "last_run": by_cron[-1].get("started") if by_cron else None,
        "runs": len(by_cron),
        "successes": successes,
        "failures": failures,
        "skipped": sum(r.get("status") == "skipped" for r in runs),
        "by_hand": sum(bool(r.get("by_hand")) for r in runs),
        "success_check": _has(job, "check"),
        "success_within": _has(job, "within"),
        "signed_off": {"by": signoff[0], "on": signoff[1]} if signoff else None,
        # since the job itself was installed (kept from release to release), else the release
        "first_due": _first_due(
            job,
            since.isoformat() if since else _job_installed(job) or installed_at,
            host_zone,
        ),
    }
    row["state"], row["why"] = _state(row, by_cron, now, needed)
    return row


def _state(
    row: Mapping[str, Any], by_cron: Sequence[Mapping[str, Any]], now: datetime, needed: int
) -> tuple[str, str]:
    successes, signed = row["successes"], row["signed_off"]
    checked = row["success_check"] or row["success_within"]
    tally = f"{successes} of {row['runs']} runs by cron succeeded"
    if by_cron and by_cron[-1].get("status") in _FAILED:
        last = by_cron[-1]
        return FAILING, f"its last run ({_when(last.get('started'))}) {last.get('status')}; {tally}"
    if successes >= needed and (checked or signed):
        basis = "a success check" if checked else f"the sign-off of {signed['by']}"
        return VERIFIED, f"{tally} (at least {needed}), with {basis}"
    if signed:
        return SIGNED_OFF, f"signed off by {signed['by']} on {signed['on']}; {tally}"
    if successes:
        if successes >= needed:
            return RUNNING, (
                f"{tally}; to be verified it needs success.check or success.within, or "
                "[migration] verified_by and verified_on in its job file"
            )
        return RUNNING, f"{tally}; verified after {needed}"
    return _not_started(row, now)


def _not_started(row: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    due = parse_time(row["first_due"])
    if row["runs"]:
        return PENDING, f"{row['runs']} runs by cron, none finished with success or failure yet"
    if due is not None and due <= now:
        return NEVER_RAN, f"due at {_when(row['first_due'])}, and no run by cron recorded since"
    if due is None:
        return PENDING, "no run by cron recorded, and no scheduled run to expect (@reboot?)"
    return PENDING, f"first due at {_when(row['first_due'])}"


def ledger_document(
    rows: Sequence[Mapping[str, Any]],
    needed: int,
    now: datetime,
    since: Optional[datetime] = None,
) -> dict[str, Any]:
    """Return the ``cronsync migration --json`` document (``migration_format`` 1):
    generated, needed_successes, since (the cut-over given, or None: each job counts
    from its install), jobs (the rows), summary (state -> count) and complete (every job
    verified or signed off)."""
    summary = {state: sum(row["state"] == state for row in rows) for state in STATES}
    return {
        "migration_format": FORMAT,
        "generated": now.isoformat(),
        "needed_successes": needed,
        "since": since.isoformat() if since else None,
        "jobs": list(rows),
        "summary": summary,
        "complete": all(row["state"] in DONE for row in rows),
    }


def ledger_text(doc: Mapping[str, Any]) -> str:
    """Return the ledger for a terminal: one block per job, then the summary."""
    lines: list[str] = []
    for row in doc["jobs"]:
        origins = ", ".join(row["origins"]) or "?"
        first = _when(row["first_run"]) if row["first_run"] else "-"
        checks = [k for k in ("check", "within") if row[f"success_{k}"]]
        lines += [
            f"{row['name']}  {row['state'].upper()}  (from {origins})",
            f"  runs {row['runs']}, succeeded {row['successes']}, failed {row['failures']}"
            f"; first run {first}; success.{'/'.join(checks) if checks else 'check: none'}",
            f"  {row['why']}",
        ]
    counts = ", ".join(f"{n} {state}" for state, n in doc["summary"].items() if n)
    lines.append(f"{len(doc['jobs'])} imported jobs: {counts or 'none'}")
    if doc.get("since"):
        lines.append(f"counted from {_when(doc['since'])} (--since), not from each install")
    if not doc["complete"]:
        lines.append(
            f"not complete: every job must be verified ({doc['needed_successes']} successes "
            "with a success check or sign-off) or signed off"
        )
    return "\n".join(lines)
