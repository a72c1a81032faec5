"""cronsync as a remote pre-commit hook (.pre-commit-hooks.yaml at the checkout's root):
the manifest is valid, and `pre-commit try-repo` installs cronsync from a git repository
of this checkout (with pip, cronsync's dependencies from PyPI) and runs
`cronsync validate` on a jobs repository — the template passes, a broken job fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.sandbox import GIT_ENV

TOP = Path(__file__).resolve().parents[2]
# what `pip install .` of cronsync needs: the package and its metadata
SOURCE_PARTS = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "agent")
INSTALL_SECONDS = 540  # a cold pip install of boto3 and the rest from PyPI


def pre_commit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )


# pip's words when PyPI cannot be reached: the hook's environment cannot be built here
NO_INDEX = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "No matching distribution found",
    "Network is unreachable",
)


def skip_without_pypi(done: subprocess.CompletedProcess[str]) -> None:
    """Skip, quoting pip, when pre-commit could not install the hook for lack of PyPI."""
    output = done.stdout + done.stderr
    for line in output.splitlines():
        if any(words in line for words in NO_INDEX):
            pytest.skip(f"pre-commit cannot pip-install cronsync's dependencies: {line.strip()}")


def git_repo(folder: Path) -> Path:
    """Commit everything in ``folder`` as a new git repository; return it."""
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True, timeout=60)
    return folder


@pytest.fixture(scope="module")
def hook_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A git repository holding this checkout's cronsync (working tree, not HEAD, so an
    uncommitted change is what is tested; the checkout itself is never touched), and a
    PRE_COMMIT_HOME shared by the module's tests (the hook is installed once)."""
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extra")
    base = tmp_path_factory.mktemp("precommit")
    source = base / "cronsync"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for part in SOURCE_PARTS:
        if (TOP / part).is_dir():
            shutil.copytree(TOP / part, source / part, ignore=ignore)
        else:
            shutil.copy2(TOP / part, source / part)
    yield git_repo(source), base / "home"


def jobs_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "jobs-repo"
    shutil.copytree(TOP / "repo-template", repo)
    return repo


def test_the_hook_manifest_is_valid(tmp_path: Path) -> None:
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extra")

    done = pre_commit(
        "validate-manifest", str(TOP / ".pre-commit-hooks.yaml"), cwd=tmp_path, home=tmp_path
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_try_repo_passes_the_template_and_fails_a_broken_job(
    hook_source: tuple[Path, Path], tmp_path: Path
) -> None:
    source, home = hook_source
    repo = git_repo(jobs_repo(tmp_path))

    passed = pre_commit(
        "try-repo", str(source), "cronsync-validate", "--all-files", cwd=repo, home=home
    )
    if passed.returncode != 0:
        skip_without_pypi(passed)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "cronsync validate" in passed.stdout and "Passed" in passed.stdout

    (repo / "jobs" / "broken.toml").write_text(
        'description = "x"\nowner = "ops"\nschedule = "61 * * * *"\nshell = "true"\n',
        encoding="utf-8",
    )
    subprocess.run(["git", "add", "-A"], cwd=repo, env={**os.environ, **GIT_ENV}, check=True)
    failed = pre_commit(
        "try-repo", str(source), "cronsync-validate", "--all-files", cwd=repo, home=home
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout
    assert "jobs/broken.toml:3: schedule:" in failed.stdout
