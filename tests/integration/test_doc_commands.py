"""The commands the how-to pages show, run as written in a copy of the template (the
sandbox): `cronsync export` of docs/how-to/leave-the-host-export.md writes the files its
next commands (kubectl, aws) read, the pre-commit configuration of
docs/how-to/check-jobs-in-your-editor.md is one pre-commit accepts, and the ssh signing
commands of docs/how-to/sign-commits.md sign a commit `cronsync validate --require-signed`
accepts (the host's /etc/cronsync moved into the sandbox)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.sandbox import GIT_ENV

TOP = Path(__file__).resolve().parents[2]
CRONSYNC = [sys.executable, "-m", "cronsync.cli.main"]


def sh_block(page: str, starting: str) -> list[str]:
    """The commands of the ``sh`` block of ``page`` whose first line starts with
    ``starting``, continuation lines joined."""
    text = (TOP / page).read_text(encoding="utf-8")
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        if block.startswith(starting):
            return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    raise AssertionError(f"{page} has no sh block starting {starting!r}")


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRONSYNC_CONFIG": str(cwd / "no-agent.toml")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_export_commands_write_what_the_next_commands_read(tmp_path: Path) -> None:
    repo = tmp_path / "jobs-repo"
    shutil.copytree(TOP / "repo-template", repo, symlinks=True)
    commands = sh_block("docs/how-to/leave-the-host-export.md", "cronsync export")
    ours = [shlex.split(line) for line in commands if line.startswith("cronsync ")]
    theirs = [shlex.split(line) for line in commands if not line.startswith("cronsync ")]
    assert len(ours) == 2 and [argv[0] for argv in theirs] == ["kubectl", "aws"]

    for argv in ours:
        done = run([*CRONSYNC, *argv[1:]], repo)
        assert done.returncode == 0, done.stderr

    kubectl_dir = repo / theirs[0][theirs[0].index("-f") + 1]
    jobs = sorted(p.stem for p in (repo / "jobs").glob("*.toml"))
    assert sorted(p.stem for p in kubectl_dir.glob("*.json")) == jobs
    template = repo / theirs[1][theirs[1].index("--template-file") + 1]
    document = json.loads(template.read_text(encoding="utf-8"))
    assert "TargetTagValue" in document["Parameters"]


def validate_config(config: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """``pre-commit validate-config CONFIG``."""
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PRE_COMMIT_HOME": str(home)},
    )


def test_the_pre_commit_example_is_a_valid_configuration(tmp_path: Path) -> None:
    text = (TOP / "docs/how-to/check-jobs-in-your-editor.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(block, encoding="utf-8")

    done = validate_config(config, tmp_path / "home")

    assert done.returncode == 0, done.stdout + done.stderr
    config.write_text(block.replace("hooks:", "hookz:"), encoding="utf-8")
    assert validate_config(config, tmp_path / "home").returncode != 0


def bash(line: str, cwd: Path, env: dict[str, str]) -> None:
    """Run one documented shell line; fail with its output when it fails."""
    done = subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{line}: {done.stderr}"


def test_the_ssh_signing_examples_make_a_commit_validate_accepts(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (scripts/test installs openssh-client)")
    page = "docs/how-to/sign-commits.md"
    home, keys, etc = tmp_path / "home", tmp_path / "keys", tmp_path / "etc" / "cronsync"
    for folder in (home / ".ssh", keys, etc):
        folder.mkdir(parents=True)
    key = home / ".ssh" / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=60
    )
    shutil.copy(f"{key}.pub", keys / "alice.pub")
    env = {**os.environ, **GIT_ENV, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / "gc")}
    repo = tmp_path / "jobs-repo"
    shutil.copytree(TOP / "repo-template", repo, symlinks=True)
    bash("git init -q -b main", repo, env)
    for line in sh_block(page, "git config gpg.format ssh"):
        bash(line, repo, env)
    bash("git add -A && git commit -q -m 'Signed as the page says'", repo, env)
    for line in sh_block(page, "printf 'alice@example.com"):
        line = line.replace("/etc/cronsync/", f"{etc}/")
        if os.geteuid() != 0:  # only root gives a file to root; the file is ours then
            line = line.replace(f"chown root: {etc}/allowed_signers && ", "")
        bash(line, keys, env)
    validate = [*CRONSYNC, "validate", "--no-lint", "--require-signed", "ssh"]
    validate += ["--allowed-signers", str(etc / "allowed_signers"), str(repo)]

    assert run(validate, tmp_path).returncode == 0

    bash("git -c commit.gpgsign=false commit -q --allow-empty -m unsigned", repo, env)
    refused = run(validate, tmp_path)
    assert refused.returncode == 1 and "no signature" in refused.stdout + refused.stderr
