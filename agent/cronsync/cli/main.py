"""The ``cronsync`` command: parses arguments, calls one verb, maps errors to exit codes.

A known error prints one line (``cronsync: ...``) and exits with its code; an
unexpected one says so in one line and shows the traceback only with ``--verbose``.
A command given ``--json`` that ends with an error also prints one error document
(``cronsync.error/1``) on stdout, so a script always has JSON to read.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, Callable, NoReturn, Optional, cast

from cronsync import __version__
from cronsync.cli.jsonout import emit_error_json, emit_json
from cronsync.cli.status import add_plan_verb, add_status_verb
from cronsync.cli.sync import add_agent_verb, add_sync_verb, add_validate_verb
from cronsync.core.errors import EXIT_INSTALL, EXIT_USAGE, CronsyncError

EXIT_INTERNAL = 70

DESCRIPTION = """\
cronsync keeps a host's cron jobs in a git repository: it validates the job files,
renders /etc/cron.d/cronsync and installs it atomically; a bad commit never replaces
a good crontab.

exit codes: 0 ok, 1 problems found or sync refused, 2 usage or config error,
3 git remote/checkout failed, 4 install on the host failed, 75 another sync is running,
70 internal error."""


def cmd_schema(args: argparse.Namespace) -> int:
    """``cronsync schema``: print the file format reference, or the editors' JSON Schemas
    (``--format json-schema``, see :mod:`cronsync.cli.schema`)."""
    from cronsync.cli.schema import JSON_SCHEMA, check_schema_options, cmd_json_schema
    from cronsync.core.schemadoc import schema_json, schema_markdown

    check_schema_options(args)
    if args.format == JSON_SCHEMA:
        return cmd_json_schema(args)
    if args.format == "json":
        emit_json(schema_json())
    else:
        sys.stdout.write(schema_markdown())
    return 0


CONFIG_HELP = "agent config (default: $CRONSYNC_CONFIG, else /etc/cronsync/agent.toml)"
VERBOSE_HELP = "show details (tracebacks of internal errors)"


class _BadCommandLine(SystemExit):
    """argparse refused the command line (exit 2). A SystemExit, as argparse raises,
    so callers of ``build_parser().parse_args`` see no difference; ``line`` is the
    error line printed on stderr, for the ``--json`` error document."""

    def __init__(self, line: str) -> None:
        super().__init__(EXIT_USAGE)
        self.line = line


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors remember their line (see _BadCommandLine).
    Subparsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and ``PROG: error: MESSAGE`` on stderr.

        Raises:
            _BadCommandLine: always (exit code 2).
        """
        line = f"{self.prog}: error: {message}"
        self.print_usage(sys.stderr)
        print(line, file=sys.stderr)
        raise _BadCommandLine(line)


def _add_config(parser: argparse.ArgumentParser) -> None:
    """Add ``--config PATH`` to a verb. Suppressed default: when it is not given after
    the verb, the value given before it (or None) stays."""
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP)


def _add_verbose_to_verbs(verbs: Any) -> None:
    """Let every verb take ``-v/--verbose`` after its name too (suppressed default, so
    ``cronsync -v VERB`` keeps working)."""
    parsers = cast(Mapping[str, argparse.ArgumentParser], verbs.choices)
    for verb in dict.fromkeys(parsers.values()):  # one parser may have several names
        verb.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )


def _add_schema_verb(verbs: Any) -> None:
    """Add ``schema`` to the ``cronsync`` parser."""
    schema = verbs.add_parser(
        "schema",
        help="print the job file and config reference",
        description="Print the reference of job files, cronsync.toml "
        "and agent.toml, generated from the schema; or, with --format json-schema, their "
        "JSON Schemas (draft 2020-12) for editors: Taplo / Even Better TOML complete and "
        "check keys with them (repo-template/.schemas/ and .taplo.toml).",
    )
    schema.add_argument(
        "--format",
        choices=("markdown", "json", "json-schema"),
        default="markdown",
        help="markdown (docs/reference/file-formats.md, default), json (the same as data) or "
        "json-schema (needs --file or --output)",
    )
    from cronsync.cli.schema import add_schema_options

    add_schema_options(schema)
    schema.set_defaults(func=cmd_schema)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every verb. ``--config`` and ``-v/--verbose`` are
    accepted before the verb and after it (the one after wins)."""
    parser = _Parser(
        prog="cronsync",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cronsync {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs.required = True

    add_validate_verb(verbs, _add_config)
    add_sync_verb(verbs, _add_config)
    add_plan_verb(verbs, _add_config)
    add_status_verb(verbs, _add_config)
    add_agent_verb(verbs, _add_config)

    from cronsync.cli.broker import add_broker_verb, add_doctor_verb
    from cronsync.cli.export import add_export_verb
    from cronsync.cli.fleet import add_fleet_verb
    from cronsync.cli.install import add_install_shim_verb
    from cronsync.cli.inventory import add_inventory_verb
    from cronsync.cli.migrate import add_import_verbs
    from cronsync.cli.runs import add_run_verbs
    from cronsync.cli.shellhelp import add_shellhelp_verbs
    from cronsync.cli.timeline import add_timeline_verb

    add_run_verbs(verbs, _add_config)
    add_broker_verb(verbs, _add_config)
    add_doctor_verb(verbs, _add_config)
    add_inventory_verb(verbs, _add_config)
    add_import_verbs(verbs, _add_config)
    add_install_shim_verb(verbs, _add_config)
    add_export_verb(verbs, _add_config)
    add_fleet_verb(verbs, _add_config)
    add_timeline_verb(verbs, _add_config)
    add_shellhelp_verbs(verbs, build_parser)

    _add_schema_verb(verbs)
    _add_verbose_to_verbs(verbs)
    return parser


def _asks_for_json(tokens: Sequence[str]) -> bool:
    """Whether a command line argparse refused had ``--json`` (or an abbreviation of it,
    which argparse accepts) before any ``--``."""
    for arg in tokens:
        if arg == "--":
            return False
        name = arg.partition("=")[0]
        if len(name) > 2 and "--json".startswith(name):
            return True
    return False


def _fail(args: argparse.Namespace, line: str, exit_code: int) -> int:
    """Report the error that ended a command: ``line`` on stderr and, when the command
    was given ``--json``, the error document on stdout. Returns ``exit_code``."""
    print(line, file=sys.stderr)
    if getattr(args, "json", False):
        emit_error_json(line, exit_code)
    return exit_code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``cronsync`` command; return its exit code.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code (docs/reference/command-line.md); an error is one line on stderr, plus the
        ``cronsync.error/1`` document on stdout when ``--json`` was given.

    Raises:
        SystemExit: only for ``--help`` and ``--version`` (exit 0).
    """
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(tokens)
    except _BadCommandLine as exc:  # argparse printed the usage and the line
        if _asks_for_json(tokens):
            emit_error_json(exc.line, EXIT_USAGE)
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CronsyncError as exc:
        if getattr(exc, "shown", False):  # a run by hand already showed it
            return exc.exit_code
        return _fail(args, f"cronsync: {exc.message}", exc.exit_code)
    except KeyboardInterrupt:
        return _fail(args, "cronsync: interrupted", 130)
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args, f"cronsync: {where}{exc.strerror or exc}", EXIT_INSTALL)
    except Exception as exc:
        code = _fail(
            args,
            f"cronsync: internal error: {type(exc).__name__}: {exc} "
            "(please report it; --verbose shows the traceback)",
            EXIT_INTERNAL,
        )
        if args.verbose:
            traceback.print_exc()
        return code


if __name__ == "__main__":
    sys.exit(main())
