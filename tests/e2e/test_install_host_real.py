"""``scripts/install-host`` for real on this machine (root only), then ``--uninstall``.

It installs into /opt/cronsync, /usr/local/bin, /etc/systemd/system, /etc/cronsync and
the completion and manual folders, exactly as on a host, and removes all of it again
(the example /etc/cronsync it wrote included). It skips rather than touch a machine
that has cronsync installed already.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "scripts/install-host"
ALREADY = [
    Path("/opt/cronsync"),
    Path("/usr/local/bin/cronsync"),
    Path("/usr/local/bin/cronsync-run"),
    Path("/etc/cronsync"),
    Path("/etc/cron.d/cronsync"),
    Path("/etc/systemd/system/cronsync-agent.service"),
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("real-cron"),  # the machine's own /etc, /opt: one worker at a time
    pytest.mark.skipif(os.geteuid() != 0, reason="installs into /opt and /usr/local: root only"),
    pytest.mark.skipif(
        any(path.exists() or path.is_symlink() for path in ALREADY),
        reason="cronsync is installed on this machine already: not touched",
    ),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing"),
]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)


def test_install_host_for_real_then_uninstall() -> None:
    try:
        done = run(str(SCRIPT))
        assert done.returncode == 0, done.stdout + done.stderr
        assert run("/usr/local/bin/cronsync", "--version").stdout.startswith("cronsync ")
        # a job user (nobody) can start the launcher: the venv is readable by everyone
        nobody = run(
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/local/bin/cronsync-run",
            "--version",
        )
        assert nobody.stdout.startswith("cronsync-run "), nobody.stderr
        check = run("/usr/local/bin/cronsync", "install-shim", "--check")
        assert check.returncode == 0, check.stdout + check.stderr
        assert Path("/etc/systemd/system/cronsync-agent.service").is_file()
        assert Path("/usr/local/share/man/man1/cronsync.1").is_file()
        assert oct(Path("/etc/cronsync/agent.toml").stat().st_mode & 0o777) == "0o600"
    finally:
        gone = run(str(SCRIPT), "--uninstall")
        shutil.rmtree("/etc/cronsync", ignore_errors=True)  # it was not there before
    assert gone.returncode == 0, gone.stdout + gone.stderr
    for path in ALREADY:
        assert not path.exists() and not path.is_symlink(), path
