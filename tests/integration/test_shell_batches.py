"""Shell strings, shell scripts and shellcheck in few processes, with one-by-one results.

The oracle is the one-by-one check itself: ``sh -n -c STRING`` and ``bash -n -- SCRIPT``
each started alone by ``run_capture`` (as before batching), and one shellcheck run per
file. The batched checks must give the same exit status and error output for every
item, on the template and on generated strings full of quotes, here-documents, braces
and keywords that could reach from one function of a batch into the next. The number
of processes is counted for real: a ``sh`` first on ``PATH`` that notes each start and runs dash.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cronsync.core.model import WARNING
from cronsync.repo.gate import check_repository
from cronsync.repo.process import run_capture
from cronsync.repo.shellcheck import shellcheck
from cronsync.repo.shellsyntax import Parse, parse_scripts, parse_strings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"
SHELL = shutil.which("sh") or "/bin/sh"
needs_shellcheck = pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (./scripts/test installs it as root)",
)


def alone(argv: list[str], cwd: Path | None = None) -> Parse:
    """The one-by-one check, run as the checks ran before batching: one run_capture."""
    done = run_capture(argv, timeout=30, cwd=cwd)
    return Parse(done.returncode, done.stderr)


def template_shell_strings() -> list[str]:
    strings = []
    for path in sorted((TEMPLATE / "jobs").glob("*.toml")):
        shell = tomllib.loads(path.read_text()).get("shell")
        if shell:
            strings.append(shell)
    assert strings, "the template has a shell job"
    return strings


BAD_AND_TRICKY = [
    "cat <<EOF",  # parses alone, and would swallow the functions after it
    "echo \\",  # parses alone, and would glue the next line on
    "}; {",  # fails alone; closes and reopens a wrapper
    "echo 'a",
    "b'",  # with the one above it would pair up into one quoted word
    "if true; then echo",
    "fi",
    "{ echo",
    "}",
    "case x in",
    "esac",
    "echo $(",
    "echo ${x",
    "echo `a",
    "x=$((1+",
    "echo )",
    "",
    "# only a comment 'with a quote",
    'echo "$(echo ")")" ok',
    'echo "${HOME}" && ls | wc -l > /dev/null 2>&1',
    "for x in a b; do echo $x; done",
    "e\\\nsac",
    "echo a |",
    "!",
    "-",  # alone, sh -n -c reads these as options
    "+x echo",
]

TOKENS = [
    "echo a",
    " ",
    ";",
    "\n",
    "|",
    "&&",
    "'",
    '"',
    "\\",
    "$(",
    ")",
    "(",
    "${x",
    "}",
    "{",
    "<<EOF",
    "EOF",
    "if true; then",
    "fi",
    "case x in x)",
    ";;",
    "esac",
    "#",
    "`",
    "while :; do",
    "done",
    "$((",
]
shell_strings = st.lists(st.sampled_from(TOKENS), max_size=6).map("".join)


@pytest.fixture
def counted_sh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a ``sh`` first on PATH that appends a line to the returned file per start."""
    bin_dir = tmp_path / "counting-bin"
    bin_dir.mkdir()
    count = tmp_path / "sh-starts"
    count.touch()
    wrapper = bin_dir / "sh"
    wrapper.write_text(f'#!{SHELL}\necho start >> "{count}"\nexec {SHELL} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return count


def starts(count: Path) -> int:
    return len(count.read_text().splitlines())


# -- the same verdicts ----------------------------------------------------------------


def test_template_strings_and_tricky_ones_match_one_by_one() -> None:
    strings = template_shell_strings() + BAD_AND_TRICKY
    assert parse_strings(strings) == [alone(["sh", "-n", "-c", s]) for s in strings]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shell_strings, min_size=1, max_size=8))
@example(["cat <<EOF", "if then fi"])
@example(["echo 'a", "echo ok", "b'"])
@example(["{ echo", "echo ok", "}"])
@example(["", "-"])
def test_generated_strings_match_one_by_one(strings: list[str]) -> None:
    assert parse_strings(strings) == [alone(["sh", "-n", "-c", s]) for s in strings]


def test_scripts_match_one_by_one(tmp_path: Path) -> None:
    names = []
    for path in sorted((TEMPLATE / "scripts").glob("*.sh")):
        shutil.copy(path, tmp_path / path.name)
        names.append(path.name)
    for n, text in enumerate(["if then fi\n", "cat <<EOF\nx\n", "echo 'open\n", "f() {\n"]):
        (tmp_path / f"bad-{n}.sh").write_text(text)
        names.append(f"bad-{n}.sh")
    names.append("missing.sh")
    expected = [alone(["bash", "-n", "--", name], tmp_path) for name in names]
    assert parse_scripts("bash", names, tmp_path) == expected
    assert any(p.returncode != 0 for p in expected[-5:])


# -- in few processes -------------------------------------------------------------------


def write_repo(root: Path, shells: list[str]) -> None:
    (root / "jobs").mkdir(parents=True)
    for n, shell in enumerate(shells):
        (root / "jobs" / f"job-{n:04d}.toml").write_text(
            'description = "d"\nowner = "o@example.com"\nschedule = "0 1 * * *"\n'
            f'user = "batch"\nshell = {json.dumps(shell)}\n'
        )


def test_many_shell_jobs_take_few_processes(tmp_path: Path, counted_sh: Path) -> None:
    """300 shell jobs, two of them broken: a handful of ``sh`` starts, where one per job
    was started before; the two broken ones are reported on their own job's line."""
    shells = [f'pg_dump "db{n}" | gzip > "/var/backups/db{n}-$(date +%F).gz"' for n in range(300)]
    shells[40] = "echo 'unterminated"
    shells[250] = "if true; then echo"
    write_repo(tmp_path, shells)
    report = check_repository(tmp_path)
    assert [(p.file, p.line, p.field) for p in report.problems] == [
        ("jobs/job-0040.toml", 5, "shell"),
        ("jobs/job-0250.toml", 5, "shell"),
    ]
    assert report.problems[0].message == (
        "/bin/sh cannot parse it: 1: Syntax error: Unterminated quoted string"
    )
    assert starts(counted_sh) <= 8, starts(counted_sh)


# -- shellcheck -------------------------------------------------------------------------


@needs_shellcheck
def test_shellcheck_batches_match_one_run_per_file(tmp_path: Path) -> None:
    names = []
    for path in sorted((TEMPLATE / "scripts").glob("*.sh")):
        shutil.copy(path, tmp_path / path.name)
        names.append(path.name)
    extra = {
        "unquoted.sh": "#!/bin/bash\nrm -rf /tmp/x/$1\n",
        "broken.sh": "#!/bin/sh\necho $((1+\n",
        "a:1:2: odd name.sh": "#!/bin/bash\necho $1\n",
    }
    for name, text in extra.items():
        (tmp_path / name).write_text(text)
        names.append(name)
    singles = [p for name in names for p in shellcheck(tmp_path, [name], "bash")]
    batched = shellcheck(tmp_path, names, "bash")
    assert sorted(batched, key=repr) == sorted(singles, key=repr)
    assert {p.file for p in batched} >= set(extra)
    assert all(p.severity == WARNING and p.message.startswith("shellcheck: ") for p in batched)


@needs_shellcheck
def test_shellcheck_findings_keep_a_file_name_with_colons(tmp_path: Path) -> None:
    """The finding names the file, even when its name looks like ``file:line:col:``."""
    name = "scripts/a:1:2: note: b.sh"
    (tmp_path / "scripts").mkdir()
    (tmp_path / name).write_text("echo start\nrm -rf /tmp/reports/$1\n")
    write_repo(tmp_path, [])
    (tmp_path / "jobs" / "x.toml").write_text(
        'description = "d"\nowner = "o@example.com"\nschedule = "0 1 * * *"\n'
        f'user = "batch"\ncommand = ["bash", {json.dumps(name)}]\n'
    )
    report = check_repository(tmp_path, lint=True)
    assert [(p.file, p.line) for p in report.problems] == [(name, 2)], report.problems
