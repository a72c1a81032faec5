"""The verification ledger of imported jobs (pure): each job's runs since the cut-over
and its state, from never-ran to verified."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import pytest

from cronsync.core.migrationledger import (
    FAILING,
    NEVER_RAN,
    PENDING,
    RUNNING,
    SIGNED_OFF,
    VERIFIED,
    ledger_document,
    ledger_entry,
    ledger_text,
)

UTC = timezone.utc
INSTALLED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def job(check: bool = False, within: bool = False, schedule: str = "0 3 * * *") -> dict[str, Any]:
    return {
        "name": "backup",
        "file": "jobs/backup.toml",
        "schedule": schedule,
        "timezone": "UTC",
        "installed": True,
        "success": {"within": 93600 if within else None, "check": ["true"] if check else []},
    }


def run(day: int, status: str = "succeeded", by_hand: bool = False) -> dict[str, Any]:
    started = datetime(2026, 12, day, 3, 0, 1, tzinfo=UTC)
    return {
        "run_id": started.strftime("%Y%m%dT%H%M%SZ") + "-abcd",
        "status": status,
        "started": started.isoformat().replace("+00:00", "Z"),
        "by_hand": by_hand,
    }


def entry(
    runs: list[dict[str, Any]],
    *,
    check: bool = False,
    within: bool = False,
    signoff: Optional[tuple[str, str]] = None,
    schedule: str = "0 3 * * *",
    now: datetime = NOW,
) -> dict[str, Any]:
    return ledger_entry(
        "backup",
        job(check, within, schedule),
        ["/etc/crontab:12"],
        runs,
        signoff,
        INSTALLED.isoformat(),
        "UTC",
        now,
    )


def test_never_ran_once_past_its_first_expected_run() -> None:
    row = entry([])
    assert row["state"] == NEVER_RAN
    assert row["first_due"] == "2026-12-02T03:00:00+00:00"
    assert "2026-12-02 03:00" in row["why"]


def test_a_new_release_does_not_reset_a_job_installed_before_it() -> None:
    """The job's own ``installed_since`` counts, not the latest release's install."""
    record = {**job(), "installed_since": "2026-11-20T10:00:00Z"}
    later_release = (NOW - timedelta(minutes=5)).isoformat()
    row = ledger_entry("backup", record, [], [], None, later_release, "UTC", NOW)
    assert (row["state"], row["first_due"]) == (NEVER_RAN, "2026-11-21T03:00:00+00:00")
    older = ledger_entry("backup", job(), [], [], None, later_release, "UTC", NOW)
    assert older["state"] == PENDING  # a release without installed_since: the release's time


def test_pending_before_its_first_expected_run() -> None:
    row = entry([], now=INSTALLED + timedelta(hours=1))
    assert row["state"] == PENDING


def test_running_then_verified_with_a_success_check() -> None:
    assert entry([run(2)], check=True)["state"] == RUNNING
    row = entry([run(2), run(3), run(4)], check=True)
    assert row["state"] == VERIFIED
    assert (row["runs"], row["successes"], row["failures"]) == (3, 3, 0)
    assert row["first_run"].startswith("2026-12-02T03:00:01")


def test_successes_without_a_check_or_sign_off_are_not_verified() -> None:
    row = entry([run(2), run(3), run(4)])
    assert row["state"] == RUNNING
    assert "success.check" in row["why"] and "verified_by" in row["why"]
    assert entry([run(2), run(3), run(4)], within=True)["state"] == VERIFIED


def test_sign_off_alone_and_with_successes() -> None:
    signoff = ("Ana Ops", "2026-12-05")
    row = entry([run(2)], signoff=signoff)
    assert row["state"] == SIGNED_OFF
    assert row["signed_off"] == {"by": "Ana Ops", "on": "2026-12-05"}
    assert entry([run(2), run(3), run(4)], signoff=signoff)["state"] == VERIFIED


def test_failing_when_the_last_run_failed() -> None:
    row = entry([run(2), run(3), run(4), run(5, "timed-out")], check=True)
    assert row["state"] == FAILING
    assert row["failures"] == 1 and "timed-out" in row["why"]


def test_runs_by_hand_and_skipped_runs_prove_nothing() -> None:
    runs = [run(2, by_hand=True), run(3, by_hand=True), run(4, by_hand=True), run(5, "skipped")]
    row = entry(runs, check=True)
    assert row["state"] == NEVER_RAN
    assert (row["runs"], row["by_hand"], row["skipped"]) == (0, 3, 1)


def test_the_document_and_its_text() -> None:
    verified = entry([run(2), run(3), run(4)], check=True)
    never = entry([])
    doc = ledger_document([verified, never], 3, NOW)
    assert doc["migration_format"] == 1
    assert doc["summary"][VERIFIED] == 1 and doc["summary"][NEVER_RAN] == 1
    assert doc["complete"] is False
    text = ledger_text(doc)
    assert "backup" in text and "never-ran" in text and "/etc/crontab:12" in text
    assert ledger_document([verified], 3, NOW)["complete"] is True


@pytest.mark.parametrize("needed", [1, 5])
def test_the_number_of_successes_needed_is_a_parameter(needed: int) -> None:
    runs = [run(2), run(3), run(4)]
    row = ledger_entry(
        "backup", job(True), [], runs, None, INSTALLED.isoformat(), "UTC", NOW, needed
    )
    assert row["state"] == (VERIFIED if needed <= 3 else RUNNING)


def test_since_counts_from_the_cut_over_given() -> None:
    """``--since``: runs before it do not count, and the never-ran clock starts at it
    (not at the install, which may be later, or earlier, than the cut-over)."""
    since = datetime(2026, 12, 4, 0, 0, tzinfo=UTC)
    runs = [run(2), run(3), run(5), run(6)]

    def counted(now: datetime, found: list[dict[str, Any]]) -> dict[str, Any]:
        return ledger_entry(
            "backup", job(True), [], found, None, NOW.isoformat(), "UTC", now, since=since
        )

    row = counted(NOW, runs)
    assert (row["runs"], row["successes"], row["state"]) == (2, 2, RUNNING)
    assert row["first_run"].startswith("2026-12-05T03:00:01")
    # installed "now", yet due on the 4th at 03:00 counting from the cut-over given
    never = counted(NOW, [run(2, by_hand=True)])
    assert (never["state"], never["first_due"]) == (NEVER_RAN, "2026-12-04T03:00:00+00:00")
    assert never["by_hand"] == 0
    assert counted(since + timedelta(hours=1), [])["state"] == PENDING
    doc = ledger_document([row], 3, NOW, since=since)
    assert doc["since"] == "2026-12-04T00:00:00+00:00"
    assert "counted from 2026-12-04 00:00 UTC (--since)" in ledger_text(doc)
    assert ledger_document([row], 3, NOW)["since"] is None
