"""Pointing a command at the wrong thing is a usage error (exit 2, one line, the error
document with --json): `validate` of a folder with no jobs/, `inventory` of a FILE it
cannot read. What the thing itself gets wrong stays exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CRONSYNC = [sys.executable, "-m", "cronsync.cli.main"]


def cronsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRONSYNC_CONFIG": str(cwd / "no-agent.toml")}
    return subprocess.run(
        [*CRONSYNC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize("where", [".", "sub"])
def test_validate_of_a_folder_without_jobs_is_a_usage_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "sub").mkdir()

    done = cronsync("validate", where, cwd=tmp_path)

    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("cronsync: ") and "no jobs/ directory" in line and where in line
    assert done.stdout == ""
    as_json = cronsync("validate", "--json", where, cwd=tmp_path)
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout) == {
        "format": "cronsync.error/1",
        "error": line,
        "exit_code": 2,
    }


def test_validate_of_a_jobs_file_that_is_no_folder_is_still_a_problem(tmp_path: Path) -> None:
    (tmp_path / "jobs").write_text("not a folder\n")

    done = cronsync("validate", ".", cwd=tmp_path)

    assert done.returncode == 1
    assert "jobs: is a regular file, not a folder" in done.stdout


@pytest.mark.parametrize("kind", ["missing", "folder", "unreadable"])
def test_inventory_of_a_file_it_cannot_read_is_a_usage_error(tmp_path: Path, kind: str) -> None:
    good = tmp_path / "good"
    good.write_text("5 * * * * root true\n")
    bad = tmp_path / "bad"
    if kind == "folder":
        bad.mkdir()
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads a file of mode 000")
        bad.write_text("5 * * * * root true\n")
        bad.chmod(0)

    done = cronsync(
        "inventory",
        "--root",
        str(tmp_path),
        "--system",
        "--any-users",
        str(good),
        str(bad),
        cwd=tmp_path,
    )

    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith(f"cronsync: inventory: cannot read {bad}: ")
    assert done.stdout == ""
    as_json = cronsync(
        "inventory",
        "--json",
        "--root",
        str(tmp_path),
        "--system",
        "--any-users",
        str(bad),
        cwd=tmp_path,
    )
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["exit_code"] == 2


def test_inventory_of_readable_files_keeps_its_exit_codes(tmp_path: Path) -> None:
    runs, never = tmp_path / "runs", tmp_path / "never"
    runs.write_text("5 * * * * root true\n")
    never.write_text("5 * 31 2 * root true\n")

    assert (
        cronsync(
            "inventory", "--root", str(tmp_path), "--system", "--any-users", str(runs), cwd=tmp_path
        ).returncode
        == 0
    )
    done = cronsync(
        "inventory", "--root", str(tmp_path), "--system", "--any-users", str(never), cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
