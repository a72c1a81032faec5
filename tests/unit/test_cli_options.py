"""The ``cronsync`` command line: options before or after the verb, usage errors."""

from __future__ import annotations

import argparse
import json

import pytest

from cronsync.cli.main import build_parser, main


@pytest.mark.parametrize(
    ("argv", "verbose", "config"),
    [
        (["status"], False, None),
        (["-v", "status"], True, None),
        (["status", "-v"], True, None),
        (["status", "--verbose"], True, None),
        (["--config", "/a.toml", "status"], False, "/a.toml"),
        (["status", "--config", "/b.toml"], False, "/b.toml"),
        (["--config", "/a.toml", "status", "--config", "/b.toml"], False, "/b.toml"),
        (["-v", "--config", "/a.toml", "sync", "--json"], True, "/a.toml"),
        (["run", "nightly", "-v"], True, None),
        (["schema", "-v"], True, None),
    ],
)
def test_verbose_and_config_go_before_or_after_the_verb(
    argv: list[str], verbose: bool, config: object
) -> None:
    args = build_parser().parse_args(argv)

    assert args.verbose is verbose
    assert args.config == config


def verb_names() -> list[str]:
    """Every verb of the parser."""
    parser = build_parser()
    (verbs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(verbs.choices)


@pytest.mark.parametrize("verb", verb_names())
def test_every_verb_lists_verbose_in_its_help(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([verb, "--help"])

    assert exited.value.code == 0
    assert "-v, --verbose" in capsys.readouterr().out


def test_a_bad_command_line_is_still_a_system_exit_2_for_parse_args(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["sync", "--bogus"])

    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith("cronsync: error: unrecognized arguments: --bogus\n")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["sync", "--json", "--bogus"], "cronsync: error: unrecognized arguments: --bogus"),
        (["history", "--js"], "cronsync history: error: the following arguments are required: job"),
        (["status", "--", "--json"], None),  # after "--": not an option
        (["status", "--bogus"], None),
    ],
)
def test_main_answers_a_bad_command_line_with_json_only_when_asked(
    argv: list[str], line: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)

    out = capsys.readouterr()
    assert code == 2
    assert out.err.splitlines()[-1].startswith("cronsync")
    if line is None:
        assert out.out == ""
    else:
        assert json.loads(out.out) == {
            "format": "cronsync.error/1",
            "error": line,
            "exit_code": 2,
        }
        assert out.err.splitlines()[-1] == line


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_flush_seconds_must_be_a_finite_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["flush", "--seconds", value])
    assert exc.value.code == 2
    assert "--seconds" in capsys.readouterr().err


def test_flush_seconds_takes_fractions() -> None:
    assert build_parser().parse_args(["flush", "--seconds", "2.5"]).seconds == 2.5
