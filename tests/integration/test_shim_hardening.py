"""cronsync-run and the run-record readers against a hostile job user.

A job's user owns ``runs/<job>/`` and its log directory and can write anything there:
records naming other files, FIFOs, symlinks, wrong types. Nothing it writes may make
root print another file, make a reader hang or crash, or keep the next run from
working. Also: ``replace`` really stops the previous run, a change of user hands the
folders over (not the old user's runs), cronsync's own failures exit 125-127 with the
record ended, and ``cronsync run`` as root gives the job cron's environment, not the
operator's.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_shim import ShimSandbox, wait_for

from cronsync.core.errors import InstallError
from cronsync.host.jobdirs import ensure_job_dirs
from cronsync.run import context, runner
from cronsync.run.context import RunOptions
from cronsync.run.jobspec import ShimError
from cronsync.run.record import RUNNING
from cronsync.run.runner import run_job
from cronsync.run.store import list_records

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="changing owners and users needs root")


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> Iterator[ShimSandbox]:
    yield ShimSandbox(tmp_path)


def cli(
    box: ShimSandbox, *args: str, timeout: float = 30, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path), **env},
    )


def record_path(box: ShimSandbox, job: str) -> Path:
    return box.runs_dir / job / f"{box.last(job)['run_id']}.json"


def forge_record(box: ShimSandbox, job: str, **changes: Any) -> Path:
    """Rewrite the job's newest run record (as its user could) with ``changes``."""
    path = record_path(box, job)
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def jobs_json(box: ShimSandbox) -> Path:
    return (box.root / "var/lib/cronsync/current").resolve() / "jobs.json"


def edit_jobs_json(box: ShimSandbox, edit: Any) -> None:
    path = jobs_json(box)
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


# --- 1. `cronsync logs` prints only the job's own log files -------------------------


def test_logs_refuses_a_record_naming_another_file(box: ShimSandbox) -> None:
    secret = box.base / "not-the-log"
    secret.write_text("root-only secret\n")
    box.job("peek", 'schedule = "* * * * *"\nshell = "echo hello"\n')
    box.sync()
    assert box.run("peek").returncode == 0
    assert "hello" in cli(box, "logs", "peek").stdout

    forge_record(box, "peek", log=str(secret))
    done = cli(box, "logs", "peek")
    assert done.returncode == 1 and "root-only" not in done.stdout
    assert "not a file in the job's log directory" in done.stderr

    # a path that only looks inside (..), and a symlink inside pointing out
    log_dir = box.root / "var/log/cronsync/peek"
    forge_record(box, "peek", log=str(log_dir / ".." / ".." / ".." / ".." / secret))
    assert "root-only" not in cli(box, "logs", "peek").stdout
    link = log_dir / "20990101T000000Z-link.log"
    link.symlink_to(secret)
    forge_record(box, "peek", log=str(link))
    done = cli(box, "logs", "peek")
    assert done.returncode == 1 and "root-only" not in done.stdout


def test_logs_of_a_run_whose_record_is_damaged_reads_its_log_file(box: ShimSandbox) -> None:
    box.job("mended", 'schedule = "* * * * *"\nshell = "echo still here"\n')
    box.sync()
    assert box.run("mended").returncode == 0
    run_id = box.last("mended")["run_id"]
    record_path(box, "mended").write_text("{damaged")

    done = cli(box, "logs", "mended", "--run", run_id)
    assert done.returncode == 0 and "still here" in done.stdout
    for bad in ("../../../etc/passwd", "20990101T000000Z-0000"):
        done = cli(box, "logs", "mended", "--run", bad)
        assert done.returncode == 1 and "no log recorded" in done.stderr


def test_logs_refuses_hard_links_and_does_not_hang_on_a_fifo(box: ShimSandbox) -> None:
    secret = box.base / "hard"
    secret.write_text("linked secret\n")
    box.job("fifo", 'schedule = "* * * * *"\nshell = "echo hello"\n')
    box.sync()
    assert box.run("fifo").returncode == 0
    log_dir = box.root / "var/log/cronsync/fifo"

    fifo = log_dir / "20990101T000000Z-fifo.log"
    os.mkfifo(fifo)
    forge_record(box, "fifo", log=str(fifo))
    done = cli(box, "logs", "fifo", timeout=20)  # a blocking open would time out here
    assert done.returncode == 1 and "not a regular file" in done.stderr

    hard = log_dir / "20990101T000000Z-hard.log"
    os.link(secret, hard)
    forge_record(box, "fifo", log=str(hard))
    done = cli(box, "logs", "fifo")
    assert done.returncode == 1 and "linked secret" not in done.stdout
    assert "hard links" in done.stderr


def test_logs_streams_a_big_log(box: ShimSandbox) -> None:
    box.job(
        "big",
        'schedule = "* * * * *"\n'
        'shell = "i=0; while [ $i -lt 40000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; '
        'echo err-$i >&2; i=$((i+1)); done"\n',
    )
    box.sync()
    assert box.run("big").returncode == 0
    from cronsync.core.logformat import plain_text

    data = Path(box.last("big")["log"]).read_bytes()
    assert len(data) > 2 << 20  # more than one read
    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "logs", "big"],
        capture_output=True,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout == plain_text(data, with_streams=True)
    raw = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "logs", "big", "--raw"],
        capture_output=True,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
        timeout=60,
    )
    assert raw.stdout == data


# --- 2. readers of runs/<job>/* -----------------------------------------------------


def test_garbage_last_json_neither_crashes_nor_hangs_status(box: ShimSandbox) -> None:
    box.job("due", 'schedule = "* * * * *"\nshell = "true"\n[success]\nwithin = "1m"\n')
    box.job("other", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    assert box.run("due").returncode == 0
    assert box.run("other").returncode == 0
    last = box.runs_dir / "due" / "last.json"

    garbage = [
        {"format": 1, "last_success": "x"},
        {"format": 1, "last_success": {"ended": 5}, "last_run": [1]},
        {"format": 1, "last_run": {"format": 1, "run_id": 3, "status": {}}},
        [1, 2],
    ]
    for document in garbage:
        last.write_text(json.dumps(document))
        done = cli(box, "status", "--json")
        assert "Traceback" not in done.stderr, done.stderr
        status = json.loads(done.stdout)
        due = next(j for j in status["jobs"] if j["name"] == "due")
        assert due["last_run"] is None and due["last_success"] is None

    last.unlink()
    os.mkfifo(last)  # a blocking open() would hang status forever
    other_last = box.runs_dir / "other" / "last.json"
    other_last.unlink()
    other_last.symlink_to(box.runs_dir / "due" / "last.json")
    done = cli(box, "status", "--json", timeout=20)
    assert "Traceback" not in done.stderr
    status = json.loads(done.stdout)
    assert all(j["last_run"] is None for j in status["jobs"])
    # and the next run replaces the FIFO with a real last.json
    assert box.run("due").returncode == 0
    assert box.last("due")["status"] == "succeeded"


def test_a_damaged_state_file_still_shows_what_cron_runs(box: ShimSandbox) -> None:
    box.job("kept", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    before = json.loads(cli(box, "status", "--json").stdout)["installed"]
    (box.root / "var/lib/cronsync/state.json").write_text("{not json")

    done = cli(box, "status", "--json")
    status = json.loads(done.stdout)

    assert done.returncode == 1 and status["health"] == "degraded"
    assert "not valid JSON" in status["state_problem"]
    installed = status["installed"]  # from the `current` release, not the state file
    assert (installed["commit"], installed["release"]) == (before["commit"], before["release"])
    assert installed["at"][:10] == before["at"][:10]
    text = cli(box, "status")
    assert f"installed:  {before['commit'][:12]} at " in text.stdout


def test_history_skips_records_of_the_wrong_shape(box: ShimSandbox) -> None:
    box.job("shape", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    for _ in range(2):
        assert box.run("shape").returncode == 0
    records = list_records(box.runs_dir, "shape")
    bad = box.runs_dir / "shape" / f"{records[0].run_id}.json"
    data = json.loads(bad.read_text())
    data["duration"] = "x"
    bad.write_text(json.dumps(data))
    directory = box.runs_dir / "shape"
    (directory / "20990101T000000Z-aaaa.json").write_text(
        json.dumps({**data, "run_id": "20990101T000000Z-aaaa", "duration": 1.0, "job": "x"})
    )
    (directory / "20990101T000000Z-bbbb.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (directory / "20990101T000000Z-cccc.json").write_bytes(b" " * (2 << 20) + b"{}")
    os.mkfifo(directory / "20990101T000000Z-dddd.json")

    done = cli(box, "history", "shape", timeout=20)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert records[1].run_id in done.stdout and records[0].run_id not in done.stdout
    assert "20990101" not in done.stdout
    assert [r.run_id for r in list_records(box.runs_dir, "shape")] == [records[1].run_id]
    listed = json.loads(cli(box, "history", "shape", "--json").stdout)
    assert [r["run_id"] for r in listed] == [records[1].run_id]


# --- 3. concurrency = "replace" ----------------------------------------------------


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def test_replace_kills_a_job_that_ignores_term(box: ShimSandbox) -> None:
    pids = box.base / "pids"
    box.job(
        "stubborn",
        'schedule = "* * * * *"\nconcurrency = "replace"\n'
        f"shell = \"echo $$ >> {pids}; trap '' TERM; sleep 30\"\n",
    )
    box.sync()
    first = box.start("stubborn")
    try:
        wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 1)
        first_pgid = int(pids.read_text().split()[0])
        lock = (box.runs_dir / "stubborn" / "lock").read_text()
        assert lock.split()[:2] == [str(first.pid), str(first_pgid)]  # the job's group
        assert len(lock) == 96 and lock.endswith("\n")
        first_id = list_records(box.runs_dir, "stubborn")[0].run_id

        second = box.start("stubborn")
        try:
            assert first.wait(timeout=30) == 128 + signal.SIGKILL
            wait_for(lambda: not group_alive(first_pgid), 10)
            wait_for(lambda: len(pids.read_text().split()) == 2)  # the second one runs
            ended = next(r for r in list_records(box.runs_dir, "stubborn") if r.run_id == first_id)
            assert ended.status == "failed" and ended.signal == signal.SIGKILL
            assert "received SIGTERM" in str(ended.reason)
            second_pgid = int(pids.read_text().split()[1])
            assert group_alive(second_pgid)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 128 + signal.SIGKILL  # TERM, then KILL
    finally:
        if first.poll() is None:
            first.kill()
    wait_for(lambda: not group_alive(second_pgid), 10)  # (a zombie may linger a moment)
    assert all(r.status != RUNNING for r in list_records(box.runs_dir, "stubborn"))
    log = box.log_text("stubborn")
    assert "received SIGTERM" in log and "sending KILL" in log


def test_a_run_whose_shim_died_is_ended_by_the_next(box: ShimSandbox) -> None:
    box.job("crashy", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    assert box.run("crashy").returncode == 0
    dead = forge_record(box, "crashy", status="running", ended=None, exit_code=None)
    dead_id = dead.stem
    # what a shim killed in the middle of a run leaves: its line in the lock
    (box.runs_dir / "crashy" / "lock").write_text(f"999999999 0 {dead_id}\n")
    assert box.run("crashy").returncode == 0
    statuses = {r.run_id: r for r in list_records(box.runs_dir, "crashy")}
    assert statuses[dead_id].status == "error"
    assert "ended before the run did" in str(statuses[dead_id].reason)
    assert box.last("crashy")["status"] == "succeeded"  # the new run is the last one


# --- 4. a change of user hands over the folders, not the old user's runs -------------
# (what the old user left there is set aside for root: tests/integration/test_user_change.py)


@needs_root
def test_a_new_user_gets_the_folders_and_their_lock_and_pending(tmp_path: Path) -> None:
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    ensure_job_dirs(runs, logs, {"job": "daemon"})
    daemon, nobody = pwd.getpwnam("daemon"), pwd.getpwnam("nobody")
    (runs / "job" / "lock").write_text("1 0\n")
    (runs / "job" / "pending").mkdir()
    for path in [*(runs / "job").rglob("*"), *(logs / "job").rglob("*")]:
        os.lchown(path, daemon.pw_uid, daemon.pw_gid)

    assert ensure_job_dirs(runs, logs, {"job": "nobody"}) == []

    owned = [runs / "job", logs / "job", *(runs / "job").rglob("*"), *(logs / "job").rglob("*")]
    assert len(owned) == 4
    for path in owned:
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (nobody.pw_uid, nobody.pw_gid), path
    assert oct(os.stat(runs / "job").st_mode & 0o777) == "0o755"
    assert oct(os.stat(logs / "job").st_mode & 0o777) == "0o700"  # not even the group

    # a tree left half-done (top already the new user's, lock still the old one's)
    os.chown(runs / "job" / "lock", daemon.pw_uid, daemon.pw_gid)
    ensure_job_dirs(runs, logs, {"job": "nobody"})
    assert os.stat(runs / "job" / "lock").st_uid == nobody.pw_uid


# --- 5. failures of cronsync itself -------------------------------------------------


def test_forwarding_that_cannot_start_does_not_stop_the_job(box: ShimSandbox) -> None:
    box.job("fwd", 'schedule = "* * * * *"\nshell = "echo ran"\n')
    box.sync(
        "[logs]\ncloudwatch = true\n"
        '[aws]\nregion = "eu-west-1"\nendpoint_url = "http://127.0.0.1:9"\n'
    )
    (box.runs_dir / "fwd" / "pending").write_text("not a directory")

    done = box.run("fwd")

    assert done.returncode == 0, done
    record = box.last("fwd")
    assert record["status"] == "succeeded" and record["cloudwatch_stream"] is None
    cloudwatch = record["extra"]["cloudwatch"]
    assert cloudwatch["forwarded"] is False and "not forwarded" in cloudwatch["error"]
    assert "ran" in box.log_text("fwd")


def test_an_unexpected_error_ends_the_record_and_exits_125(
    box: ShimSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box.job("boom", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()

    def explode(*_args: Any) -> dict[str, str]:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(runner, "job_environment", explode)
    with pytest.raises(ShimError) as caught:
        run_job("boom", RunOptions(root=box.root))
    assert caught.value.exit_code == 125 and "kaboom" in caught.value.message
    record = box.last("boom")
    assert record["status"] == "error" and record["exit_code"] == 125
    assert "RuntimeError: kaboom" in record["reason"]


def test_a_record_that_cannot_be_written_exits_125_not_4(
    box: ShimSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box.job("nodisk", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()

    def full(*_args: Any) -> None:
        raise InstallError("cannot write record: No space left on device")

    monkeypatch.setattr(context, "write_record", full)
    stderr = open(os.devnull, "w")  # noqa: SIM115
    with stderr, pytest.raises(ShimError) as caught:
        run_job("nodisk", RunOptions(root=box.root, stderr=stderr))
    assert caught.value.exit_code == 125 and "No space left" in caught.value.message


def test_a_lock_that_is_not_a_file_exits_125(box: ShimSandbox) -> None:
    box.job("locked", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    lock = box.runs_dir / "locked" / "lock"
    lock.symlink_to(box.base / "elsewhere")
    done = box.run("locked")
    assert done.returncode == 125 and "cannot take the lock" in done.stderr
    assert not (box.base / "elsewhere").exists()
    lock.unlink()
    os.mkfifo(lock)
    done = box.run("locked", timeout=20)
    assert done.returncode == 125 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout", "x", "timeout is not a number"),
        ("jitter", [1], "jitter is not a number"),
        ("command", "ls -l", "command is not a list of strings"),
        ("command", ["ls", 1], "command is not a list of strings"),
        ("env", {"A": 1}, "env is not a table of strings"),
        ("env", ["A"], "env is not a table of strings"),
        ("secrets", ["app/token"], "secrets is not a list of tables"),
        ("secrets", {"A": "b"}, "secrets is not a list of tables"),
        ("concurrency", "sometimes", "concurrency is not one of"),
        ("success", {"check": "true"}, "success.check is not a list of strings"),
        ("shell", 7, "shell is not a string"),
    ],
)
def test_a_job_of_the_wrong_shape_exits_125(
    box: ShimSandbox, field: str, value: Any, message: str
) -> None:
    box.job("shaped", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()

    def edit(document: dict[str, Any]) -> None:
        job = document["jobs"]["shaped"]
        if field == "command":
            job["shell"] = None
        job[field] = value

    edit_jobs_json(box, edit)
    done = box.run("shaped")
    assert done.returncode == 125, done
    assert message in done.stderr and "Traceback" not in done.stderr


def test_settings_of_the_wrong_shape_exit_125(box: ShimSandbox) -> None:
    box.job("set", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    edit_jobs_json(box, lambda d: d["settings"].update(kill_grace="soon"))
    done = box.run("set")
    assert done.returncode == 125 and "kill_grace is not a number" in done.stderr
    edit_jobs_json(box, lambda d: d["settings"].update(kill_grace=1))
    assert box.run("set").returncode == 0
    edit_jobs_json(box, lambda d: d.update(jobs={"set": "x"}))
    done = box.run("set")
    assert done.returncode == 125 and "is not a table" in done.stderr
    assert "Traceback" not in done.stderr


# --- 6. the release format ----------------------------------------------------------


def test_a_newer_release_format_is_refused_not_misread(box: ShimSandbox) -> None:
    box.job("future", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    assert box.run("future").returncode == 0
    edit_jobs_json(box, lambda d: d.update(format=2))

    done = box.run("future")
    assert done.returncode == 125
    assert "release format 2 needs a newer cronsync-run" in done.stderr

    status = cli(box, "status", "--json")
    assert "Traceback" not in status.stderr
    doc = json.loads(status.stdout)
    assert "release format 2 needs a newer cronsync" in doc["state_problem"]
    assert doc["health"] == "degraded" and doc["jobs"] == []
    text = cli(box, "status")
    assert "release format 2 needs a newer cronsync" in text.stdout

    history = cli(box, "history", "future")
    assert history.returncode == 1 and "release format 2" in history.stderr


# --- 7. the recorded duration is the job's --------------------------------------------


def test_the_duration_does_not_include_telling_the_broker(
    box: ShimSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box.job("timed", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    now = [1_800_000_000.0]
    seen: list[dict[str, Any]] = []

    def end_shipping(run: Any) -> None:
        seen.append(box.last("timed"))  # the end is already recorded
        now[0] += 10.0  # a slow broker
        run.add_extra({"broker": "slow"})

    monkeypatch.setattr(runner, "end_shipping", end_shipping)
    assert run_job("timed", RunOptions(root=box.root, clock=lambda: now[0])) == 0
    record = box.last("timed")
    assert record["duration"] == 0.0 and record["ended"] == record["started"]
    assert record["extra"]["broker"] == "slow"
    assert seen[0]["status"] == "succeeded" and seen[0]["duration"] == 0.0


# --- 8. `cronsync run` as root gives the job cron's environment ----------------------


@pytest.fixture
def open_box(git_env: None) -> Iterator[ShimSandbox]:
    """A sandbox another user can reach (pytest's tmp_path is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="cronsync-open-"))
    base.chmod(0o755)
    try:
        yield ShimSandbox(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_root
def test_run_by_hand_as_root_gives_the_job_crons_environment(open_box: ShimSandbox) -> None:
    box = open_box
    box.job(
        "envy",
        'schedule = "* * * * *"\nshell = "env | sort; id -un"\n[env]\nMODE = "by-hand"\n',
        user="daemon",
    )
    box.sync()
    done = cli(
        box,
        "run",
        "envy",
        AWS_SECRET_ACCESS_KEY="operator-key",
        SSH_AUTH_SOCK="/tmp/agent.sock",
        SUDO_USER="operator",
        TERM="xterm-test",
        LC_TIME="C.UTF-8",
    )
    assert done.returncode == 0, done.stderr
    variables = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if "=" in line and line[0] != " "
    )
    daemon = pwd.getpwnam("daemon")
    assert variables["HOME"] == daemon.pw_dir
    assert variables["USER"] == variables["LOGNAME"] == "daemon"
    assert variables["SHELL"] == "/bin/sh" and variables["PATH"] == "/usr/bin:/bin"
    assert variables["TERM"] == "xterm-test" and variables["LC_TIME"] == "C.UTF-8"
    assert variables["MODE"] == "by-hand" and variables["CRONSYNC_JOB"] == "envy"
    for leaked in ("AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK", "SUDO_USER", "CRONSYNC_CONFIG"):
        assert leaked not in variables
    assert "operator-key" not in done.stdout
    assert done.stdout.splitlines()[-1] == "daemon"
    assert box.last("envy")["user"] == "daemon"


# --- 9. exit codes --------------------------------------------------------------------


def test_history_limit_and_unknown_jobs(box: ShimSandbox) -> None:
    box.job("known", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()
    for limit in ("0", "-3", "many"):
        done = cli(box, "history", "known", "--limit", limit)
        assert done.returncode == 2 and "--limit" in done.stderr
    missing = cli(box, "history", "nosuch")
    assert missing.returncode == 1
    assert "no job 'nosuch' in the installed release" in missing.stderr
    assert cli(box, "logs", "nosuch").returncode == 1
    assert cli(box, "history", "known", "--limit", "1").returncode == 0


@needs_root
def test_run_by_hand_for_a_user_that_does_not_exist_exits_125(box: ShimSandbox) -> None:
    box.job("ghostly", 'schedule = "* * * * *"\nshell = "true"\n', user="no-such-user-cs")
    box.sync()
    done = cli(box, "run", "ghostly")
    assert done.returncode == 125 and "does not exist" in done.stderr


def test_term_to_the_shim_escalates_to_kill(box: ShimSandbox) -> None:
    box.job("deaf", 'schedule = "* * * * *"\nshell = "trap \'\' TERM; echo ready; sleep 30"\n')
    box.sync()
    started = time.monotonic()
    shim = box.start("deaf")
    wait_for(lambda: "ready" in box.log_text_or_empty("deaf"))
    shim.send_signal(signal.SIGTERM)
    assert shim.wait(timeout=20) == 128 + signal.SIGKILL
    assert time.monotonic() - started < 15
    record = box.last("deaf")
    assert record["signal"] == signal.SIGKILL and record["status"] == "failed"
