"""The README's file reference is the schema's, and the template follows the schema."""

from __future__ import annotations

from pathlib import Path

from cronsync.core.schemadoc import schema_markdown
from cronsync.repo.gate import check_repository

TOP = Path(__file__).resolve().parents[2]


def test_readme_reference_is_generated_from_the_schema() -> None:
    readme = (TOP / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- schema:begin -->\n", "<!-- schema:end -->"
    section = readme[readme.index(begin) + len(begin) : readme.index(end)]
    assert section == schema_markdown(), (
        "README.md's job file reference is stale: run ./scripts/update-docs"
    )


def test_repo_template_validates_cleanly_with_shellcheck() -> None:
    report = check_repository(TOP / "repo-template", lint=True)
    assert [p.format() for p in report.problems] == []
    assert len(report.repo.jobs) >= 6


def test_status_document_follows_its_published_schema() -> None:
    import json
    from datetime import datetime, timezone

    import jsonschema  # a test dependency: missing, this fails rather than skips

    from cronsync.core.state import AgentState, Installed, SyncRecord
    from cronsync.core.views import status_document

    schema = json.loads((TOP / "docs/status.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    job = {
        "name": "nightly",
        "schedule": "30 3 * * *",
        "timezone": "UTC",
        "user": "batch",
        "owner": "ops",
        "installed": True,
        "status": "installed",
        "cron": ["30 3 * * *"],
        "gate": False,
        "success": {"within": None},
        "stale_window": {
            "seconds": 86400 + 3600 + 3600,
            "source": "schedule",
            "gap": 86400,
            "timeout": 3600,
            "jitter": 0,
            "margin": 3600,
        },
    }
    within = {**job, "name": "hourly", "stale_window": {"seconds": 3600, "source": "within"}}
    boot = {**job, "name": "boot", "schedule": "@reboot", "stale_window": None}
    jobs = {"nightly": job, "hourly": within, "boot": boot}
    record = SyncRecord(
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:01+00:00",
        "refused",
        "c" * 40,
        "refused",
        (
            {
                "file": "jobs/x.toml",
                "line": 3,
                "field": "schedule",
                "message": "bad",
                "severity": "error",
            },
        ),
        (),
        ("note",),
    )
    state = AgentState(
        installed=Installed("c" * 40, "r1", "2026-01-01T00:00:00+00:00", "f" * 64, "d" * 16),
        history=[record],
        drift=[{"what": "cron-file", "message": "edited"}],
    )
    last = {
        "nightly": {
            "last_run": {
                "run_id": "r",
                "status": "failed",
                "exit_code": 2,
                "started": "s",
                "ended": "e",
                "duration": 1.5,
                "reason": None,
            }
        }
    }
    for agent in (
        None,
        {"pid": 42, "started": "2026-01-01T00:00:00+00:00", "version": "0.1.0", "running": True},
    ):
        doc = status_document(
            "batch-1",
            "UTC",
            "https://git.example.com/jobs.git",
            "main",
            state,
            {"jobs": jobs},
            datetime(2026, 1, 2, tzinfo=timezone.utc),
            last,
            agent=agent,
            stale={"nightly": {"within": 3600}},
        )
        jsonschema.validate(json.loads(json.dumps(doc, default=str)), schema)
        windows = {row["name"]: row["stale_window"] for row in doc["jobs"]}
        assert windows == {name: item["stale_window"] for name, item in jobs.items()}
    empty = status_document(
        "h", "UTC", "r", "main", AgentState(), None, datetime(2026, 1, 2, tzinfo=timezone.utc)
    )
    jsonschema.validate(empty, schema)
