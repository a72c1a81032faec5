"""The check cache's decisions: which job files' checks still hold for a new commit."""

from __future__ import annotations

import dataclasses
import json

from cronsync.core.checkcache import (
    CheckCache,
    CheckedFile,
    decode_cache,
    encode_cache,
    reusable,
    touches,
)
from cronsync.core.model import Job, Problem, SecretRef, SuccessSpec

FACTS = "facts-1"
LISTING = {
    "cronsync.toml": "100644 c0",
    "jobs/a.toml": "100644 a0",
    "jobs/b.toml": "100644 b0",
    "jobs/c.toml": "100644 c1",
    "scripts/x.sh": "100755 x0",
    "tools/run": "100755 r0",
}


def record(blob: str, *deps: str) -> CheckedFile:
    return CheckedFile(blob, None, (), deps)


CACHE = CheckCache(
    FACTS,
    LISTING,
    {
        "jobs/a.toml": record("100644 a0", "scripts/x.sh"),
        "jobs/b.toml": record("100644 b0", "tools"),
        "jobs/c.toml": record("100644 c1"),
    },
)


def test_unchanged_commit_reuses_every_record() -> None:
    assert reusable(CACHE, FACTS, LISTING) == dict(CACHE.files)


def test_a_changed_job_file_is_checked_again_alone() -> None:
    listing = {**LISTING, "jobs/c.toml": "100644 c2"}
    assert set(reusable(CACHE, FACTS, listing)) == {"jobs/a.toml", "jobs/b.toml"}


def test_a_changed_script_rechecks_the_jobs_that_run_it() -> None:
    listing = {**LISTING, "scripts/x.sh": "100644 x0"}  # mode only
    assert set(reusable(CACHE, FACTS, listing)) == {"jobs/b.toml", "jobs/c.toml"}


def test_a_file_in_a_working_folder_or_above_a_dependency_counts() -> None:
    assert set(reusable(CACHE, FACTS, {**LISTING, "tools/new.py": "100644 n"})) == {
        "jobs/a.toml",
        "jobs/c.toml",
    }
    listing = {**LISTING, "scripts": "100644 s"}
    del listing["scripts/x.sh"]
    assert "jobs/a.toml" not in reusable(CACHE, FACTS, listing)
    assert touches("scripts", "scripts/x.sh") and touches("tools/a", "tools")
    assert not touches("scripts/x.sh.bak", "scripts/x.sh")


def test_what_decides_every_job_empties_the_cache() -> None:
    assert reusable(None, FACTS, LISTING) == {}
    assert reusable(CACHE, "facts-2", LISTING) == {}
    assert reusable(CACHE, FACTS, {**LISTING, "cronsync.toml": "100644 c9"}) == {}
    assert reusable(CACHE, FACTS, {**LISTING, "jobs/.gitattributes": "100644 g"}) == {}
    assert reusable(CACHE, FACTS, {**LISTING, "docs/link": "120000 l"}) == {}
    assert reusable(CACHE, FACTS, {**LISTING, "docs/\ufffd": "100644 u"}) == {}


def test_a_deleted_or_renamed_job_file_is_not_reused() -> None:
    listing = dict(LISTING)
    listing["jobs/team/c.toml"] = listing.pop("jobs/c.toml")
    assert set(reusable(CACHE, FACTS, listing)) == {"jobs/a.toml", "jobs/b.toml"}


def full_job() -> Job:
    """A job with every field off its default (the round trip must keep them all)."""
    values = {
        "name": "nightly",
        "file": "jobs/nightly.toml",
        "description": "d",
        "owner": "o",
        "schedule": "0 3 * * *",
        "user": "batch",
        "timezone": "Asia/Tokyo",
        "command": ("scripts/x.sh", "--day"),
        "shell": "echo",
        "workdir": "tools",
        "env": {"A": "1"},
        "secrets": (SecretRef("P", "secretsmanager", "db", "k"), SecretRef("T", "ssm", "/t")),
        "timeout_seconds": 60,
        "concurrency": "allow",
        "run_on": "one-host",
        "fleet_unreachable": "run",
        "jitter_seconds": 5,
        "enabled": False,
        "reason": "r",
        "hosts": ("web-*",),
        "groups": ("eu",),
        "success": SuccessSpec(3600, ("scripts/check.sh",)),
        "verified_by": "v",
        "verified_on": "2025-01-02",
        "lines": {"schedule": 3, "env": 9},
    }
    assert set(values) == {item.name for item in dataclasses.fields(Job)}
    return Job(**values)  # type: ignore[arg-type]


def test_the_document_keeps_every_field_of_a_job() -> None:
    job = full_job()
    problem = Problem("scripts/x.sh", 2, "", "syntax error", "warning")
    cache = CheckCache(FACTS, LISTING, {job.file: CheckedFile("100644 j", job, (problem,), ("a",))})
    again = decode_cache(json.loads(json.dumps(encode_cache(cache))))
    assert again == cache
    assert again is not None and again.files[job.file].job is not None
    assert again.files[job.file].job.lines == job.lines  # lines is not compared by ==


def test_a_damaged_document_is_no_cache() -> None:
    good = encode_cache(CACHE)
    assert decode_cache(good) is not None
    for bad in (
        None,
        [],
        {**good, "version": 0},
        {**good, "facts": 1},
        {**good, "listing": {"a": 1}},
        {**good, "files": {"jobs/a.toml": {"blob": "x"}}},
        {**good, "files": {"a": {"blob": "x", "job": None, "problems": [{}], "deps": []}}},
        {**good, "files": {"a": {"blob": "x", "job": {}, "problems": [], "deps": []}}},
    ):
        assert decode_cache(bad) is None
