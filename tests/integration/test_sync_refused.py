"""A bad commit is refused: the last-known-good stays, every problem is named by
file:line: field, and the next good commit is installed."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from helpers.sandbox import Sandbox

GOOD_SCRIPT = "#!/bin/bash\nset -eu\necho report\n"


def job_toml(*extra: str, command: str = "scripts/report.sh") -> str:
    """A job file whose lines 1-3 are fixed and ``extra`` lines come from line 4."""
    lines = [
        'description = "A report added in a hurry"',
        'owner = "someone@example.com"',
        'schedule = "5 6 * * *"',
        *extra,
        f'command = ["{command}"]',
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BadCommit:
    """Files that make a commit invalid and what the refusal must say."""

    files: dict[str, tuple[str, int]]
    where: str  # "file:line: field" (field left out where the problem has none)
    words: str  # part of the message


CASES = {
    "toml-syntax": BadCommit(
        {"jobs/report.toml": (job_toml().replace('"5 6 * * *"', '"5 6 * * *'), 0o644)},
        "jobs/report.toml:3: ",
        "invalid TOML",
    ),
    "bad-schedule": BadCommit(
        {
            "jobs/report.toml": (job_toml().replace("5 6 * * *", "61 6 * * *"), 0o644),
            "scripts/report.sh": (GOOD_SCRIPT, 0o755),
        },
        "jobs/report.toml:3: schedule: ",
        "out of range",
    ),
    "missing-script": BadCommit(
        {"jobs/report.toml": (job_toml(command="scripts/nowhere.sh"), 0o644)},
        "jobs/report.toml:4: command: ",
        "does not exist",
    ),
    "not-executable": BadCommit(
        {
            "jobs/report.toml": (job_toml(), 0o644),
            "scripts/report.sh": (GOOD_SCRIPT, 0o644),
        },
        "jobs/report.toml:4: command: ",
        "not executable",
    ),
    "no-shebang": BadCommit(
        {
            "jobs/report.toml": (job_toml(), 0o644),
            "scripts/report.sh": ("echo report\n", 0o755),
        },
        "scripts/report.sh:1: ",
        "no shebang",
    ),
    "bash-syntax": BadCommit(
        {
            "jobs/report.toml": (job_toml(), 0o644),
            "scripts/report.sh": ("#!/bin/bash\necho start\nif then fi\necho end\n", 0o755),
        },
        "scripts/report.sh:3: ",
        "syntax error",
    ),
    "unknown-zone": BadCommit(
        {
            "jobs/report.toml": (job_toml('timezone = "Mars/Olympus_Mons"'), 0o644),
            "scripts/report.sh": (GOOD_SCRIPT, 0o755),
        },
        "jobs/report.toml:4: timezone: ",
        "unknown time zone 'Mars/Olympus_Mons'",
    ),
    "unknown-key": BadCommit(
        {
            "jobs/report.toml": (job_toml('comand = ["scripts/report.sh"]'), 0o644),
            "scripts/report.sh": (GOOD_SCRIPT, 0o755),
        },
        "jobs/report.toml:4: comand: ",
        "did you mean 'command'",
    ),
}


def problem_text(item: dict[str, object]) -> str:
    """A recorded problem as ``file:line: field: message``."""
    where = f"{item['file']}:{item['line']}: "
    return where + (f"{item['field']}: " if item["field"] else "") + str(item["message"])


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_commit_is_refused_then_a_fix_is_installed(synced: Sandbox, case: BadCommit) -> None:
    upstream = synced.upstream
    good = synced.state()["installed"]
    cron_before = synced.cron_file.read_bytes()
    link_before = os.readlink(synced.current)
    for rel, (text, mode) in case.files.items():
        upstream.write(rel, text, mode)
    bad = upstream.commit_and_push("A broken report")

    done = synced.cli("sync")

    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    assert f"commit {bad[:12]} refused" in done.stderr
    problem_lines = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    assert any(line.startswith(case.where) and case.words in line for line in problem_lines), (
        done.stderr
    )
    assert synced.cron_file.read_bytes() == cron_before
    assert os.readlink(synced.current) == link_before
    state = synced.state()
    assert state["installed"] == good
    assert state["last_sync"]["result"] == "refused"
    assert state["last_sync"]["commit"] == bad
    recorded = [problem_text(item) for item in state["last_sync"]["errors"]]
    assert any(text.startswith(case.where) and case.words in text for text in recorded)
    assert not any(entry.name.startswith(".tmp-") for entry in synced.releases.iterdir())

    upstream.write("jobs/report.toml", job_toml())
    upstream.write("scripts/report.sh", GOOD_SCRIPT, 0o755)
    fixed = upstream.commit_and_push("Fix the report")

    outcome = synced.sync()

    assert outcome.record.result == "installed", outcome.record
    assert synced.state()["installed"]["commit"] == fixed
    assert f"5 6 * * * batch {synced.shim} report\n" in synced.cron_file.read_text()


def test_refused_first_commit_installs_nothing(sandbox: Sandbox) -> None:
    sandbox.upstream.write("jobs/report.toml", job_toml(command="scripts/nowhere.sh"))
    sandbox.upstream.commit_and_push("broken from the start")

    outcome = sandbox.sync()

    assert outcome.exit_code == 1
    assert outcome.record.result == "refused"
    assert not sandbox.cron_file.exists()
    assert not os.path.lexists(sandbox.current)
    assert sandbox.state()["installed"] is None
    status = sandbox.cli("status", "--json")
    assert status.returncode == 2, status
    assert '"health": "failed"' in status.stdout


def test_every_problem_of_a_refused_commit_is_recorded(synced: Sandbox) -> None:
    upstream = synced.upstream
    upstream.write(
        "jobs/report.toml",
        job_toml('timezone = "Mars/Olympus_Mons"', command="scripts/nowhere.sh").replace(
            "5 6 * * *", "5 25 * * *"
        ),
    )
    upstream.write("jobs/other.toml", job_toml('colour = "blue"'))
    upstream.commit_and_push("two broken jobs")

    outcome = synced.sync()

    assert outcome.record.result == "refused"
    where = sorted(f"{p['file']}:{p['line']}:{p['field']}" for p in outcome.record.errors)
    assert where == [
        "jobs/other.toml:4:colour",
        "jobs/report.toml:3:schedule",
        "jobs/report.toml:4:timezone",
        "jobs/report.toml:5:command",
    ]
