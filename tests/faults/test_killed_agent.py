"""``kill -9`` of ``cronsync agent`` in the middle of its first sync.

Each point pushes a commit, starts the agent (it syncs at start) and kills it after a
random delay up to a little past the time it needed to install on its first start.
The host keeps the invariants of :mod:`helpers.faultcheck`; a new agent started on
the same host comes up (its broker socket left behind by the killed one included),
installs the branch tip, and stops cleanly on SIGTERM with no process left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from helpers.faultcheck import (
    check_after_fault,
    check_recovered,
    check_status_answers,
    kill_hard,
    snapshot,
    sync_recovers,
    wait_no_processes_below,
)
from helpers.sandbox import Sandbox

PACE = '\n[agent]\ninterval = "10m"\nsplay = "0s"\nmax_backoff = "10m"\nfull_check = "10m"\n'


def start_agent(sandbox: Sandbox) -> subprocess.Popen[bytes]:
    """Start a real ``cronsync agent`` on the sandbox (no AWS in its environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    log = (sandbox.base / "agent.log").open("ab")
    with log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cronsync.cli.main",
                "--config",
                str(sandbox.config_path),
                "agent",
            ],
            cwd=sandbox.base,
            stdout=log,
            stderr=log,
            env=env,
        )


def installed_commit(sandbox: Sandbox) -> Optional[str]:
    """The commit the state file says is installed (None before the first install)."""
    try:
        state = json.loads((sandbox.state_dir / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    installed = state.get("installed") or {}
    commit: Optional[str] = installed.get("commit")
    return commit


def wait_installed(sandbox: Sandbox, agent: subprocess.Popen[bytes], commit: str) -> float:
    """Wait until the agent installed ``commit``; return the seconds it took."""
    started = time.monotonic()
    deadline = started + 120
    while installed_commit(sandbox) != commit:
        log = (sandbox.base / "agent.log").read_text(errors="replace")[-2000:]
        assert agent.poll() is None, f"the agent exited\n{log}"
        assert time.monotonic() < deadline, f"{commit[:12]} not installed in 120 s\n{log}"
        time.sleep(0.02)
    return time.monotonic() - started


def push_change(sandbox: Sandbox, point: int) -> str:
    """A commit that changes one job's schedule (and so the cron file)."""
    sandbox.upstream.write(
        "jobs/fault-point.toml",
        'description = "changed at every fault point"\n'
        'owner = "faults@example.com"\n'
        f'schedule = "{point % 60} 4 * * *"\n'
        'command = ["echo", "fault point"]\n',
    )
    return sandbox.upstream.commit_and_push(f"fault point {point}")


@pytest.mark.timeout(3600)
def test_an_agent_killed_mid_sync_leaves_old_or_new_and_a_new_agent_recovers(
    sandbox: Sandbox, fault_points: int, rng: random.Random
) -> None:
    sandbox.write_config(PACE)
    first = push_change(sandbox, 0)
    agent = start_agent(sandbox)
    try:
        to_install = wait_installed(sandbox, agent, first)
    finally:
        kill_hard(agent)
    for point in range(1, fault_points // 3 + 1):
        old = snapshot(sandbox)
        commit = push_change(sandbox, point)
        agent = start_agent(sandbox)
        time.sleep(rng.uniform(0, to_install * 1.1))
        kill_hard(agent)
        wait_no_processes_below(sandbox.base)
        after = snapshot(sandbox)
        check_status_answers(sandbox)
        new = sync_recovers(sandbox, commit)
        check_after_fault(after, old, new)
    # a new agent takes over the host (and the socket the killed one left) ...
    last = push_change(sandbox, fault_points)
    agent = start_agent(sandbox)
    try:
        wait_installed(sandbox, agent, last)
        check_recovered(sandbox, last)
        socket = sandbox.root / "run/cronsync/broker.sock"
        assert socket.is_socket(), "the new agent's broker is not listening"
    finally:
        # ... and stops cleanly on SIGTERM, leaving no process behind
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=60)
    log = Path(sandbox.base / "agent.log").read_text(errors="replace")[-2000:]
    assert code == 0, log
    wait_no_processes_below(sandbox.base)
