"""The README's file reference is the schema's, and the template follows the schema."""

from __future__ import annotations

from pathlib import Path

from cronsync.gate import check_repository
from cronsync.schemadoc import schema_markdown

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
