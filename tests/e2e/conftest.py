"""Fixtures of the end-to-end tests: the real Debian cron daemon."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

CRON = "/usr/sbin/cron"


@pytest.fixture
def cron_daemon() -> Iterator[None]:
    """Make sure a cron daemon runs; stop it afterwards only if we started it."""
    running = (
        subprocess.run(["pgrep", "-x", "cron"], capture_output=True, timeout=120).returncode == 0
    )
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
                started.wait(timeout=60)
