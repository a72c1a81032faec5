"""The file format reference, generated from ``schema`` (``cronsync schema``).

docs/reference/file-formats.md is this output; a test keeps the two equal.
"""

from __future__ import annotations

from typing import Any

from cronsync.core import schema
from cronsync.core.agentschema import AGENT_FIELDS
from cronsync.core.schema import Field

SECTIONS = (
    (
        "Job file (`jobs/NAME.toml`)",
        "The job's name is the file name without `.toml`: "
        "lowercase letters, digits, `-` and `_`, starting with a letter. Unknown keys are "
        'errors. Durations are strings such as `"90s"`, `"45m"`, `"26h"`, `"1h30m"`, '
        '`"2d"`.',
        schema.JOB_FIELDS,
    ),
    (
        "Repository defaults (`cronsync.toml`)",
        "Optional; values every job gets unless it sets its own.",
        schema.REPO_FIELDS,
    ),
    (
        "Host config (`/etc/cronsync/agent.toml`)",
        "One per host; `--config` or `$CRONSYNC_CONFIG` point elsewhere.",
        AGENT_FIELDS,
    ),
)


def _rows(fields: tuple[Field, ...], prefix: str = "") -> list[str]:
    rows = []
    for item in fields:
        key = f"{prefix}{item.name}"
        if item.kind == schema.TABLE:
            rows.append(f"| `[{key}]` | table | {item.description} | | |")
            rows += _rows(item.fields, f"{key}.")
            continue
        kind = item.kind if not item.choices else " \\| ".join(item.choices)
        need = "required" if item.required and item.default is None else (item.default or "")
        if item.required and item.default is not None:
            need = f"required (or {item.default})"
        example = f"`{item.example}`" if item.example else ""
        rows.append(f"| `{key}` | {kind} | {item.description} | {need} | {example} |")
    return rows


def schema_markdown() -> str:
    """Return the reference of every file format as Markdown."""
    out = []
    for title, intro, fields in SECTIONS:
        out += [
            f"## {title}",
            "",
            intro,
            "",
            "| key | type | meaning | default | example |",
            "|---|---|---|---|---|",
        ]
        out += [row.replace("\n", " ") for row in _rows(fields)]
        out.append("")
    return "\n".join(out)


def _field_json(item: Field) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": item.name,
        "kind": item.kind,
        "description": item.description,
        "required": item.required,
    }
    if item.example:
        data["example"] = item.example
    if item.default is not None:
        data["default"] = item.default
    if item.choices:
        data["choices"] = list(item.choices)
    if item.fields:
        data["fields"] = [_field_json(sub) for sub in item.fields]
    return data


def schema_json() -> dict[str, Any]:
    """Return the reference of every file format as JSON-ready data."""
    return {
        "job": [_field_json(item) for item in schema.JOB_FIELDS],
        "repository": [_field_json(item) for item in schema.REPO_FIELDS],
        "agent": [_field_json(item) for item in AGENT_FIELDS],
    }
