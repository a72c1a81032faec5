"""``plan`` and ``status`` show each job's staleness window: success.within, or derived
from the schedule when the sync compiles the release (text and --json)."""

from __future__ import annotations

import json

from helpers.sandbox import Sandbox

# cdn-warm-eu: @hourly, timeout 20m, jitter 10m, no success.within:
# gap 1h + timeout 20m + jitter 10m + margin 6m (10 % of the gap)
CDN_WINDOW = {
    "seconds": 3600 + 1200 + 600 + 360,
    "source": "schedule",
    "gap": 3600,
    "timeout": 1200,
    "jitter": 600,
    "margin": 360,
}


def test_plan_and_status_show_the_derived_window(sandbox: Sandbox) -> None:
    plan = sandbox.cli("plan", "--json")
    assert plan.returncode == 0, plan
    windows = json.loads(plan.stdout)["stale_windows"]
    assert windows["cdn-warm-eu"] == CDN_WINDOW
    assert windows["nightly-aggregate"] == {"seconds": 26 * 3600, "source": "within"}
    assert "legacy-mail-report" not in windows  # disabled: not installed here
    text = sandbox.cli("plan").stdout
    assert (
        "    stale after: 1h 36m (schedule: gap 1h + timeout 20m + jitter 10m + margin 6m)" in text
    )

    assert sandbox.cli("sync").returncode == 0
    jobs_doc = json.loads((sandbox.current / "jobs.json").read_text(encoding="utf-8"))
    assert jobs_doc["jobs"]["cdn-warm-eu"]["stale_window"] == CDN_WINDOW
    assert jobs_doc["jobs"]["legacy-mail-report"]["stale_window"] is None
    status = sandbox.cli("status", "--json")
    assert status.returncode == 0, status  # installed just now: nothing stale yet
    rows = {row["name"]: row for row in json.loads(status.stdout)["jobs"]}
    assert rows["cdn-warm-eu"]["stale_window"] == CDN_WINDOW
    assert rows["weekly-cleanup"]["stale_window"] == {"seconds": 8 * 86400, "source": "within"}
    table = sandbox.cli("status").stdout
    assert "STALE AFTER" in table
    (cdn,) = [line for line in table.splitlines() if line.startswith("cdn-warm-eu ")]
    assert cdn.endswith("1h 36m (schedule)")


def test_installed_since_survives_other_commits(sandbox: Sandbox) -> None:
    assert sandbox.cli("sync").returncode == 0
    first = json.loads((sandbox.current / "jobs.json").read_text(encoding="utf-8"))["jobs"]
    since = first["cdn-warm-eu"]["installed_since"]
    assert since and first["legacy-mail-report"]["installed_since"] is None  # disabled
    path = sandbox.upstream.work / "jobs" / "weekly-cleanup.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("15 4 * * sun", "20 4 * * sun"))
    sandbox.upstream.commit_and_push("another job's change")
    assert sandbox.cli("sync").returncode == 0
    again = json.loads((sandbox.current / "jobs.json").read_text(encoding="utf-8"))["jobs"]
    assert again["cdn-warm-eu"]["installed_since"] == since  # not the new release's install
    assert again["weekly-cleanup"]["installed_since"] == since  # changed, still installed
    plan = json.loads(sandbox.cli("plan", "--json").stdout)
    assert plan["changes"] == []  # nothing to show: the since of each job is carried
