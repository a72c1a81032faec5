"""Checking the scripts jobs run (``cronsync.repo.scriptcheck``) through the real gate.

Each test builds a small repository in a temp dir (jobs/ + scripts/) and runs
``check_repository``: scripts named after an interpreter are checked like the
job's own program (except the executable bit and shebang), files outside the
repository are never read, and Python that makes ``compile`` give up is a
located problem rather than a crash.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

import pytest

from cronsync.core.model import ERROR, WARNING
from cronsync.repo.gate import GateReport, check_repository
from cronsync.repo.scriptcheck import MAX_SCRIPT_BYTES, interpreted_script

JOB = "jobs/report.toml"
COMMAND_LINE = 5
CHECK_LINE = 8


def job_toml(command: list[str], check: Optional[list[str]] = None, workdir: str = "") -> str:
    """A valid job running ``command``; ``command`` is on line 5, ``success.check`` on 8."""
    text = (
        'description = "d"\nowner = "o@example.com"\nschedule = "0 1 * * *"\n'
        f'user = "batch"\ncommand = {json.dumps(command)}\n'
    )
    text += f"workdir = {json.dumps(workdir)}\n" if workdir else "# no workdir\n"
    if check is not None:
        text += f"[success]\ncheck = {json.dumps(check)}\n"
    return text


def make_repo(
    root: Path,
    command: list[str],
    scripts: Optional[dict[str, str]] = None,
    check: Optional[list[str]] = None,
    workdir: str = "",
) -> Path:
    """A repository with one job and ``scripts`` (path -> text, mode 0644)."""
    (root / "jobs").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / JOB).write_text(job_toml(command, check, workdir))
    for relative, text in (scripts or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def located(report: GateReport) -> list[tuple[str, Optional[int], str, str]]:
    """Every problem as (file, line, field, severity)."""
    return [(p.file, p.line, p.field, p.severity) for p in report.problems]


def only_problem(report: GateReport) -> tuple[str, Optional[int], str, str, str]:
    assert len(report.problems) == 1, [p.format() for p in report.problems]
    p = report.problems[0]
    return (p.file, p.line, p.field, p.severity, p.message)


# -- which commands run a script -----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python3", "scripts/x.py"], ("python3", "scripts/x.py")),
        (["python3.11", "x.py", "--day"], ("python3.11", "x.py")),
        (["/usr/bin/bash", "x.sh"], ("bash", "x.sh")),
        (["Rscript", "report.R"], ("Rscript", "report.R")),
        (["python3", "-m", "report"], None),
        (["bash", "-c", "echo hi"], None),
        (["python3", "/opt/tool.py"], None),
        (["python3"], None),
        (["scripts/run.sh", "x.py"], None),
        (["pythonista", "x.py"], None),
    ],
)
def test_interpreted_script(argv: list[str], expected: Optional[tuple[str, str]]) -> None:
    assert interpreted_script(argv) == expected


# -- the script an interpreter runs ------------------------------------------------


def test_missing_script_after_python3_is_an_error(tmp_path: Path) -> None:
    report = check_repository(make_repo(tmp_path, ["python3", "scripts/missing.py"]))
    assert only_problem(report) == (
        JOB,
        COMMAND_LINE,
        "command",
        ERROR,
        "script 'scripts/missing.py' run by python3 does not exist in the repository",
    )


def test_bash_script_needs_no_shebang_nor_exec_bit_but_must_parse(tmp_path: Path) -> None:
    scripts = {
        "scripts/ok.sh": "echo fine\n",
        "scripts/x.sh": "echo start\nif then fi\necho end\n",
    }
    ok = check_repository(make_repo(tmp_path / "ok", ["bash", "scripts/ok.sh"], scripts))
    assert ok.problems == ()
    bad = check_repository(make_repo(tmp_path / "bad", ["bash", "scripts/x.sh"], scripts))
    assert {(p.file, p.line, p.severity) for p in bad.problems} == {("scripts/x.sh", 2, ERROR)}
    assert "syntax error near unexpected token `then'" in [p.message for p in bad.problems]


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (./scripts/test installs it as root)",
)
def test_shellcheck_warnings_are_reported_with_their_line(tmp_path: Path) -> None:
    """A real shellcheck finding reaches the report as a located warning (SC2086: an
    unquoted variable), and only when linting is on."""
    scripts = {"scripts/clean.sh": "echo start\nrm -rf /tmp/reports/$1\n"}
    command = ["bash", "scripts/clean.sh"]
    report = check_repository(make_repo(tmp_path / "linted", command, scripts), lint=True)
    file, line, _field, severity, message = only_problem(report)
    assert (file, line, severity) == ("scripts/clean.sh", 2, WARNING)
    assert message.startswith("shellcheck: ") and "SC2086" in message, message
    unlinted = check_repository(make_repo(tmp_path / "unlinted", command, scripts))
    assert unlinted.problems == ()


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (./scripts/test installs it as root)",
)
def test_shellcheck_reads_no_file_outside_the_repository(tmp_path: Path) -> None:
    """A repository that asks shellcheck to follow files outside it (``.shellcheckrc``
    with ``external-sources=true``, ``source=`` directives with an absolute path and a
    path leading out, a ``.shellcheckrc`` above the repository): none is read. The
    outside file does not parse, which shellcheck would report (SC1094) had it read it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = outside / "evil.sh"
    evil.write_text("if then fi (((\n")
    (tmp_path / ".shellcheckrc").write_text("external-sources=true\n")
    main = (
        f"# shellcheck source={evil}\n. {evil}\n"
        "# shellcheck source-path=SCRIPTDIR\n. ../../outside/evil.sh\n"
        'echo "$1"\necho $2\n'
    )
    scripts = {".shellcheckrc": "external-sources=true\n", "scripts/main.sh": main}
    repo = make_repo(tmp_path / "repo", ["bash", "scripts/main.sh"], scripts)
    report = check_repository(repo, lint=True)
    messages = [p.format() for p in report.problems]
    assert any("SC2086" in m for m in messages), messages  # shellcheck did run
    assert not any("SC1094" in m or "Parsing of sourced file" in m for m in messages), messages
    assert all(p.file == "scripts/main.sh" for p in report.problems), messages


def test_python_script_syntax_error_is_located(tmp_path: Path) -> None:
    scripts = {"scripts/x.py": "print('a')\ndef broken(:\n"}
    report = check_repository(make_repo(tmp_path, ["python3", "scripts/x.py"], scripts))
    file, line, _field, severity, message = only_problem(report)
    assert (file, line, severity) == ("scripts/x.py", 2, ERROR)
    assert message.startswith("Python syntax error")


def test_success_check_script_is_checked_too(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["true"], check=["sh", "scripts/check.sh"])
    assert only_problem(check_repository(repo)) == (
        JOB,
        CHECK_LINE,
        "success.check",
        ERROR,
        "script 'scripts/check.sh' run by sh does not exist in the repository",
    )


def test_script_symlinked_outside_is_refused_and_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("this is not python (\n")
    repo = make_repo(tmp_path / "repo", ["python3", "scripts/link.py"])
    (repo / "scripts" / "link.py").symlink_to(outside)
    assert only_problem(check_repository(repo)) == (
        JOB,
        COMMAND_LINE,
        "command",
        ERROR,
        "'scripts/link.py' run by python3 is a symlink leading outside the repository",
    )  # and no syntax error from the outside file: it was never compiled


def test_script_climbing_out_with_dotdot_is_outside(tmp_path: Path) -> None:
    (tmp_path / "outside.py").write_text("print('x')\n")
    repo = make_repo(tmp_path / "repo", ["python3", "../outside.py"])
    assert only_problem(check_repository(repo)) == (
        JOB,
        COMMAND_LINE,
        "command",
        ERROR,
        "script '../outside.py' run by python3 is outside the repository",
    )


def test_script_is_looked_up_from_the_workdir(tmp_path: Path) -> None:
    scripts = {"scripts/tool.py": "x = (\n"}
    repo = make_repo(tmp_path, ["python3", "tool.py"], scripts, workdir="scripts")
    file, line, _field, severity, _message = only_problem(check_repository(repo))
    assert (file, line, severity) == ("scripts/tool.py", 1, ERROR)


def test_absolute_workdir_runs_host_files_which_are_not_checked(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["python3", "tool.py"], workdir="/opt/tools")
    assert check_repository(repo).problems == ()


def test_fifo_script_is_not_a_regular_file_and_does_not_block(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["python3", "scripts/pipe.py"])
    os.mkfifo(repo / "scripts" / "pipe.py")
    assert only_problem(check_repository(repo)) == (
        JOB,
        COMMAND_LINE,
        "command",
        ERROR,
        "'scripts/pipe.py' run by python3 is not a regular file (it is a FIFO (named pipe))",
    )


def test_other_interpreters_need_the_file_but_are_not_parsed(tmp_path: Path) -> None:
    scripts = {"scripts/report.pl": "this is { not perl\n"}
    ok = make_repo(tmp_path / "ok", ["perl", "scripts/report.pl"], scripts)
    assert check_repository(ok).problems == ()  # perl -c would run BEGIN blocks: never
    missing = make_repo(tmp_path / "missing", ["ruby", "scripts/report.rb"])
    assert located(check_repository(missing)) == [(JOB, COMMAND_LINE, "command", ERROR)]


def test_options_after_the_interpreter_are_not_scripts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["python3", "-m", "report.main"])
    assert check_repository(repo).problems == ()


def test_python_folder_runs_its_main(tmp_path: Path) -> None:
    scripts = {"scripts/app/__main__.py": "def f(:\n"}
    repo = make_repo(tmp_path, ["python3", "scripts/app"], scripts)
    file, line, _field, _severity, _message = only_problem(check_repository(repo))
    assert (file, line) == ("scripts/app/__main__.py", 1)


def test_node_resolves_the_js_suffix(tmp_path: Path) -> None:
    scripts = {"scripts/app.js": "console.log(1)\n"}
    repo = make_repo(tmp_path, ["node", "scripts/app"], scripts)
    assert check_repository(repo).problems == ()


def test_script_used_by_two_jobs_is_reported_once(tmp_path: Path) -> None:
    scripts = {"scripts/x.py": "x = (\n"}
    repo = make_repo(tmp_path, ["python3", "scripts/x.py"], scripts)
    (repo / "jobs" / "again.toml").write_text(job_toml(["python3", "x.py"], workdir="scripts"))
    report = check_repository(repo)
    assert [p.file for p in report.problems] == ["scripts/x.py"]


def test_program_first_item_checks_are_unchanged(tmp_path: Path) -> None:
    scripts = {"scripts/run.sh": "#!/bin/bash\necho run\n"}
    repo = make_repo(tmp_path, ["scripts/run.sh"], scripts)
    file, _line, field, _severity, message = only_problem(check_repository(repo))
    assert (file, field) == (JOB, "command")
    assert "is not executable" in message
    (repo / "scripts" / "run.sh").chmod(0o755)
    assert check_repository(repo).problems == ()


# -- Python that makes compile() give up ---------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["x = " + "-" * 200_000 + "1\n", "x = a" + ".b" * 100_000 + "\n"],
    ids=["deep-unary", "deep-attribute"],  # MemoryError, RecursionError on CPython 3.11
)
def test_compile_exhaustion_is_a_problem_not_a_crash(tmp_path: Path, source: str) -> None:
    program = make_repo(tmp_path / "program", ["scripts/deep.py"], {"scripts/deep.py": ""})
    (program / "scripts" / "deep.py").write_text("#!/usr/bin/env python3\n" + source)
    (program / "scripts" / "deep.py").chmod(0o755)
    interpreted = make_repo(
        tmp_path / "interpreted", ["python3", "scripts/deep.py"], {"scripts/deep.py": source}
    )
    for repo in (program, interpreted):
        file, _line, field, severity, message = only_problem(check_repository(repo))
        assert (file, field, severity) == ("scripts/deep.py", "", ERROR)
        assert message.startswith("Python "), message  # cannot compile it / syntax error


def test_script_over_the_size_cap_is_a_warning_and_not_compiled(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ["python3", "scripts/huge.py"])
    with (repo / "scripts" / "huge.py").open("w") as huge:
        huge.write("def broken(:\n")  # would be an error if it were compiled
        huge.write("#" * MAX_SCRIPT_BYTES + "\n")
    report = check_repository(repo)
    assert only_problem(report) == (
        "scripts/huge.py",
        None,
        "",
        WARNING,
        "larger than 10 MiB: its syntax is not checked",
    )
    assert report.ok
