"""The real Debian cron daemon runs what a sync rendered.

Debian cron silently ignores a whole file for one line it dislikes, so the only proof
that our rendering is acceptable is cron running it. A sync into a sandbox root renders
the cron file with ``cron.shim`` pointing at a stand-in shim (our own seam: it records
the job name it was started with); the rendered bytes are installed under a
test-specific, dot-free name in /etc/cron.d; the test waits for cron's next minute and
checks that every job with a `* * * * *` schedule was started, as the right user.

Needs root and /usr/sbin/cron (``scripts/test`` installs it); skips with the reason
otherwise. It stops the cron daemon only if it started it (by PID) and removes its file.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronsync.config import load_config
from cronsync.fsutil import atomic_write
from cronsync.sync import run_sync

CRON = "/usr/sbin/cron"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real cron daemon needs root"),
    pytest.mark.skipif(not Path(CRON).exists(), reason="Debian cron is not installed"),
]

JOB = """description = "e2e job {name}"
owner = "e2e@example.com"
schedule = "{schedule}"
command = ["true"]
user = "root"
{extra}
"""


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def cron_daemon() -> Iterator[None]:
    """Make sure a cron daemon runs; stop it afterwards only if we started it."""
    running = subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode == 0
    started = None
    if not running:
        started = subprocess.Popen(
            [CRON, "-f", "-L", "15"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    try:
        yield
    finally:
        if started is not None:
            started.terminate()
            try:
                started.wait(timeout=10)
            except subprocess.TimeoutExpired:
                started.kill()
                started.wait()


def make_remote(base: Path) -> Path:
    work, remote = base / "work", base / "remote.git"
    (work / "jobs").mkdir(parents=True)
    jobs = {
        "every-minute": ("* * * * *", ""),
        "every-minute-tokyo": ("* * * * *", 'timezone = "Asia/Tokyo"'),
        "step-one": ("*/1 * * * *", 'env = { FORMAT = "%Y-%m-%d" }'),
        "nightly": ("30 3 * * *", 'timezone = "America/New_York"'),
        "first-of-month-tokyo": ("0 8 1 * *", 'timezone = "Asia/Tokyo"'),
        "weekdays": ("*/15 9-17 * * mon-fri", ""),
        "on-boot": ("@reboot", ""),
    }
    for name, (schedule, extra) in jobs.items():
        (work / "jobs" / f"{name}.toml").write_text(
            JOB.format(name=name, schedule=schedule, extra=extra)
        )
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "e2e jobs", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=base)
    git("push", "-q", str(remote), "main", cwd=work)
    return remote


def test_debian_cron_runs_the_rendered_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cron_daemon: None
) -> None:
    for key, value in {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "e2e",
        "GIT_AUTHOR_EMAIL": "e2e@example.com",
        "GIT_COMMITTER_NAME": "e2e",
        "GIT_COMMITTER_EMAIL": "e2e@example.com",
    }.items():
        monkeypatch.setenv(key, value)
    tmp_path.chmod(0o755)
    marker = tmp_path / "started"
    shim = tmp_path / "fake-shim"
    # Called as `fake-shim --root ROOT JOB`: record the job (last argument) and the user.
    shim.write_text(f'#!/bin/sh\nfor a; do job=$a; done\necho "$job $(id -un)" >> {marker}\n')
    shim.chmod(0o755)
    remote = make_remote(tmp_path)
    config_file = tmp_path / "agent.toml"
    config_file.write_text(
        f'[repo]\nurl = "{remote}"\n[host]\nname = "e2e"\n'
        f'[users]\nallowed = ["root"]\n[cron]\nshim = "{shim}"\n'
        f'[paths]\nroot = "{tmp_path / "root"}"\n'
    )
    outcome = run_sync(load_config(str(config_file)))
    assert outcome.record.result == "installed", outcome.record
    rendered = (tmp_path / "root/etc/cron.d/cronsync").read_bytes()

    installed = Path(f"/etc/cron.d/cronsync-e2e-{os.getpid()}")
    atomic_write(installed, rendered, mode=0o644, owner=(0, 0))
    try:
        deadline = time.monotonic() + 150
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < 3:
            time.sleep(2)
            if marker.exists():
                seen = set(marker.read_text().split("\n")) - {""}
    finally:
        installed.unlink()
    assert "every-minute root" in seen, (rendered.decode(), seen)
    assert "step-one root" in seen
    # A zone with a constant offset to the host (Tokyo, if the host runs UTC) renders
    # exactly; either way every host minute is covered, so the shim is started.
    assert "every-minute-tokyo root" in seen
