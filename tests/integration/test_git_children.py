"""git's processes never outlive cronsync: ``kill -9`` of a sync and the agent's SIGTERM.

git runs in a session of its own (so it never prompts on a terminal), which also keeps
it out of reach of the signals that stop cronsync. The remote here is a local TCP server
that accepts connections and never answers, so git (or, over http, its helper
git-remote-http) blocks in the fetch until it is killed (the git timeout is ten
minutes). Waits are bounded by deadlines far from the
ten minutes git would otherwise live; nothing asserts how long a step took.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from cronsync.repo.process import run_capture
from helpers.hanging import HangingEndpoint
from helpers.loglines import agent_line
from helpers.sandbox import Sandbox

SLOW_GIT = '[sync]\ngit_timeout = "10m"\n\n[agent]\ninterval = "10m"\nsplay = "0s"\n'
WAIT = 60.0
"""Seconds any wait below may take before the test fails (git would live 10 minutes)."""


def proc_status(pid: int) -> dict[str, str]:
    """The fields of /proc/PID/status ({} when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped has stopped running)."""
    state = proc_status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def session_members(sid: int) -> list[int]:
    """The live processes of session ``sid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and alive(int(entry.name)):  # fields: state ppid pgrp sid
            members.append(int(entry.name))
    return members


def name_of(pid: int) -> str:
    return proc_status(pid).get("Name", "")


def git_session(parent: subprocess.Popen[bytes], helper: str) -> int:
    """Wait until ``parent`` runs git and git runs ``helper`` (a name prefix, "" for
    none) in a session of their own; return the session's id."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert parent.poll() is None, "cronsync exited before git started"
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and proc_status(int(entry.name)).get("PPid") == str(parent.pid):
                names = [name_of(pid) for pid in session_members(int(entry.name))]
                if "git" in names and any(name.startswith(helper) for name in names):
                    return int(entry.name)
        time.sleep(0.05)
    pytest.fail(f"no git (with {helper or 'no helper'}) appeared")


def wait_gone(pids: list[int]) -> list[int]:
    """Wait until none of ``pids`` runs; return those still running at the deadline."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        running = [pid for pid in pids if alive(pid)]
        if not running:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


@dataclass
class HangingRemote:
    """A sandbox whose remote never answers, the helper git runs for it ("" for none)
    and the git sessions a test saw."""

    sandbox: Sandbox
    helper: str
    sessions: list[int] = field(default_factory=list)

    def git_session(self, parent: subprocess.Popen[bytes]) -> int:
        """``parent``'s git session (see :func:`git_session`), killed at teardown if left."""
        sid = git_session(parent, self.helper)
        self.sessions.append(sid)
        return sid


@pytest.fixture(params=["git", "http"])
def hanging_remote(
    request: pytest.FixtureRequest, sandbox: Sandbox, hanging_endpoint: HangingEndpoint
) -> Iterator[HangingRemote]:
    """The sandbox with a remote that never answers (git:// which git speaks itself, or
    http:// through its helper git-remote-http), slow git timeout; every git session a
    test saw is killed at teardown if the code under test left it."""
    port = hanging_endpoint.url.rsplit(":", 1)[1]
    url = f"{request.param}://127.0.0.1:{port}/jobs.git"
    text = sandbox.config_path.read_text().replace(
        f'url = "{sandbox.upstream.bare}"', f'url = "{url}"'
    )
    sandbox.config_path.write_text(text + SLOW_GIT)
    remote = HangingRemote(sandbox, "git-remote-http" if request.param == "http" else "")
    try:
        yield remote
    finally:
        for sid in remote.sessions:
            for pid in session_members(sid):
                os.kill(pid, signal.SIGKILL)


def start(sandbox: Sandbox, *args: str) -> subprocess.Popen[bytes]:
    """Start ``cronsync ARGS`` as a real process with the sandbox's config."""
    return subprocess.Popen(
        [sys.executable, "-m", "cronsync.cli.main", *args],
        cwd=sandbox.base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "CRONSYNC_CONFIG": str(sandbox.config_path)},
    )


def finish(process: subprocess.Popen[bytes]) -> tuple[Optional[int], str, str]:
    """Wait for ``process`` (killed after the deadline); return (status, stdout, stderr)."""
    try:
        out, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=WAIT)
        return None, out.decode(), err.decode()
    return process.returncode, out.decode(), err.decode()


def test_git_and_its_helpers_die_with_a_killed_sync(hanging_remote: HangingRemote) -> None:
    sync = start(hanging_remote.sandbox, "sync")
    session = hanging_remote.git_session(sync)
    members = session_members(session)

    sync.kill()
    finish(sync)

    left = {pid: name_of(pid) for pid in wait_gone(members)}
    assert left == {}, f"these outlived the killed sync: {left}"


def test_the_agents_sigterm_stops_git_first_then_the_agent(
    hanging_remote: HangingRemote,
) -> None:
    agent = start(hanging_remote.sandbox, "agent")
    members = session_members(hanging_remote.git_session(agent))

    agent.send_signal(signal.SIGTERM)
    status, out, err = finish(agent)

    assert status == 0, (status, out, err)
    assert wait_gone(members) == []
    assert "Traceback" not in err, err
    log = out.splitlines()
    failed = [line for line in log if re.match(agent_line("sync failed", "any"), line)]
    assert len(failed) == 1, out
    said = "sync failed (attention): git was stopped: cronsync is shutting down"
    assert re.fullmatch(agent_line(re.escape(said), "error"), failed[0]), out
    assert re.fullmatch(agent_line("stopped"), log[-1]), out
    state = hanging_remote.sandbox.state()
    assert state["last_sync"]["result"] == "failed"
    assert re.search(r"git was stopped", state["last_sync"]["message"])


def test_a_timeout_ends_the_programs_whole_process_group(tmp_path: Path) -> None:
    """What a program started in the background ends with it (the old run_capture
    killed only the program itself)."""
    pidfile = tmp_path / "pid"
    script = f'sleep 600 & echo "$!" > {pidfile}; wait'
    with pytest.raises(subprocess.TimeoutExpired):
        run_capture(["sh", "-c", script], timeout=1.0)
    background = int(pidfile.read_text())
    try:
        assert wait_gone([background]) == []
    finally:
        if alive(background):
            os.kill(background, signal.SIGKILL)


SPAWNER = """
import sys, time
from cronsync.repo import process
if sys.argv[1] == "prctl":  # as on a host without util-linux's setpriv
    process._setpriv.cache_clear()
    process._setpriv = lambda: None
child = process.spawn(["sh", "-c", "sleep 600 & echo $!; wait"])
print(child.pid, child.stdout.readline().decode().strip(), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", ["setpriv", "prctl"])
def test_a_program_dies_with_a_killed_cronsync_either_way(how: str) -> None:
    """setpriv sets the parent-death signal where util-linux has it, prctl between fork
    and exec elsewhere: a kill -9 of cronsync ends the program and its own children."""
    spawner = subprocess.Popen(
        [sys.executable, "-c", SPAWNER, how], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert spawner.stdout is not None
        keeper, sleeper = (int(word) for word in spawner.stdout.readline().split())
        if how == "setpriv":
            assert name_of(keeper) == "sh"  # setpriv has exec'd the keeper
        assert alive(sleeper)
    finally:
        spawner.kill()
        spawner.communicate(timeout=WAIT)
    try:
        assert wait_gone([keeper, sleeper]) == []
    finally:
        for pid in (keeper, sleeper):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
