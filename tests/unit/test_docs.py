"""The generated reference pages are the code's (file formats from the schema, the command
line from the parser), and the template follows the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronsync.cli.clidoc import command_line_markdown
from cronsync.cli.main import build_parser
from cronsync.core.docblocks import block_text, replace_block
from cronsync.core.schemadoc import schema_markdown
from cronsync.repo.gate import check_repository

TOP = Path(__file__).resolve().parents[2]
REFERENCE = TOP / "docs" / "reference"


def test_file_format_reference_is_generated_from_the_schema() -> None:
    page = (REFERENCE / "file-formats.md").read_text(encoding="utf-8")
    assert block_text(page, "schema") == schema_markdown(), (
        "docs/reference/file-formats.md is stale: run ./scripts/update-docs"
    )


def test_command_line_reference_is_generated_from_the_parser() -> None:
    page = (REFERENCE / "command-line.md").read_text(encoding="utf-8")
    assert block_text(page, "cli") == command_line_markdown(build_parser()), (
        "docs/reference/command-line.md is stale: run ./scripts/update-docs"
    )


def test_the_command_line_reference_names_every_option_with_its_help() -> None:
    generated = command_line_markdown(build_parser())

    assert "### `cronsync history`" in generated
    assert "| `--limit LIMIT` | how many, at least 1 (default 20) |" in generated
    assert "| `--format {markdown,json,json-schema}` |" in generated
    assert "usage: cronsync schema [-h]" in generated


def test_the_command_line_reference_does_not_depend_on_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = command_line_markdown(build_parser())
    monkeypatch.setenv("COLUMNS", "300")

    assert command_line_markdown(build_parser()) == narrow


def test_a_generated_block_is_replaced_between_its_markers_only() -> None:
    page = "# T\n\n<!-- cli:begin -->\nold\n<!-- cli:end -->\nafter\n"

    assert replace_block(page, "cli", "new\n") == (
        "# T\n\n<!-- cli:begin -->\nnew\n<!-- cli:end -->\nafter\n"
    )
    with pytest.raises(ValueError, match="exactly one"):
        block_text(page + "<!-- cli:end -->", "cli")
    with pytest.raises(ValueError, match="exactly one"):
        block_text("no markers", "schema")


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
