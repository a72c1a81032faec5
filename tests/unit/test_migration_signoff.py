"""``[migration] verified_by``/``verified_on``: the sign-off of an imported job, read from
the one schema and checked (both together, a real day)."""

from __future__ import annotations

import pytest

from cronsync.core.manifest import SourceFile, parse_repo
from cronsync.core.validate import validate_repo

JOB = """\
description = "Nightly backup"
owner = "ops@example.com"
schedule = "0 3 * * *"
user = "batch"
command = ["scripts/backup.sh"]
"""


def problems(extra: str) -> list[str]:
    repo, found = parse_repo(None, [SourceFile("jobs/backup.toml", JOB + extra)])
    found += validate_repo(repo)
    return [p.format() for p in found]


def test_a_sign_off_is_read_into_the_job() -> None:
    text = '\n[migration]\nverified_by = "Ana Ops"\nverified_on = "2026-12-07"\n'
    repo, found = parse_repo(None, [SourceFile("jobs/backup.toml", JOB + text)])
    assert found == [] and validate_repo(repo) == []
    assert (repo.jobs[0].verified_by, repo.jobs[0].verified_on) == ("Ana Ops", "2026-12-07")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('\n[migration]\nverified_by = "Ana Ops"\n', "verified_on"),
        ('\n[migration]\nverified_on = "2026-12-07"\n', "verified_by"),
        ('\n[migration]\nverified_by = "Ana"\nverified_on = "7.12.2026"\n', "YYYY-MM-DD"),
        ('\n[migration]\nverified_by = "Ana"\nverified_on = "2026-02-30"\n', "YYYY-MM-DD"),
        ('\n[migration]\nverified_by = " "\nverified_on = "2026-12-07"\n', "verified_by"),
        ("\n[migration]\nsigned = true\n", "signed"),
    ],
)
def test_a_broken_sign_off_is_one_located_problem(extra: str, fragment: str) -> None:
    [problem] = problems(extra)
    assert problem.startswith("jobs/backup.toml:") and "migration." in problem
    assert fragment in problem
