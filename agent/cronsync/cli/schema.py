"""``cronsync schema --format json-schema``: the editors' JSON Schemas, printed or written.

The schemas themselves are made by :mod:`cronsync.core.editorschema` from the one schema.
"""

from __future__ import annotations

import argparse
import os
import sys

from cronsync.core.errors import UsageError

JSON_SCHEMA = "json-schema"
FILES_HELP = "job|cronsync|agent"


def check_schema_options(args: argparse.Namespace) -> None:
    """Refuse ``--file`` and ``--output`` with a format other than json-schema.

    Raises:
        UsageError: they were given with another format.
    """
    if args.format != JSON_SCHEMA and (args.file or args.output):
        raise UsageError("schema: --file and --output go only with --format json-schema")


def cmd_json_schema(args: argparse.Namespace) -> int:
    """Print the ``--file`` schema on stdout, or write the schemas (``--file``'s, else all
    three) into ``--output DIR`` as ``job.schema.json``, ``cronsync.schema.json`` and
    ``agent.schema.json``: each atomically, mode 0644 (editors read them).

    Returns:
        0.

    Raises:
        UsageError: neither ``--file`` nor ``--output`` was given, or DIR is not a
            directory, or (as root) another user could swap it.
        InstallError: a file could not be written (exit 4).
    """
    from cronsync.core.editorschema import DOCUMENTS, json_schema_text

    if args.output is None:
        if args.file is None:
            raise UsageError(
                f"schema --format json-schema: give --file {FILES_HELP} (print one on "
                "stdout) or --output DIR (write all three there)"
            )
        sys.stdout.write(json_schema_text(args.file))
        return 0
    if not os.path.isdir(args.output):
        raise UsageError(f"schema --output: {args.output} is not a directory")
    from cronsync.files.atomic import atomic_write
    from cronsync.files.trusted import output_folder

    folder = output_folder(args.output, "schema --output")
    for document in [args.file] if args.file else list(DOCUMENTS):
        path = os.path.join(folder, DOCUMENTS[document][0])
        atomic_write(path, json_schema_text(document).encode("utf-8"), mode=0o644)
        print(f"wrote {path}")
    return 0


def add_schema_options(schema: argparse.ArgumentParser) -> None:
    """Add ``--file`` and ``--output`` (of ``--format json-schema``) to ``schema``."""
    schema.add_argument(
        "--file",
        choices=("job", "cronsync", "agent"),
        help="with --format json-schema: the schema of job files, cronsync.toml or "
        "agent.toml (printed on stdout, or only that one written with --output)",
    )
    schema.add_argument(
        "--output",
        metavar="DIR",
        help="with --format json-schema: write job.schema.json, cronsync.schema.json and "
        "agent.schema.json into DIR (e.g. a jobs repository's .schemas/, which its "
        ".taplo.toml names; as root, only root may be able to change DIR)",
    )
