"""A killed ``cronsync-run`` must not let a second copy of its job start.

``kill -9`` of the shim leaves its job running (orphaned: in its own process group, now
a child of init). The run lock must stay taken for as long as any process of that job
lives: ``forbid`` skips, ``replace`` stops the orphan first, ``status`` and ``history``
show the run as orphaned, and the next run that finds it over ends its record with a
clear reason. Real shims, real processes; every test kills what it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_shim
from test_shim import ShimSandbox, wait_for

from cronsync.run.procs import group_alive, process_start
from cronsync.run.record import RunRecord
from cronsync.run.store import list_records
from helpers.sandbox import agent_toml
from helpers.users import HAS_USERADD, IS_ROOT, temporary_users

needs_users = pytest.mark.skipif(
    not (IS_ROOT and HAS_USERADD), reason="a process of another user needs root and useradd"
)


@pytest.fixture
def box(tmp_path: Path, git_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShimSandbox]:
    sandbox = ShimSandbox(tmp_path)

    def allowing_the_user(url: str, root: Path, extra: str = "") -> str:
        """The jobs run as this test's user, root included: allowed by name."""
        text = agent_toml(url, root, extra)
        return text.replace('allowed = ["batch"]', f"allowed = [{json.dumps(sandbox.user)}]")

    monkeypatch.setattr(test_shim, "agent_toml", allowing_the_user)
    yield sandbox


def live_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``, read from /proc."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(name))
    return found


def run_once(box: ShimSandbox, job: str) -> RunRecord:
    """Run ``job`` through the shim as cron does; return the record of that run (run
    ids of the same second do not sort by time)."""
    before = {r.run_id for r in list_records(box.runs_dir, job)}
    done = box.run(job)
    assert done.returncode == 0, done.stderr
    (record,) = [r for r in list_records(box.runs_dir, job) if r.run_id not in before]
    return record


def kill_group(pgid: int) -> None:
    """KILL what is left of a process group and wait until none of it lives."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    wait_for(lambda: not live_members(pgid), seconds=20)


def cli(box: ShimSandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
    )


def holder_words(box: ShimSandbox, job: str) -> list[str]:
    path = box.runs_dir / job / "lock"
    return path.read_text().split() if path.exists() else []


def start_and_kill_shim(box: ShimSandbox, job: str, pids: Path) -> tuple[int, str]:
    """Start a run of ``job`` whose command writes its pid to ``pids``, wait until its
    lock names the job's process group, then kill -9 the shim (not the job).

    Returns:
        (the job's process group, the run's id).
    """
    shim = box.start(job)
    try:
        wait_for(lambda: pids.exists() and pids.read_text().strip() != "")
        pgid = int(pids.read_text().split()[0])
        wait_for(lambda: holder_words(box, job)[1:2] == [str(pgid)])
        run_id = list_records(box.runs_dir, job)[0].run_id
    finally:
        shim.kill()  # SIGKILL: nothing of the shim runs after this
        shim.wait(timeout=20)  # reaped, as cron reaps it
    assert live_members(pgid), "the job should outlive its shim"
    return pgid, run_id


def test_forbid_skips_while_the_job_of_a_killed_shim_runs(box: ShimSandbox) -> None:
    pids, again = box.base / "pids", box.base / "quick"
    box.job(
        "long",
        f'schedule = "* * * * *"\nshell = "echo $$ >> {pids}; [ -e {again} ] || sleep 300"\n',
    )
    box.sync()
    pgid, first = start_and_kill_shim(box, "long", pids)
    try:
        again.touch()  # from now on a copy that starts ends at once (and says so in pids)
        newest = run_once(box, "long")
        assert newest.status == "skipped", newest
        assert "previous run" in str(newest.reason) and "orphaned" in str(newest.reason)
        assert first in str(newest.reason)
        assert len(pids.read_text().split()) == 1  # no second copy started
        assert next(r for r in list_records(box.runs_dir, "long") if r.run_id == first).status == (
            "running"
        )

        status = json.loads(cli(box, "status", "--json").stdout)
        row = next(j for j in status["jobs"] if j["name"] == "long")
        assert row["last_run"]["run_id"] == first
        assert row["last_run"]["status"] == "orphaned"
        assert "cronsync-run" in row["last_run"]["reason"]
        text = cli(box, "status").stdout
        assert "orphaned" in text
        history = cli(box, "history", "long")
        line = next(x for x in history.stdout.splitlines() if x.startswith(first))
        assert "orphaned" in line and "running" not in line
        listed = json.loads(cli(box, "history", "long", "--json").stdout)
        assert next(r for r in listed if r["run_id"] == first)["status"] == "orphaned"
    finally:
        kill_group(pgid)

    assert run_once(box, "long").status == "succeeded"
    records = {r.run_id: r for r in list_records(box.runs_dir, "long")}
    assert len(pids.read_text().split()) == 2  # it ran, once the orphan was gone
    ended = records[first]
    assert ended.status == "error" and ended.ended is not None and ended.exit_code is None
    assert "orphaned" in str(ended.reason) and "exit status unknown" in str(ended.reason)
    status = json.loads(cli(box, "status", "--json").stdout)
    row = next(j for j in status["jobs"] if j["name"] == "long")
    assert row["last_run"]["status"] == "succeeded"


def closer_job(box: ShimSandbox, name: str, policy: str, pids: Path, again: Path) -> None:
    """A job that closes every descriptor above 2 (the lock's too), writes its pid to
    ``pids``, and sleeps unless ``again`` exists."""
    box.script(
        "closer.py",
        f"#!{sys.executable}\nimport os, sys, time\nos.closerange(3, 65536)\n"
        "with open(sys.argv[1], 'a') as f:\n    f.write(f'{os.getpid()}\\n')\n"
        "if not os.path.exists(sys.argv[2]):\n    time.sleep(300)\n",
    )
    box.job(
        name,
        f'schedule = "* * * * *"\nconcurrency = "{policy}"\n'
        f'command = ["scripts/closer.py", "{pids}", "{again}"]\n',
    )


def test_forbid_waits_for_a_job_that_closed_every_descriptor(box: ShimSandbox) -> None:
    """The job cannot keep the lock's descriptor: its recorded process group still
    counts."""
    pids, again = box.base / "pids", box.base / "quick"
    closer_job(box, "closer", "forbid", pids, again)
    box.sync()
    pgid, first = start_and_kill_shim(box, "closer", pids)
    try:
        again.touch()
        newest = run_once(box, "closer")
        assert newest.status == "skipped" and "orphaned" in str(newest.reason), newest
        assert len(pids.read_text().split()) == 1
        status = json.loads(cli(box, "status", "--json").stdout)
        row = next(j for j in status["jobs"] if j["name"] == "closer")
        assert (row["last_run"]["run_id"], row["last_run"]["status"]) == (first, "orphaned")
    finally:
        kill_group(pgid)
    assert run_once(box, "closer").status == "succeeded"
    assert len(pids.read_text().split()) == 2


def test_replace_stops_a_job_that_closed_every_descriptor(box: ShimSandbox) -> None:
    pids, again = box.base / "pids", box.base / "quick"
    closer_job(box, "closer", "replace", pids, again)
    box.sync()
    pgid, first = start_and_kill_shim(box, "closer", pids)
    try:
        again.touch()
        assert run_once(box, "closer").status == "succeeded"
        assert not live_members(pgid), "replace must stop the orphaned job"
        assert len(pids.read_text().split()) == 2
        ended = next(r for r in list_records(box.runs_dir, "closer") if r.run_id == first)
        assert ended.status == "error" and "stopped" in str(ended.reason)
    finally:
        kill_group(pgid)


def test_replace_stops_the_job_of_a_killed_shim(box: ShimSandbox) -> None:
    pids, again = box.base / "pids", box.base / "quick"
    box.job(
        "swap",
        'schedule = "* * * * *"\nconcurrency = "replace"\n'
        f'shell = "echo $$ >> {pids}; [ -e {again} ] || sleep 300"\n',
    )
    box.sync()
    pgid, first = start_and_kill_shim(box, "swap", pids)
    try:
        again.touch()
        assert run_once(box, "swap").status == "succeeded"
        assert not live_members(pgid), "replace must stop the orphaned job"
        assert len(pids.read_text().split()) == 2
        records = {r.run_id: r for r in list_records(box.runs_dir, "swap")}
        assert records[first].status == "error"
        assert "orphaned" in str(records[first].reason)
        assert "stopped" in str(records[first].reason)
    finally:
        kill_group(pgid)


def test_a_process_left_in_the_background_keeps_the_lock(box: ShimSandbox) -> None:
    """After a normal end, what the job left running still holds the lock (as with
    flock(1)); closing descriptor 3 lets a process outlive its run on purpose."""
    left, free = box.base / "left.pid", box.base / "free.pid"
    box.job(
        "leaves",
        f'schedule = "* * * * *"\nshell = "[ -e {left} ] || '
        f'{{ sleep 300 >/dev/null 2>&1 & echo $! > {left}; }}"\n',
    )
    box.job(
        "frees",
        f'schedule = "* * * * *"\nshell = "[ -e {free} ] || '
        f'{{ sleep 300 >/dev/null 2>&1 3<&- & echo $! > {free}; }}"\n',
    )
    box.sync()
    try:
        assert run_once(box, "leaves").status == "succeeded"
        newest = run_once(box, "leaves")
        assert newest.status == "skipped", newest
        assert "still hold" in str(newest.reason)
        assert run_once(box, "frees").status == "succeeded"
        assert run_once(box, "frees").status == "succeeded"
    finally:
        for path in (left, free):
            if path.exists():
                kill_group(os.getpgid(int(path.read_text())))
    assert run_once(box, "leaves").status == "succeeded"


def test_a_reused_process_group_number_is_not_taken_for_the_job(box: ShimSandbox) -> None:
    box.job("plain", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    assert box.run("plain").returncode == 0
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        lock = box.runs_dir / "plain" / "lock"
        real = process_start(other.pid)
        assert real > 0 and group_alive(other.pid, real)
        # a dead shim's line naming a group whose leader started at another time:
        # the number was given to another process since, which is not the job
        lock.write_text(f"999999999 {other.pid} 20200101T000000Z-dead 1 {real + 1}\n")
        assert not group_alive(other.pid, real + 1)
        assert run_once(box, "plain").status == "succeeded"
        # the same line with the leader's real start: that group is the job's
        lock.write_text(f"999999999 {other.pid} 20200101T000000Z-dead 1 {real}\n")
        assert run_once(box, "plain").status == "skipped"
    finally:
        other.kill()
        wait_for(lambda: not live_members(other.pid))
        assert process_start(other.pid) == 0 and not group_alive(other.pid)  # a zombie
        other.wait(timeout=20)
    assert process_start(other.pid) == 0 and not group_alive(other.pid)  # reaped


def other_users_sleep(user_id: int, group_id: int) -> subprocess.Popen[bytes]:
    """A process of another user, leading its own process group (not the job's)."""
    return subprocess.Popen(
        ["sleep", "300"], user=user_id, group=group_id, extra_groups=[], start_new_session=True
    )


@needs_users
@pytest.mark.parametrize("policy", ["replace", "forbid"])
def test_a_recorded_group_of_another_user_is_not_the_job_s(box: ShimSandbox, policy: str) -> None:
    """A holder line naming a group none of whose members is the job's user's (root's
    here): ``replace`` must not signal it, ``forbid`` must not wait for it."""
    box.job("mine", f'schedule = "* * * * *"\nconcurrency = "{policy}"\nshell = "true"\n')
    box.sync()
    assert box.run("mine").returncode == 0
    with temporary_users(1, prefix="cso") as (other,):
        victim = other_users_sleep(other.pw_uid, other.pw_gid)
        try:
            start = process_start(victim.pid)
            line = f"999999999 {victim.pid} 20200101T000000Z-dead 1 {start}"
            (box.runs_dir / "mine" / "lock").write_text(line + "\n")
            assert run_once(box, "mine").status == "succeeded"
            assert victim.poll() is None, "the run signalled another user's processes"
            assert group_alive(victim.pid, start)
            assert not group_alive(victim.pid, start, uid=os.getuid())
            assert group_alive(victim.pid, start, uid=other.pw_uid)
        finally:
            victim.kill()
            victim.wait(timeout=20)


@needs_users
def test_replace_signals_no_process_of_another_user_named_as_the_shim(box: ShimSandbox) -> None:
    """The lock is held (by a process of the job's user) and its line names another
    user's process as the shim, with its real start time: ``replace`` stops the holder,
    never that process."""
    box.job("swap", 'schedule = "* * * * *"\nconcurrency = "replace"\nshell = "true"\n')
    box.sync()
    assert box.run("swap").returncode == 0
    lock = box.runs_dir / "swap" / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\ntime.sleep(300)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    with temporary_users(1, prefix="cso") as (other,):
        victim = other_users_sleep(other.pw_uid, other.pw_gid)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            start = process_start(victim.pid)
            lock.write_text(f"{victim.pid} 0 20200101T000000Z-dead {start} 0\n")
            assert run_once(box, "swap").status == "succeeded"
            assert victim.poll() is None, "the run signalled another user's process"
            assert holder.wait(timeout=20) < 0  # the lock's holder was stopped
        finally:
            for process in (victim, holder):
                process.kill()
                process.communicate(timeout=20)  # reaped, its pipes closed
