"""`cronsync plan` on a host: a job this host does not install (disabled, or targeted at
other hosts or groups) is shown as "not installed here", with why, never as "added", and
gets no next runs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from test_plan import make_job

from cronsync.core.compiled import compile_jobs
from cronsync.core.model import Defaults, HostContext, Job, JobRepo
from cronsync.core.plan import ADDED, CHANGED, NOT_INSTALLED, REMOVED, JobChange, diff_jobs
from cronsync.core.render import SourceInfo, plan_entries
from cronsync.core.views import change_json, plan_text

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)
HOST = HostContext("batch-1", timezone="UTC", groups=("us",))
SOURCE = SourceInfo("https://git.example.com/jobs.git", "main", "a" * 40)


def compiled(*jobs: Job) -> dict[str, Any]:
    repo = JobRepo(Defaults(), tuple(jobs))
    entries, problems = plan_entries(repo, HOST, NOW)
    assert problems == []
    return compile_jobs(repo, HOST, SOURCE, entries, {})


ELSEWHERE = (
    make_job("here"),
    make_job("retired", enabled=False, reason="replaced by here"),
    make_job("other-host", hosts=("batch-eu-*",)),
    make_job("other-group", groups=("eu",)),
)


def test_new_jobs_this_host_does_not_install_are_not_added() -> None:
    changes = diff_jobs(None, compiled(*ELSEWHERE))

    assert [(c.name, c.kind) for c in changes] == [
        ("here", ADDED),
        ("other-group", NOT_INSTALLED),
        ("other-host", NOT_INSTALLED),
        ("retired", NOT_INSTALLED),
    ]
    reasons = {c.name: c.reason for c in changes}
    assert reasons["retired"] == "disabled: replaced by here"
    assert reasons["other-host"] == "not targeted at host batch-1"
    assert reasons["here"] == ""


def test_an_edit_of_a_job_installed_nowhere_here_stays_not_installed_here() -> None:
    old = compiled(make_job("retired", enabled=False, reason="old"))
    new = compiled(make_job("retired", enabled=False, reason="older", owner="data"))

    (change,) = diff_jobs(old, new)

    assert change.kind == NOT_INSTALLED
    assert {f.field for f in change.fields} == {"owner", "reason", "status"}


def test_disabling_an_installed_job_is_still_a_change_and_removing_one_a_removal() -> None:
    installed = compiled(make_job("a"), make_job("b"))
    new = compiled(make_job("a", enabled=False, reason="retired"))

    changes = diff_jobs(installed, new)

    assert [(c.name, c.kind) for c in changes] == [("a", CHANGED), ("b", REMOVED)]


def test_plan_text_and_json_say_not_installed_here_and_why() -> None:
    changes = diff_jobs(None, compiled(*ELSEWHERE))

    text = plan_text(changes, "", {})
    as_json = [change_json(c) for c in changes]

    assert "  retired (not installed here: disabled: replaced by here)" in text.split("\n")
    assert "  other-host (not installed here: not targeted at host batch-1)" in text.split("\n")
    assert "added" not in text.replace("+ here (added)", "")
    assert as_json[3] == {
        "name": "retired",
        "kind": "not installed here",
        "reason": "disabled: replaced by here",
        "fields": [],
    }
    assert "reason" not in as_json[0]


def test_plain_job_changes_are_unchanged() -> None:
    assert diff_jobs(None, compiled(make_job("a"))) == [JobChange("a", ADDED)]
