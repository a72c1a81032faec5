"""The fleet view's pure parts: a host's status item and its DynamoDB form, and the flags
``cronsync fleet`` raises from the items and a clock."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cronsync.core.fleetitem import (
    EXPIRY_MIN_SECONDS,
    HostSummary,
    from_attributes,
    summary_from_item,
    summary_item,
    to_attributes,
)
from cronsync.core.fleettext import fleet_text
from cronsync.core.fleetview import fleet_document

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
TIP, OLD = "a" * 40, "b" * 40


def at(seconds_ago: int) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat(timespec="seconds")


def summary(host: str = "batch-1", **changes: Any) -> HostSummary:
    base = HostSummary(
        host=host,
        groups=("eu",),
        repo="https://git.example.com/jobs.git",
        branch="main",
        installed_commit=TIP,
        health="ok",
        last_sync_result="unchanged",
        last_sync_at=at(30),
        drift=0,
        stale_jobs=(),
        version="1.0",
        heartbeat=at(30),
        interval=70,
        fetched_commit=TIP,
        fetched_at=at(40),
        one_host_jobs=(),
    )
    return replace(base, **changes)


def item(host: str = "batch-1", **changes: Any) -> dict[str, Any]:
    return summary_item(summary(host, **changes))


def rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["host"]: row for row in doc["hosts"]}


# --- the item ---------------------------------------------------------------------


def test_an_item_survives_the_dynamodb_wire_form() -> None:
    original = summary(stale_jobs=("nightly",), one_host_jobs=("report", "sweep"))
    wire = to_attributes(summary_item(original))
    assert sorted(wire) == ["expires_at", "format", "pk", "sk", "summary"]
    assert wire["pk"] == {"S": "host"} and wire["sk"] == {"S": "batch-1"}
    assert wire["format"] == {"N": "1"}
    assert json.loads(wire["summary"]["S"]) == {
        **asdict(original),
        "groups": ["eu"],
        "stale_jobs": ["nightly"],
        "one_host_jobs": ["report", "sweep"],
    }
    assert summary_from_item(from_attributes(wire)) == original


def test_the_generic_wire_form_covers_every_plain_type() -> None:
    plain = {"s": "x", "n": 3, "b": False, "none": None, "l": ["a", 1], "m": {"k": [True]}}
    wire = to_attributes(plain)
    assert wire["l"] == {"L": [{"S": "a"}, {"N": "1"}]}
    assert wire["m"] == {"M": {"k": {"L": [{"BOOL": True}]}}}
    assert from_attributes(wire) == plain
    with pytest.raises(TypeError):
        to_attributes({"f": 1.5})


def test_an_item_never_installed_keeps_its_nulls() -> None:
    original = summary(installed_commit=None, health="failed", last_sync_result=None)
    wire = to_attributes(summary_item(original))
    assert json.loads(wire["summary"]["S"])["installed_commit"] is None
    assert summary_from_item(from_attributes(wire)) == original


def test_expiry_is_a_generous_multiple_of_the_interval() -> None:
    beat = int((NOW - timedelta(seconds=30)).timestamp())
    assert item(interval=60)["expires_at"] == beat + 1440 * 60
    assert item(interval=10)["expires_at"] == beat + EXPIRY_MIN_SECONDS


def with_summary(**changes: Any) -> dict[str, Any]:
    """batch-1's item with ``changes`` made inside its JSON summary."""
    fields = {**json.loads(item()["summary"]), **changes}
    return {**item(), "summary": json.dumps(fields)}


@pytest.mark.parametrize(
    "broken",
    [
        with_summary(health="fine"),
        with_summary(drift=True),
        with_summary(drift=-1),
        with_summary(interval="60"),
        with_summary(groups="eu"),
        with_summary(stale_jobs=[1]),
        with_summary(heartbeat="yesterday"),
        with_summary(installed_commit=7),
        with_summary(host="someone-else"),
        {**item(), "summary": "{not json"},
        {**item(), "summary": "[]"},
        {**item(), "summary": None},
        {**item(), "format": 2},
    ],
)
def test_an_item_of_the_wrong_shape_is_not_read(broken: dict[str, Any]) -> None:
    assert summary_from_item(broken) is None
    doc = fleet_document([broken], NOW)
    assert doc["unreadable"] == ["batch-1"]
    assert doc["hosts"] == [] and doc["healthy"] is False


def test_wire_values_this_module_never_writes_read_as_none() -> None:
    plain = from_attributes({"a": {"SS": ["x"]}, "b": {"N": "1.5"}, "c": {"S": 1}, "d": "x"})
    assert plain == {"a": None, "b": None, "c": None, "d": None}


# --- the flags --------------------------------------------------------------------


def test_a_fleet_on_the_tip_and_heard_from_is_healthy() -> None:
    doc = fleet_document([item("batch-1"), item("batch-2")], NOW)
    assert doc["healthy"] is True
    assert [row["flags"] for row in doc["hosts"]] == [[], []]
    assert doc["tips"] == [
        {
            "repo": "https://git.example.com/jobs.git",
            "branch": "main",
            "commit": TIP,
            "fetched_at": at(40),
            "host": "batch-1",
        }
    ]


def test_silent_after_more_than_three_of_its_own_intervals() -> None:
    doc = fleet_document(
        [
            item("on-time", heartbeat=at(3 * 70)),
            item("late", heartbeat=at(3 * 70 + 1)),
            item("slow", heartbeat=at(3 * 70 + 1), interval=600),
        ],
        NOW,
    )
    found = rows(doc)
    assert found["on-time"]["flags"] == [] and found["slow"]["flags"] == []
    assert found["late"]["flags"] == ["silent"] and found["late"]["state"] == "silent"
    assert found["late"]["silent_for"] == 211
    assert doc["healthy"] is False


def test_a_clock_ahead_of_ours_is_not_silent() -> None:
    doc = fleet_document([item(heartbeat=(NOW + timedelta(seconds=20)).isoformat())], NOW)
    assert rows(doc)["batch-1"]["silent_for"] == 0 and doc["healthy"] is True


def test_the_tip_is_what_the_most_recent_fetch_saw() -> None:
    doc = fleet_document(
        [
            # batch-1 fetched long ago and saw OLD (installed it): behind the tip
            item("batch-1", installed_commit=OLD, fetched_commit=OLD, fetched_at=at(600)),
            # batch-2 fetched last and saw TIP, but refused it: behind too
            item("batch-2", installed_commit=OLD, health="degraded", fetched_at=at(10)),
            item("batch-3", fetched_at=at(100)),
        ],
        NOW,
    )
    found = rows(doc)
    assert [tip["commit"] for tip in doc["tips"]] == [TIP]
    assert doc["tips"][0]["host"] == "batch-2"
    assert found["batch-1"]["flags"] == ["behind-tip"]
    assert found["batch-2"]["flags"] == ["unhealthy", "behind-tip"]
    assert found["batch-3"]["flags"] == []
    assert found["batch-1"]["tip_commit"] == TIP


def test_each_branch_has_its_own_tip() -> None:
    doc = fleet_document(
        [
            item("batch-1"),
            item("staging-1", branch="staging", installed_commit=OLD, fetched_commit=OLD),
        ],
        NOW,
    )
    assert doc["healthy"] is True
    assert sorted((tip["branch"], tip["commit"]) for tip in doc["tips"]) == [
        ("main", TIP),
        ("staging", OLD),
    ]


def test_a_host_that_never_fetched_sets_no_tip_but_is_judged_against_it() -> None:
    doc = fleet_document(
        [
            item(
                "new", installed_commit=None, health="failed", fetched_commit=None, fetched_at=None
            ),
            item("old"),
        ],
        NOW,
    )
    assert rows(doc)["new"]["flags"] == ["unhealthy", "behind-tip"]
    assert [tip["host"] for tip in doc["tips"]] == ["old"]


def test_hosts_are_sorted_worst_first() -> None:
    doc = fleet_document(
        [
            item("a-ok"),
            item("b-behind", installed_commit=OLD),
            item("c-degraded", health="degraded"),
            item("d-failed", health="failed", installed_commit=None),
            item("e-silent", heartbeat=at(3600)),
        ],
        NOW,
    )
    assert [row["host"] for row in doc["hosts"]] == [
        "e-silent",
        "d-failed",
        "c-degraded",
        "b-behind",
        "a-ok",
    ]


def test_one_host_jobs_need_a_healthy_host() -> None:
    doc = fleet_document(
        [
            item("batch-1", one_host_jobs=("report", "sweep")),
            item("batch-2", one_host_jobs=("sweep", "invoice"), health="degraded"),
            item("batch-3", one_host_jobs=("invoice", "export"), heartbeat=at(3600)),
        ],
        NOW,
        known_one_host=("orphan",),
    )
    jobs = {job["job"]: job for job in doc["jobs"]}
    assert jobs["report"] == {
        "job": "report",
        "hosts": ["batch-1"],
        "healthy_hosts": ["batch-1"],
        "flags": [],
    }
    assert jobs["sweep"]["flags"] == [] and jobs["sweep"]["hosts"] == ["batch-1", "batch-2"]
    assert jobs["invoice"]["flags"] == ["no-healthy-host"]
    assert jobs["export"]["flags"] == ["no-healthy-host"]
    assert jobs["orphan"] == {
        "job": "orphan",
        "hosts": [],
        "healthy_hosts": [],
        "flags": ["no-healthy-host"],
    }


def test_a_behind_host_still_counts_as_healthy_for_its_jobs() -> None:
    doc = fleet_document([item(installed_commit=OLD, one_host_jobs=("report",))], NOW)
    assert doc["jobs"][0]["flags"] == []
    assert doc["healthy"] is False  # the host itself is flagged


def test_expired_items_are_left_out() -> None:
    gone = item("gone", heartbeat=at(10 * 86400), fetched_at=at(10 * 86400))
    doc = fleet_document([gone, item("batch-1")], NOW)
    assert [row["host"] for row in doc["hosts"]] == ["batch-1"] and doc["expired"] == 1


# --- the text -----------------------------------------------------------------------


def test_the_text_names_every_flag_and_the_tip() -> None:
    doc = fleet_document(
        [
            item("batch-1", one_host_jobs=("report",)),
            item("batch-2", installed_commit=OLD, heartbeat=at(3600), one_host_jobs=("sweep",)),
        ],
        NOW,
        known_one_host=("gone",),
    )
    text = fleet_text(doc)
    lines = text.splitlines()
    assert lines[0].startswith(f"tip:   main {TIP[:12]} (fetched by batch-1 at ")
    header = next(n for n, line in enumerate(lines) if line.startswith("HOST"))
    assert lines[header + 1].split()[:2] == ["batch-2", "silent"]
    assert "  1h ago  " in lines[header + 1]
    assert "behind-tip" in lines[header + 1] and OLD[:12] in lines[header + 1]
    assert lines[header + 2].startswith("batch-1")
    assert "sweep: no healthy host installs it (installed on batch-2)" in text
    assert "  gone: no healthy host installs it (installed nowhere)" in lines
    assert not any("report:" in line for line in lines)  # it has a healthy host
    assert lines[-1] == "fleet: 2 hosts, 1 flagged; 2 one-host jobs without a healthy host"


def test_the_text_of_an_empty_table_says_so() -> None:
    assert fleet_text(fleet_document([], NOW)) == "fleet: no host has written its status yet"


def test_a_fleet_where_nobody_reports_is_not_healthy() -> None:
    doc = fleet_document([], NOW)
    assert doc["healthy"] is False
    assert fleet_text(doc) == "fleet: no host has written its status yet"


def test_the_reading_host_missing_from_the_table_is_named() -> None:
    """A host whose agent is not running (the sync timer writes no status) is not
    silently left out of the view it reads."""
    doc = fleet_document([item("batch-1")], NOW, reading_host="batch-2")
    assert (doc["healthy"], doc["not_reporting"]) == (False, ["batch-2"])
    assert "batch-2 (this host) has written no status" in fleet_text(doc)
    present = fleet_document([item("batch-1")], NOW, reading_host="batch-1")
    assert (present["healthy"], present["not_reporting"]) == (True, [])
    alone = fleet_document([], NOW, reading_host="batch-2")
    assert fleet_text(alone).splitlines()[1].startswith("batch-2 (this host)")
