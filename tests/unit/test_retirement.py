"""Retirement candidates (pure): installed jobs whose records say they may be dead, each
with the evidence and the change that retires it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from cronsync.core.retirement import (
    ALWAYS_SKIPPED,
    DISABLED_LONG,
    FAILS_EVERY_RUN,
    NEVER_SUCCEEDED,
    NO_OUTPUT,
    retire_candidates,
    retire_text,
)

UTC = timezone.utc
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
INSTALLED = (NOW - timedelta(days=60)).isoformat()


def job(name: str, enabled: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "file": f"jobs/{name}.toml",
        "enabled": enabled,
        "installed": enabled,
        "status": "installed" if enabled else "disabled: replaced",
    }


def run(
    days_ago: float, status: str = "succeeded", output: int = 10, by_hand: bool = False
) -> dict[str, Any]:
    started = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "run_id": started,
        "status": status,
        "started": started,
        "exit_code": 0 if status == "succeeded" else 1,
        "output_bytes": output,
        "by_hand": by_hand,
    }


def candidates(jobs: list[dict[str, Any]], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    doc = {"jobs": {j["name"]: j for j in jobs}}
    found = retire_candidates(doc, runs, INSTALLED, NOW, days=14)
    return {c["job"]: c for c in found}


def kinds(found: dict[str, Any], name: str) -> set[str]:
    return {reason["kind"] for reason in found[name]["reasons"]}


def test_a_healthy_job_is_no_candidate() -> None:
    found = candidates([job("ok")], {"ok": [run(d) for d in range(30)]})
    assert found == {}


def test_failed_every_run_for_the_last_days() -> None:
    runs = [run(d) for d in range(20, 30)] + [run(d, "failed") for d in range(0, 20)]
    found = candidates([job("broken")], {"broken": runs})
    assert kinds(found, "broken") == {FAILS_EVERY_RUN}
    reason = found["broken"]["reasons"][0]
    assert "14 days" in reason["evidence"] and "all" in reason["evidence"]
    assert "enabled = false" in found["broken"]["retire"] and "reason" in found["broken"]["retire"]


def test_failures_of_a_job_younger_than_the_window_are_not_enough() -> None:
    doc = {"jobs": {"young": job("young")}}
    runs = {"young": [run(d, "failed") for d in range(3)]}
    recently = (NOW - timedelta(days=3)).isoformat()  # the release that brought it
    found = {c["job"]: c for c in retire_candidates(doc, runs, recently, NOW, days=14)}
    assert FAILS_EVERY_RUN not in kinds(found, "young")
    assert kinds(found, "young") == {NEVER_SUCCEEDED}


def test_never_succeeded_never_produced_output_and_always_skipped() -> None:
    found = candidates(
        [job("mute"), job("stuck")],
        {
            "mute": [run(d, output=0) for d in range(30)],
            "stuck": [run(40)] + [run(d, "skipped", output=0) for d in range(14)],
        },
    )
    assert kinds(found, "mute") == {NO_OUTPUT}
    assert kinds(found, "stuck") == {ALWAYS_SKIPPED}
    assert "forbid" in found["stuck"]["reasons"][0]["evidence"]


def test_runs_by_hand_do_not_count() -> None:
    runs = [run(d, "failed") for d in range(30)] + [run(0.5, by_hand=True)]
    found = candidates([job("hand")], {"hand": runs})
    assert FAILS_EVERY_RUN in kinds(found, "hand")


def test_disabled_for_more_than_90_days_is_deleted() -> None:
    found = candidates(
        [job("old", enabled=False), job("recent", enabled=False), job("unknown", enabled=False)],
        {"old": [run(120)], "recent": [run(30)], "unknown": []},
    )
    assert set(found) == {"old"}
    assert kinds(found, "old") == {DISABLED_LONG}
    assert "git rm jobs/old.toml" in found["old"]["retire"]


def test_the_text_names_evidence_and_change() -> None:
    found = retire_candidates(
        {"jobs": {"mute": job("mute")}},
        {"mute": [run(d, output=0) for d in range(30)]},
        INSTALLED,
        NOW,
    )
    text = retire_text(found, 14)
    assert "mute" in text and "output" in text and "enabled = false" in text
    assert retire_text([], 14).startswith("no retirement candidates")


def last(last_run: dict[str, Any] | None, success: dict[str, Any] | None) -> dict[str, Any]:
    return {"format": 1, "last_run": last_run, "last_success": success}


def test_status_s_summary_reads_only_the_last_run_documents() -> None:
    from cronsync.core.retirement import quick_candidates

    jobs = [job(n) for n in ("ok", "broken", "never", "stuck", "young", "idle")]
    jobs.append(job("off", enabled=False))
    doc = {"jobs": {j["name"]: j for j in jobs}}
    lasts = {
        "ok": last(run(0.5, "failed"), run(1.5)),  # failed once, succeeded yesterday
        "broken": last(run(0.5, "failed"), run(20)),  # no success for 20 days
        "never": last(run(0.5, "failed"), None),
        "stuck": last(run(0.5, "skipped"), run(30)),
        "off": last(run(100), run(100)),
        "idle": last(None, None),  # not run yet: nothing says it is dead
    }
    assert quick_candidates(doc, lasts, INSTALLED, NOW, days=14) == [
        "broken",
        "never",
        "off",
        "stuck",
    ]
    young = (NOW - timedelta(days=3)).isoformat()  # installed 3 days ago: too soon to say
    skipped = {"stuck": last(run(0.5, "skipped"), None)}
    assert quick_candidates(doc, skipped, young, NOW, days=14) == []
    assert quick_candidates(doc, skipped, INSTALLED, NOW, days=14) == ["stuck"]
