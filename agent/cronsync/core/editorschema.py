"""JSON Schemas (draft 2020-12) of the file formats, for editors, made from the one schema.

``cronsync schema --format json-schema`` prints or writes them; ``repo-template/.schemas/``
holds them as committed files (``scripts/update-docs`` rewrites them, a test keeps them
equal) and ``repo-template/.taplo.toml`` points Taplo / Even Better TOML at them, so an
editor completes keys and marks mistakes while a job file is written.

A schema here never rejects what cronsync accepts: it checks the types, required keys
and unknown keys the manifest checks, and no more (the schedule, the zone, the command's
script and the like are ``cronsync validate``'s). It may accept a few values cronsync
refuses (a trailing newline Python's ``$`` lets through, a duration over ten years).
Keywords are those that mean the same in drafts 7 and 2020-12, as Taplo reads either.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cronsync.core import schema
from cronsync.core.agentschema import AGENT_FIELDS
from cronsync.core.durations import parse_duration
from cronsync.core.schema import Field
from cronsync.core.tomlcheck import ENV_NAME

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# The characters str.strip() removes (str.isspace()), as a regex class body: a value
# made only of these is "empty" to cronsync. A unit test checks the list is complete.
WHITESPACE = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a"
    r"\u2028\u2029\u202f\u205f\u3000"
)
# What a one-line string must not hold (tomlcheck's _CONTROL, and NUL).
CONTROL = r"\u0000-\u0008\u000a-\u001f\u007f"
ONE_LINE = rf"^[^{CONTROL}]*[^{CONTROL}{WHITESPACE}][^{CONTROL}]*$"
MULTI_LINE = rf"^[^\u0000]*[^\u0000{WHITESPACE}][^\u0000]*$"
NO_NUL = r"^[^\u0000]*$"
_NUMBER = r"(?: *[0-9]){1,9} *[smhdwSMHDW]"
DURATION = rf"^[{WHITESPACE}]*(?:0|{_NUMBER}(?:{_NUMBER})*)[{WHITESPACE}]*$"

# document name -> (file name, title, what it describes, its fields)
DOCUMENTS: dict[str, tuple[str, str, str, tuple[Field, ...]]] = {
    "job": (
        "job.schema.json",
        "cronsync job file (jobs/NAME.toml)",
        "One cron job of a cronsync jobs repository; the job's name is the file name.",
        schema.JOB_FIELDS,
    ),
    "cronsync": (
        "cronsync.schema.json",
        "cronsync repository defaults (cronsync.toml)",
        "Values every job of the repository gets unless it sets its own.",
        schema.REPO_FIELDS,
    ),
    "agent": (
        "agent.schema.json",
        "cronsync host config (/etc/cronsync/agent.toml)",
        "One per host: where the jobs come from and how the agent behaves.",
        AGENT_FIELDS,
    ),
}

_ONE_LINE_STRING = {"type": "string", "pattern": ONE_LINE}
_SECRET_TABLE = {
    "type": "object",
    "properties": {"secret": _ONE_LINE_STRING, "key": _ONE_LINE_STRING},
    "required": ["secret"],
    "additionalProperties": False,
}


def _kind_schema(item: Field) -> dict[str, Any]:
    """The JSON Schema of one field's value, by its kind (tables in ``_table_schema``)."""
    kind = item.kind
    env_names = {"pattern": f"^{ENV_NAME.pattern}$"}
    by_kind: dict[str, dict[str, Any]] = {
        schema.STRING: dict(_ONE_LINE_STRING),
        schema.TEXT: {"type": "string", "pattern": MULTI_LINE},
        schema.BOOL: {"type": "boolean"},
        schema.INT: {"type": "integer", "minimum": 0},
        schema.DURATION: {"type": "string", "pattern": DURATION},
        schema.ARGV: {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": NO_NUL},
        },
        schema.STRING_LIST: {"type": "array", "items": dict(_ONE_LINE_STRING)},
        schema.ENUM: {"type": "string", "enum": list(item.choices)},
        schema.ENV_TABLE: {
            "type": "object",
            "propertyNames": env_names,
            "additionalProperties": {"type": "string", "pattern": NO_NUL},
        },
        schema.SECRETS_TABLE: {
            "type": "object",
            "propertyNames": env_names,
            "additionalProperties": {"anyOf": [dict(_ONE_LINE_STRING), _SECRET_TABLE]},
        },
    }
    if kind not in by_kind:
        raise AssertionError(f"no JSON Schema for kind {kind}")  # a schema bug
    return by_kind[kind]


def _example(item: Field) -> list[Any]:
    """The field's example as a TOML value (``[]`` when it has none)."""
    if not item.example:
        return []
    return [tomllib.loads(f"value = {item.example}")["value"]]


def _default(item: Field) -> list[Any]:
    """The field's default as a value, when its documented text is one (not prose such
    as "defaults.user")."""
    text = item.default
    if text is None:
        return []
    if item.kind == schema.BOOL and text in ("true", "false"):
        return [text == "true"]
    if item.kind == schema.INT and text.isdigit():
        return [int(text)]
    if item.kind == schema.ENUM and text in item.choices:
        return [text]
    if item.kind == schema.DURATION:
        try:
            parse_duration(text)
        except ValueError:
            return []
        return [text]
    return []


def _described(item: Field, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the field's description, default and example added."""
    text = item.description
    if item.default is not None:
        text += f" Default: {item.default}."
    if item.choices:
        text += f" One of: {', '.join(item.choices)}."
    described = {"description": text, **body}
    for key, values in (("default", _default(item)), ("examples", _example(item))):
        if values:
            described[key] = values[0] if key == "default" else values
    return described


def _needed(item: Field) -> bool:
    """Whether a file must hold the field: required with no default, or a table that
    holds such a field."""
    if item.kind == schema.TABLE:
        return any(_needed(sub) for sub in item.fields)
    return item.required and item.default is None


def _table_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    """The schema of a table: its fields, no other key, the needed ones required."""
    properties = {}
    for item in fields:
        body = _table_schema(item.fields) if item.kind == schema.TABLE else _kind_schema(item)
        properties[item.name] = _described(item, body)
    table: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    required = [item.name for item in fields if _needed(item)]
    if required:
        table["required"] = required
    return table


def json_schema(document: str) -> dict[str, Any]:
    """Return the JSON Schema of one file format.

    Args:
        document: a key of :data:`DOCUMENTS`: ``"job"``, ``"cronsync"`` or ``"agent"``.

    Returns:
        The schema, as JSON-ready data (draft 2020-12).

    Raises:
        KeyError: ``document`` is none of them.
    """
    _file, title, description, fields = DOCUMENTS[document]
    return {"$schema": DRAFT, "title": title, "description": description} | _table_schema(fields)


def json_schema_text(document: str) -> str:
    """Return :func:`json_schema` as the text of its file: indented JSON, keys in the
    schema's order, ending with a newline (what ``repo-template/.schemas/`` holds)."""
    return json.dumps(json_schema(document), indent=2, ensure_ascii=False) + "\n"
