"""The editors' JSON Schemas: made from the one schema, committed in repo-template, and
never stricter than cronsync (what cronsync accepts, they accept; the unknown keys and
wrong types cronsync refuses, they refuse)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import jsonschema  # a test dependency: missing, this fails rather than skips
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronsync.core import editorschema, schema
from cronsync.core.agentschema import AGENT_FIELDS
from cronsync.core.durations import parse_duration
from cronsync.core.editorschema import DOCUMENTS, json_schema, json_schema_text
from cronsync.core.schema import Field
from cronsync.core.tomlcheck import Located, check_table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP = Path(__file__).resolve().parents[2]
SCHEMAS = TOP / "repo-template" / ".schemas"
FIELDS = {"job": schema.JOB_FIELDS, "cronsync": schema.REPO_FIELDS, "agent": AGENT_FIELDS}


def schema_errors(document: str, data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(json_schema(document))
    return [error.message for error in validator.iter_errors(data)]


def cronsync_errors(document: str, data: dict[str, Any]) -> list[str]:
    """What cronsync's schema check says of ``data`` (types, unknown keys, required)."""
    problems = check_table(Located("f.toml", data, {}), data, FIELDS[document])
    missing = [
        item.name
        for item in FIELDS[document]
        if item.required and item.default is None and item.name not in data
    ]
    return [p.format() for p in problems] + [f"missing {name}" for name in missing]


def example_document(fields: tuple[Field, ...]) -> dict[str, Any]:
    """A document with every field set to its documented example."""
    data: dict[str, Any] = {}
    for item in fields:
        if item.kind == schema.TABLE:
            data[item.name] = example_document(item.fields)
        elif item.example:
            data[item.name] = tomllib.loads(f"v = {item.example}")["v"]
    return data


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_each_schema_is_a_valid_draft_2020_12_schema(document: str) -> None:
    generated = json_schema(document)

    jsonschema.Draft202012Validator.check_schema(generated)
    assert generated["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert generated["additionalProperties"] is False


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_committed_schemas_are_the_generated_ones(document: str) -> None:
    file_name = DOCUMENTS[document][0]
    committed = (SCHEMAS / file_name).read_text(encoding="utf-8")

    assert committed == json_schema_text(document), (
        f"repo-template/.schemas/{file_name} is stale: run ./scripts/update-docs"
    )


def test_the_whitespace_class_is_what_str_strip_removes() -> None:
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    matched = re.findall(f"[{editorschema.WHITESPACE}]", every)

    assert matched == [c for c in every if c.isspace()]


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_every_documented_example_is_accepted_by_both(document: str) -> None:
    data = example_document(FIELDS[document])

    assert cronsync_errors(document, data) == []
    assert schema_errors(document, data) == []


def doc_examples() -> list[tuple[str, str, str]]:
    """The job file and agent.toml examples of README.md and docs/: (document, name, text)."""
    pages = [TOP / "README.md", *sorted((TOP / "docs").rglob("*.md"))]
    found = []
    for page in pages:
        blocks = re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
        for number, block in enumerate(blocks):
            text = "\n".join(line.strip() for line in block.splitlines())
            name = f"{page.relative_to(TOP)} example {number}"
            if text.startswith("# jobs/"):
                found.append(("job", name, text))
            elif text.startswith("[repo]"):
                found.append(("agent", name, text))
    return found


def template_files() -> list[tuple[str, str, str]]:
    """Every job file and cronsync.toml of repo-template, and the docs' examples."""
    template = TOP / "repo-template"
    found = [
        ("job", str(path.relative_to(TOP)), path.read_text(encoding="utf-8"))
        for path in sorted((template / "jobs").rglob("*.toml"))
    ]
    config = (template / "cronsync.toml").read_text(encoding="utf-8")
    found.append(("cronsync", "repo-template/cronsync.toml", config))
    return found + doc_examples()


def test_the_docs_have_a_job_and_an_agent_example() -> None:
    assert sorted({document for document, _name, _text in doc_examples()}) == ["agent", "job"]


@pytest.mark.parametrize(
    ("document", "text"), [pytest.param(doc, text, id=name) for doc, name, text in template_files()]
)
def test_every_template_file_validates(document: str, text: str) -> None:
    data = tomllib.loads(text)

    assert cronsync_errors(document, data) == []
    assert schema_errors(document, data) == []


GOOD_JOB = {
    "description": "Aggregate reviews",
    "owner": "data-team@example.com",
    "schedule": "30 3 * * *",
    "command": ["scripts/nightly.sh"],
}


@pytest.mark.parametrize(
    "change",
    [
        {"comand": ["x"]},  # an unknown key
        {"success": {"within": "2h", "wihtin": "3h"}},  # an unknown key in a table
        {"success": "26h"},  # a table as a string
        {"timeout": 45},
        {"timeout": "45 minutes"},
        {"jitter": ""},
        {"concurrency": "skip"},
        {"enabled": "false"},
        {"command": []},
        {"command": "scripts/nightly.sh"},
        {"command": ["scripts/x.sh", 3]},
        {"hosts": "batch-1"},
        {"hosts": ["batch-1", ""]},
        {"owner": "   "},
        {"schedule": "30 3 * * *\n* * * * * root evil"},
        {"user": "root\nx"},
        {"description": ""},
        {"env": {"1BAD": "x"}},
        {"env": {"GOOD": 1}},
        {"secrets": {"DB": {"secret": "db", "field": "password"}}},
        {"secrets": {"DB": {"key": "password"}}},
        {"secrets": {"DB": 5}},
        {"secrets": {"BAD-NAME": "db"}},
    ],
    ids=repr,
)
def test_what_cronsync_refuses_in_a_job_the_schema_refuses(change: dict[str, Any]) -> None:
    data = {**GOOD_JOB, **change}

    assert cronsync_errors("job", data) != []
    assert schema_errors("job", data) != []


@pytest.mark.parametrize("missing", ["description", "owner", "schedule"])
def test_a_required_key_missing_is_refused_by_both(missing: str) -> None:
    data = {key: value for key, value in GOOD_JOB.items() if key != missing}

    assert cronsync_errors("job", data) != []
    assert schema_errors("job", data) != []


def test_user_is_not_required_by_the_schema_as_cronsync_toml_may_give_it() -> None:
    assert "user" not in json_schema("job")["required"]
    assert schema_errors("job", GOOD_JOB) == []


def test_agent_toml_needs_repo_url_and_refuses_unknown_tables() -> None:
    assert schema_errors("agent", {"repo": {"url": "/srv/jobs.git"}}) == []
    assert schema_errors("agent", {}) != []
    assert schema_errors("agent", {"repo": {"branch": "main"}}) != []
    assert schema_errors("agent", {"repo": {"url": "/x"}, "drift": {"policy": "fix"}}) != []
    assert schema_errors("agent", {"repo": {"url": "/x"}, "sync": {"keep_releases": -1}}) != []


def test_fields_carry_description_default_and_example_for_completion() -> None:
    properties = json_schema("job")["properties"]

    assert properties["concurrency"]["enum"] == ["forbid", "allow", "replace"]
    assert properties["enabled"]["default"] is True
    assert properties["timeout"]["examples"] == ["45m"]
    assert "Default: defaults.timeout" in properties["timeout"]["description"]
    assert "default" not in properties["timeout"]  # prose, not a value
    assert json_schema("agent")["properties"]["agent"]["properties"]["interval"]["default"] == "60s"


DURATION_TEXT = st.text(alphabet="0123456789smhdwSMHDWx \t\n\u00a0", max_size=14)


@given(DURATION_TEXT)
def test_the_duration_pattern_accepts_every_duration_cronsync_accepts(text: str) -> None:
    try:
        parse_duration(text)
    except ValueError:
        return
    assert re.search(editorschema.DURATION, text), text


@given(st.text(max_size=12))
def test_the_string_patterns_accept_every_string_cronsync_accepts(text: str) -> None:
    patterns = (("owner", editorschema.ONE_LINE), ("description", editorschema.MULTI_LINE))
    for name, pattern in patterns:
        accepted = not check_table(Located("f", {name: text}, {}), {name: text}, schema.JOB_FIELDS)
        if accepted:
            assert re.search(pattern, text), (name, text)
