"""The README's first command: ./scripts/demo runs end to end and shows what it promises."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (TOP / ".venv/bin/cronsync").exists(),
    reason="the demo installs into .venv; ./scripts/test creates it",
)
def test_demo_runs_and_keeps_the_last_known_good(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "CRONSYNC_"))}
    env["CRONSYNC_DEMO_DIR"] = str(tmp_path / "demo")  # never the newcomer's demo-sandbox/
    mine = TOP / "demo-sandbox"
    before = sorted(mine.rglob("*")) if mine.exists() else None
    done = subprocess.run(
        [str(TOP / "scripts/demo")], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "ok: 8 job files parsed, 0 errors" in out
    assert "installed: " in out
    assert "token=***" in out and "tok-" not in out  # the secret is masked
    assert "The installed cron file is unchanged: the last-known-good stays installed." in out
    assert "hour: 25 is out of range 0-23" in out + done.stderr
    assert (tmp_path / "demo" / "root/etc/cron.d/cronsync").is_file()
    assert (sorted(mine.rglob("*")) if mine.exists() else None) == before
