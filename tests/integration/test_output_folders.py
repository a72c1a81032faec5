"""Files root writes where the user says (``export --out``, ``timeline --svg``, ``schema
--output``): never into a folder another user could swap for a link while root writes
or removes files there; a folder reached through root's own link is fine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.sandbox import Sandbox

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root's writes are what is checked")


def _foreign_folders(base: Path) -> dict[str, Path]:
    """A folder owned by another user, and one anyone may write (not sticky)."""
    theirs = base / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    open_to_all = base / "open"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    return {"theirs": theirs, "open": open_to_all}


def _refused(done: subprocess.CompletedProcess[str], folder: Path) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0], done.stderr
    assert list(folder.iterdir()) == []


def test_root_writes_no_output_into_a_folder_someone_else_controls(sandbox: Sandbox) -> None:
    repo = sandbox.upstream.work
    for folder in _foreign_folders(sandbox.base).values():
        export = sandbox.cli("export", "--to", "eventbridge", "--out", str(folder), str(repo))
        _refused(export, folder)
        below = sandbox.cli(
            "export", "--to", "eventbridge", "--out", str(folder / "new"), str(repo)
        )
        _refused(below, folder)  # not even the folder is made
        svg = sandbox.cli("timeline", "--repo", str(repo), "--svg", str(folder / "day.svg"))
        _refused(svg, folder)
        schema = sandbox.cli("schema", "--format", "json-schema", "--output", str(folder))
        _refused(schema, folder)


def test_a_folder_behind_roots_own_link_is_written(sandbox: Sandbox) -> None:
    real = sandbox.base / "real"
    real.mkdir()
    link = sandbox.base / "link"
    link.symlink_to(real)
    done = sandbox.cli(
        "export", "--to", "eventbridge", "--out", str(link), str(sandbox.upstream.work)
    )
    assert done.returncode == 0, done.stderr
    assert (real / "cronsync-schedules.json").is_file()
