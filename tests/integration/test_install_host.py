"""``scripts/install-host``: a host installed in one command, in a sandbox root.

The install is real: a virtual environment made by the system's Python, cronsync and its
dependencies installed into it by pip (from the package index or pip's cache), the units
checked by ``systemd-analyze verify``. It runs as root and as any other user (a sandbox
root needs no privileges). The real install on this machine is in tests/e2e.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from cronsync.host.config import parse_config

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "scripts/install-host"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")
UNITS = [
    "cronsync-agent.service",
    "cronsync-sync.service",
    "cronsync-sync.timer",
    "cronsync-flush.service",
    "cronsync-flush.timer",
    "cronsync-broker.socket",
    "cronsync-broker.service",
    "cronsync-imds-guard.service",
]
OWNED = [
    "usr/local/bin/cronsync",
    "usr/local/bin/cronsync-run",
    *(f"etc/systemd/system/{unit}" for unit in UNITS),
    "etc/cronsync/cronsync-imds.nft",
    "usr/share/bash-completion/completions/cronsync",
    "usr/local/share/zsh/site-functions/_cronsync",
    "usr/local/share/man/man1/cronsync.1",
]


def install_host(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


@pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no python3 in /usr/bin or /bin")
@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not found: install the Debian package 'systemd' (scripts/test does)",
)
def test_a_host_installed_in_one_command_again_unchanged_then_uninstalled(tmp_path: Path) -> None:
    root = tmp_path / "host"
    done = install_host("--root", str(root), "--python", str(SYSTEM_PYTHON))
    assert done.returncode == 0, done.stdout + done.stderr
    for name in OWNED:
        assert (root / name).exists(), name
    assert os.readlink(root / "usr/local/bin/cronsync") == str(root / "opt/cronsync/bin/cronsync")
    for name in OWNED[1:]:
        assert stat.S_IMODE((root / name).stat().st_mode) == (0o755 if "bin/" in name else 0o644)

    # the launcher cron lines call works, isolated from the caller's environment
    version = subprocess.run(
        [str(root / "usr/local/bin/cronsync-run"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert version.stdout.startswith("cronsync-run "), version.stderr
    launcher = (root / "usr/local/bin/cronsync-run").read_text()
    assert launcher.startswith(f"#!{root}/opt/cronsync/bin/python -IS\n")

    # the example config: 0600, parses, never overwritten afterwards
    config = root / "etc/cronsync/agent.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    parse_config(config, config.read_text())
    config.write_text(config.read_text().replace("git.example.com", "git.internal"))

    completion = (root / "usr/share/bash-completion/completions/cronsync").read_text()
    for verb in ("install-shim", "inventory", "history", "completion"):
        assert verb in completion
    assert (root / "usr/local/share/man/man1/cronsync.1").read_text().startswith(".TH CRONSYNC")
    assert "systemd-analyze verify passed" in done.stdout
    assert "systemctl enable --now cronsync-agent.service" in done.stdout

    again = install_host("--root", str(root), "--python", str(SYSTEM_PYTHON))
    assert again.returncode == 0, again.stdout + again.stderr
    # pip installs the checkout again: only the shim's bundle is made again (its sources'
    # files are new); the launcher stays
    assert [line for line in again.stdout.splitlines() if "   wrote " in line] == [
        f"   wrote {root}/opt/cronsync/lib/cronsync-run.bundle: the shim's start-up modules "
        "in one file"
    ]
    assert "already this cronsync's launcher" in again.stdout
    assert f"config: {config} exists, kept as it is" in again.stdout
    assert "git.internal" in config.read_text()

    manual = root / "usr/local/share/man/man1/cronsync.1"
    manual.unlink()
    manual.mkdir()  # a folder where a file goes: refused, not filled with a temp file
    blocked = install_host("--root", str(root), "--python", str(SYSTEM_PYTHON))
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert f"install-host: cannot replace {manual} (is it a folder?)" in blocked.stderr
    assert list(manual.iterdir()) == [] and not list(manual.parent.glob(".cronsync.1.*"))
    manual.rmdir()

    (root / "etc/cron.d").mkdir(parents=True)
    (root / "etc/cron.d/cronsync").write_text("# the managed cron file\n")
    gone = install_host("--root", str(root), "--uninstall")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    for name in [*OWNED, "opt/cronsync", "etc/cron.d/cronsync"]:
        assert not (root / name).exists() and not (root / name).is_symlink(), name
    assert "git.internal" in config.read_text()  # the config is kept
    copy = root / "var/lib/cronsync/cron.d-cronsync.uninstalled"
    assert copy.read_text() == "# the managed cron file\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--root", "relative/dir"], "is not an absolute path"),
        (["--frobnicate"], "unknown argument --frobnicate"),
        (["--root"], "usage: scripts/install-host"),
    ],
)
def test_a_bad_command_line_is_refused_with_exit_2(args: list[str], message: str) -> None:
    done = install_host(*args, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr


def test_help_says_what_it_installs() -> None:
    done = install_host("--help", timeout=30)
    assert done.returncode == 0
    for what in ("/opt/cronsync", "agent.toml", "systemd-analyze verify", "--uninstall"):
        assert what in done.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the refusal of an unprivileged user")
def test_the_real_root_needs_root() -> None:
    done = install_host(timeout=30)
    assert done.returncode == 1
    assert "run it as root (or with --root DIR for a sandbox)" in done.stderr


def test_the_example_config_is_a_valid_agent_toml() -> None:
    example = TOP / "docs/agent.toml.example"
    config = parse_config(example, example.read_text())
    assert config.shim == "/usr/local/bin/cronsync-run"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_shell_scripts_pass_shellcheck() -> None:
    scripts = [TOP / ".ci/run"] + [
        path
        for path in (TOP / "scripts").iterdir()
        if path.read_text().startswith("#!/usr/bin/env bash")
    ]
    done = subprocess.run(
        ["shellcheck", "--norc", *map(str, scripts)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout
