"""Editors' schemas for real: `cronsync schema --format json-schema` writes them, and
Taplo (what VS Code's Even Better TOML runs) checks repo-template with them through its
.taplo.toml — the template passes, a broken job file fails, naming its mistakes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cronsync.core.editorschema import DOCUMENTS, json_schema_text

TOP = Path(__file__).resolve().parents[2]
TEMPLATE = TOP / "repo-template"
CRONSYNC = [sys.executable, "-m", "cronsync.cli.main"]


def taplo_program() -> str:
    """The taplo binary of the test environment (pip package `taplo`), or skip."""
    found = shutil.which("taplo") or str(Path(sys.executable).parent / "taplo")
    try:
        done = subprocess.run([found, "--version"], capture_output=True, timeout=30, check=False)
    except OSError as exc:
        pytest.skip(f"taplo cannot run here ({exc}): pip install taplo (the test extra has it)")
    if done.returncode != 0:
        pytest.skip(f"taplo --version exited {done.returncode}: {done.stderr[:200]!r}")
    return found


def taplo_check(repo: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [taplo_program(), "check", "--colors", "never", *files],
        cwd=repo,  # taplo finds repo/.taplo.toml from the folder it runs in
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_taplo_passes_the_template_with_its_schemas(tmp_path: Path) -> None:
    repo = tmp_path / "jobs-repo"
    shutil.copytree(TEMPLATE, repo)

    done = taplo_check(repo)

    assert done.returncode == 0, done.stderr
    assert "found configuration file" in done.stderr  # the template's .taplo.toml was used


def test_taplo_fails_a_broken_job_file_naming_each_mistake(tmp_path: Path) -> None:
    repo = tmp_path / "jobs-repo"
    shutil.copytree(TEMPLATE, repo)
    (repo / "jobs" / "broken.toml").write_text(
        'description = "x"\nowner = "ops"\nschedule = "5 * * * *"\ncomand = ["x"]\n'
        'concurrency = "skip"\n[success]\nwithin = "a day"\n',
        encoding="utf-8",
    )
    (repo / "cronsync.toml").write_text('[defaults]\nusr = "batch"\n', encoding="utf-8")

    done = taplo_check(repo)

    assert done.returncode != 0
    assert "'comand' was unexpected" in done.stderr
    assert '"skip" is not one of' in done.stderr
    assert '"a day" does not match' in done.stderr
    assert "'usr' was unexpected" in done.stderr


def test_schema_command_writes_the_three_schemas(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CRONSYNC, "schema", "--format", "json-schema", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    for document, (file_name, *_about) in DOCUMENTS.items():
        path = tmp_path / file_name
        assert path.read_text(encoding="utf-8") == json_schema_text(document)
        assert path.stat().st_mode & 0o777 == 0o644
        assert str(path) in done.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_schema_command_prints_one_schema(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CRONSYNC, "schema", "--format", "json-schema", "--file", "agent"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["title"].startswith("cronsync host config")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--format", "json-schema"], "give --file job|cronsync|agent"),
        (["--format", "json-schema", "--output", "/nonexistent/x"], "is not a directory"),
        (["--output", "."], "only with --format json-schema"),
        (["--file", "job"], "only with --format json-schema"),
    ],
)
def test_schema_command_usage_mistakes_exit_2_with_one_line(argv: list[str], says: str) -> None:
    done = subprocess.run(
        [*CRONSYNC, "schema", *argv], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
