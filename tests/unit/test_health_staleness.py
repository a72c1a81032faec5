"""Staleness from the compiled ``stale_window`` (schedule or success.within), and from
``success.within`` alone in a release an older cronsync compiled."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from cronsync.core.health import stale_jobs

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
INSTALLED_AT = "2026-12-05T12:00:00Z"  # two days before NOW


ABSENT = {"absent": True}  # the key left out (a release of an older cronsync)


def _job(window: Optional[dict[str, Any]], within: Optional[int] = None) -> dict[str, Any]:
    job: dict[str, Any] = {"installed": True, "success": {"within": within, "check": []}}
    if window is not ABSENT:
        job["stale_window"] = window
    return job


def _success(ended: str) -> dict[str, Any]:
    return {"last_success": {"run_id": "r", "status": "succeeded", "ended": ended}}


def test_a_schedule_window_makes_a_job_that_never_succeeded_stale_after_install() -> None:
    window = {"seconds": 25 * 3600, "source": "schedule", "gap": 86400}
    doc = {"jobs": {"nightly": _job(window), "fresh": _job(window)}}
    runs = {"fresh": _success("2026-12-07T03:31:00Z")}

    stale = stale_jobs(doc, runs, INSTALLED_AT, NOW)

    assert stale == {
        "nightly": {
            "within": 25 * 3600,
            "source": "schedule",
            "last_success": None,
            "overdue": 2 * 86400 - 25 * 3600,
        }
    }


def test_the_window_not_success_within_decides_in_a_new_release() -> None:
    # compiled from success.within: source "within"
    doc = {"jobs": {"a": _job({"seconds": 3600, "source": "within"}, within=3600)}}
    stale = stale_jobs(doc, {"a": _success("2026-12-07T10:00:00Z")}, INSTALLED_AT, NOW)
    assert stale["a"]["source"] == "within" and stale["a"]["overdue"] == 3600


def test_a_release_of_an_older_cronsync_uses_success_within() -> None:
    doc = {"jobs": {"old": _job(ABSENT, within=3600), "none": _job(ABSENT)}}
    stale = stale_jobs(doc, {}, INSTALLED_AT, NOW)
    assert set(stale) == {"old"} and stale["old"]["source"] == "within"


def test_no_window_no_staleness() -> None:
    # @reboot without success.within, or not installed, or a forged window
    doc = {
        "jobs": {
            "boot": _job(None),
            "off": {**_job({"seconds": 60, "source": "schedule"}), "installed": False},
            "forged": _job({"seconds": "soon", "source": "schedule"}),
            "negative": _job({"seconds": -5, "source": "schedule"}),
        }
    }
    assert stale_jobs(doc, {}, INSTALLED_AT, NOW) == {}


def test_plan_and_status_text_show_the_window() -> None:
    from cronsync.core.plan import ADDED, JobChange
    from cronsync.core.state import AgentState
    from cronsync.core.views import plan_text, status_document, status_text

    window = {
        "seconds": 86400 + 3600 + 3600,
        "source": "schedule",
        "gap": 86400,
        "timeout": 3600,
        "jitter": 0,
        "margin": 3600,
    }
    text = plan_text([JobChange("nightly", ADDED)], "", {}, {"nightly": window})
    assert "    stale after: 1d 2h (schedule: gap 1d + timeout 1h + margin 1h)" in text
    assert "stale after: 2h (success.within)" in plan_text(
        [JobChange("n", ADDED)], "", {}, {"n": {"seconds": 7200, "source": "within"}}
    )
    job = {"name": "nightly", "schedule": "30 3 * * *", "timezone": "UTC", "user": "b"}
    job.update(installed=True, status="installed", cron=[], stale_window=window)
    doc = status_document("h", "UTC", "r", "main", AgentState(), {"jobs": {"nightly": job}}, NOW)
    lines = status_text(doc).splitlines()
    assert "STALE AFTER" in lines[-2] and lines[-1].endswith("1d 2h (schedule)")


def test_a_job_that_never_succeeded_counts_from_its_own_install() -> None:
    # the release was installed an hour ago (another job's commit); this job has been
    # installed, without a success, for three days: its window has long passed
    window = {"seconds": 25 * 3600, "source": "schedule"}
    job = {**_job(window), "installed_since": "2026-12-04T12:00:00Z"}
    stale = stale_jobs({"jobs": {"old": job}}, {}, "2026-12-07T11:00:00Z", NOW)
    assert stale["old"]["overdue"] == 3 * 86400 - 25 * 3600
    # without installed_since (an older cronsync's release): the release's install
    assert stale_jobs({"jobs": {"old": _job(window)}}, {}, "2026-12-07T11:00:00Z", NOW) == {}
