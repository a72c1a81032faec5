"""cronsync-run, for real: a synced sandbox, the shim as a subprocess, real files.

Each test writes a small jobs repository, syncs it into a sandbox root, and runs
``python -m cronsync.cli.shim --root ROOT JOB`` as cron would (or the runner in-process when
the test needs to control the clock). Secrets come from the file backend.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from cronsync.run.context import RunOptions
from cronsync.run.runner import run_job
from cronsync.run.store import list_records, read_last
from helpers.sandbox import Upstream, agent_toml

SECRET = "s3cr3t-Value-42"


class ShimSandbox:
    """A jobs repository synced into a sandbox root, ready for cronsync-run."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.upstream = Upstream(base)
        self.config_path = self.root / "etc/cronsync/agent.toml"
        self.extra = '[run]\nkill_grace = "1s"\n'
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        # named in users.allowed: root and system users (the tests' own user when they
        # run as root) run jobs only when named there
        self.users = {self.user}

    def job(self, name: str, body: str, user: str = "") -> None:
        self.users.add(user or self.user)
        text = (
            f'description = "test job {name}"\nowner = "tests@example.com"\n'
            f'user = "{user or self.user}"\n{body}\n'
        )
        self.upstream.write(f"jobs/{name}.toml", text)

    def script(self, name: str, text: str) -> None:
        self.upstream.write(f"scripts/{name}", text, mode=0o755)

    def sync(self, extra: str = "") -> None:
        self.upstream.commit_and_push("jobs")
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            agent_toml(str(self.upstream.bare), self.root, self.extra + extra).replace(
                'allowed = ["batch"]', f"allowed = {json.dumps(sorted(self.users))}"
            )
        )
        secrets = self.root / "etc/cronsync/secrets.d" / f"{self.user}.toml"
        secrets.parent.mkdir(parents=True, exist_ok=True)
        secrets.write_text(f'"app/token" = "{SECRET}"\n"app/db" = {{ password = "pw-{SECRET}" }}\n')
        secrets.chmod(0o600)
        outcome = run_sync(load_config(str(self.config_path)))
        assert outcome.record.result == "installed", outcome.record

    def run(self, job: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cronsync.cli.shim", "--root", str(self.root), job],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, job: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cronsync.cli.shim", "--root", str(self.root), job],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def runs_dir(self) -> Path:
        return self.root / "var/lib/cronsync/runs"

    def last(self, job: str) -> dict:
        return read_last(self.runs_dir, job)["last_run"]

    def log_text(self, job: str) -> str:
        return Path(self.last(job)["log"]).read_bytes().decode("utf-8", "replace")

    def last_running(self, job: str) -> bool:
        """Whether the newest run record of ``job`` is a run still going."""
        records = list_records(self.runs_dir, job)
        return bool(records) and records[0].status == "running"

    def log_text_or_empty(self, job: str) -> str:
        """The newest run's log so far ('' before there is one)."""
        records = [r for r in list_records(self.runs_dir, job) if r.log]
        if not records:
            return ""
        return Path(str(records[0].log)).read_bytes().decode("utf-8", "replace")


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> Iterator[ShimSandbox]:
    yield ShimSandbox(tmp_path)


def wait_for(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_output_secrets_record_and_exit_code(box: ShimSandbox) -> None:
    box.script(
        "work.sh",
        '#!/bin/sh\necho "token is $TOKEN"\necho "db $DB_PASSWORD" >&2\n'
        'echo "cwd $(pwd)"\necho "mode $MODE"\nprintf "last line"\nexit 3\n',
    )
    box.job(
        "work",
        'schedule = "* * * * *"\ncommand = ["scripts/work.sh"]\nworkdir = "scripts"\n'
        '[env]\nMODE = "nightly"\n[secrets]\nTOKEN = "app/token"\n'
        'DB_PASSWORD = { secret = "app/db", key = "password" }\n',
    )
    box.sync()

    done = box.run("work")

    assert done.returncode == 3, done
    record = box.last("work")
    assert (record["status"], record["exit_code"], record["job"]) == ("failed", 3, "work")
    assert record["output_lines"] == 4 and record["output_bytes"] > 40
    log = box.log_text("work")
    assert "token is ***" in log and "db ***" in log
    assert "mode nightly" in log and "/scripts\n" in log and "last line" in log
    # the secret is nowhere: not in the log, the records, or anything under the root
    for path in box.root.rglob("*"):
        if path.is_file() and "secrets.d" not in str(path):
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in done.stdout + done.stderr


def test_signal_ends_the_run_with_128_plus_n(box: ShimSandbox) -> None:
    box.job("killed", 'schedule = "* * * * *"\nshell = "kill -KILL $$"\n')
    box.sync()
    done = box.run("killed")
    assert done.returncode == 128 + signal.SIGKILL
    assert box.last("killed")["signal"] == signal.SIGKILL


def process_alive(pid: int) -> bool:
    """Is ``pid`` a live process (a zombie waiting for its reaper counts as dead)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_timeout_sends_term_then_kill_to_the_whole_group(box: ShimSandbox) -> None:
    pid_file = box.base / "grandchild.pid"
    box.job(
        "stubborn",
        'schedule = "* * * * *"\ntimeout = "3s"\n'
        # a background grandchild that ignores TERM writes its pid (proof of life)
        # before the job goes on: the kill must reach it through the process group
        f"shell = \"trap '' TERM; sh -c 'echo $$ > {pid_file}; exec sleep 300' & "
        f'while [ ! -s {pid_file} ]; do sleep 0.05; done; echo started; sleep 30"\n',
    )
    box.sync()

    done = box.run("stubborn")

    assert done.returncode == 128 + signal.SIGKILL, done
    record = box.last("stubborn")
    assert record["status"] == "timed-out" and record["timed_out"] is True
    log = box.log_text("stubborn")
    assert "started" in log and "timed out: sending TERM" in log and "sending KILL" in log
    grandchild = int(pid_file.read_text())
    try:
        wait_for(lambda: not process_alive(grandchild), seconds=10)
    finally:
        if process_alive(grandchild):  # do not leave it behind when the test fails
            os.kill(grandchild, signal.SIGKILL)


def test_forbid_skips_a_run_while_the_previous_one_runs(box: ShimSandbox) -> None:
    box.job("long", 'schedule = "* * * * *"\nshell = "echo go; sleep 60"\n')
    box.sync()
    first = box.start("long")
    try:
        wait_for(lambda: box.last_running("long"))
        second = box.run("long")
        assert second.returncode == 0
        skipped = [r for r in list_records(box.runs_dir, "long") if r.status == "skipped"]
        assert len(skipped) == 1 and "previous run still running" in str(skipped[0].reason)
    finally:
        first.terminate()
        first.wait(timeout=20)


def test_replace_stops_the_previous_run(box: ShimSandbox) -> None:
    box.job(
        "swap", 'schedule = "* * * * *"\nconcurrency = "replace"\nshell = "echo go; sleep 30"\n'
    )
    box.sync()
    first = box.start("swap")
    wait_for(lambda: box.last_running("swap"))
    second = box.start("swap")
    try:
        assert first.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        second.terminate()
        second.wait(timeout=30)
    statuses = sorted(r.exit_code or 0 for r in list_records(box.runs_dir, "swap"))
    assert 128 + signal.SIGTERM in statuses


def test_allow_runs_side_by_side(box: ShimSandbox) -> None:
    box.job("many", 'schedule = "* * * * *"\nconcurrency = "allow"\nshell = "sleep 1"\n')
    box.sync()
    runs = [box.start("many") for _ in range(3)]
    assert [p.wait(timeout=30) for p in runs] == [0, 0, 0]
    assert len([r for r in list_records(box.runs_dir, "many") if r.status == "succeeded"]) == 3


def test_secrets_unavailable_fail_closed(box: ShimSandbox) -> None:
    marker = box.base / "started"
    box.job(
        "needs",
        f'schedule = "* * * * *"\nshell = "touch {marker}"\n'
        '[secrets]\nA = "app/missing"\nB = "app/token"\n',
    )
    box.sync()
    done = box.run("needs")
    assert done.returncode == 126
    assert not marker.exists()
    record = box.last("needs")
    assert record["status"] == "error" and "app/missing" in record["reason"]
    assert "not found" in record["reason"] and SECRET not in record["reason"]
    assert "app/missing" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_shim_errors_have_their_own_exit_codes(box: ShimSandbox) -> None:
    box.job("ghost", 'schedule = "* * * * *"\ncommand = ["no-such-program-for-cronsync"]\n')
    box.job(
        "retired", 'schedule = "* * * * *"\nshell = "true"\nenabled = false\nreason = "replaced"\n'
    )
    box.sync()
    assert box.run("ghost").returncode == 127
    assert box.last("ghost")["status"] == "error"
    missing = box.run("nope")
    assert missing.returncode == 125 and "no job 'nope'" in missing.stderr
    disabled = box.run("retired")
    assert disabled.returncode == 125 and "not installed on this host" in disabled.stderr
    nothing = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.shim", "--root", str(box.base / "elsewhere"), "ghost"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert nothing.returncode == 125 and "no release installed" in nothing.stderr
    assert "Traceback" not in missing.stderr + disabled.stderr + nothing.stderr


def test_success_check_failure_fails_the_run(box: ShimSandbox) -> None:
    box.script("check.sh", '#!/bin/sh\necho "checking"\nexit 4\n')
    box.job(
        "checked",
        'schedule = "* * * * *"\nshell = "echo done"\n[success]\ncheck = ["scripts/check.sh"]\n',
    )
    box.sync()
    done = box.run("checked")
    assert done.returncode == 4
    record = box.last("checked")
    assert (record["status"], record["check_exit_code"]) == ("failed", 4)
    assert "checking" in box.log_text("checked")


def test_long_lines_binary_output_and_split_secrets(box: ShimSandbox) -> None:
    half = len(SECRET) // 2
    box.script(
        "noisy.py",
        "#!/usr/bin/env python3\nimport os, sys, time\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'x' * 300000 + b'END\\n')\n"
        "out.write(bytes(range(256)) + b'\\n')\n"
        f"out.write(b'split ' + os.environ['TOKEN'][:{half}].encode()); out.flush()\n"
        "time.sleep(0.3)\n"
        f"out.write(os.environ['TOKEN'][{half}:].encode() + b' done\\n')\n",
    )
    box.job(
        "noisy",
        'schedule = "* * * * *"\ncommand = ["scripts/noisy.py"]\n[secrets]\nTOKEN = "app/token"\n',
    )
    box.sync()
    assert box.run("noisy").returncode == 0
    data = Path(box.last("noisy")["log"]).read_bytes()
    assert SECRET.encode() not in data
    assert b"split *** done" in data
    from cronsync.core.logformat import read_lines

    texts = [line.text for line in read_lines(data)]
    assert b"".join(t for t in texts if t.startswith(b"x") or t == b"END").count(b"x") == 300000
    assert bytes(range(10)) in data  # binary kept as written


def test_term_to_the_shim_is_passed_to_the_job(box: ShimSandbox) -> None:
    box.job(
        "graceful",
        'schedule = "* * * * *"\n'
        "shell = \"trap 'echo got TERM; exit 7' TERM; echo ready; "
        'while true; do sleep 0.1; done"\n',
    )
    box.sync()
    shim = box.start("graceful")
    wait_for(lambda: "ready" in box.log_text_or_empty("graceful"))
    shim.send_signal(signal.SIGTERM)
    assert shim.wait(timeout=20) == 7
    assert "got TERM" in box.log_text("graceful")


def test_time_zone_gate_runs_only_when_due_in_the_jobs_zone(
    box: ShimSandbox, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    box.job(
        "ny",
        f'schedule = "0 9 * * *"\ntimezone = "America/New_York"\nshell = "echo ran >> {marker}"\n',
    )
    box.sync()
    jobs = json.loads((box.root / "var/lib/cronsync/current/jobs.json").read_text())
    assert jobs["jobs"]["ny"]["gate"] is True  # UTC host: DST makes the offset vary

    def run_at(moment: datetime) -> int:
        return run_job("ny", RunOptions(root=box.root, clock=moment.timestamp))

    # 13:00 UTC is 09:00 in New York in summer (EDT), 08:00 in winter (EST)
    assert run_at(datetime(2026, 7, 1, 13, 0, tzinfo=timezone.utc)) == 0
    assert marker.read_text() == "ran\n"
    assert run_at(datetime(2026, 1, 15, 13, 0, tzinfo=timezone.utc)) == 0
    assert marker.read_text() == "ran\n"  # gated out: not due in its zone
    assert run_at(datetime(2026, 1, 15, 14, 0, tzinfo=timezone.utc)) == 0
    assert marker.read_text() == "ran\nran\n"


def test_jitter_sleeps_before_the_start_but_not_by_hand(box: ShimSandbox) -> None:
    box.job("spread", 'schedule = "* * * * *"\njitter = "10m"\nshell = "true"\n')
    box.sync()
    slept: list[float] = []
    assert run_job("spread", RunOptions(root=box.root, sleep=slept.append)) == 0
    assert len(slept) == 1 and 0 <= slept[0] <= 600
    assert run_job("spread", RunOptions(root=box.root, sleep=slept.append, by_hand=True)) == 0
    assert len(slept) == 1


def test_retention_keeps_the_newest_runs(box: ShimSandbox) -> None:
    box.job("often", 'schedule = "* * * * *"\nshell = "echo hi"\n')
    box.sync("[logs]\nkeep_runs = 3\n")
    for _ in range(5):
        assert box.run("often").returncode == 0
    records = list_records(box.runs_dir, "often")
    assert len(records) == 3
    logs = sorted((box.root / "var/log/cronsync/often").iterdir())
    assert [p.stem for p in logs] == sorted(r.run_id for r in records)


def test_status_history_and_logs_show_the_runs(box: ShimSandbox) -> None:
    box.job("shown", 'schedule = "* * * * *"\nshell = "echo visible output; exit 2"\n')
    box.sync()
    box.run("shown")
    env = {**os.environ, "CRONSYNC_CONFIG": str(box.config_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cronsync.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    status = json.loads(cli("status", "--json").stdout)
    job = next(j for j in status["jobs"] if j["name"] == "shown")
    assert job["last_run"]["status"] == "failed" and job["last_run"]["exit_code"] == 2
    assert job["last_success"] is None
    history = cli("history", "shown")
    assert history.returncode == 0 and "failed" in history.stdout
    logs = cli("logs", "shown")
    assert "visible output" in logs.stdout and "[cronsync] failed: exit 2" in logs.stdout
    by_hand = cli("run", "shown")
    assert by_hand.returncode == 2 and "visible output" in by_hand.stdout
    assert len(list_records(box.runs_dir, "shown")) == 2


def test_force_runs_a_job_this_host_does_not_install(box: ShimSandbox) -> None:
    box.job(
        "retired",
        'schedule = "* * * * *"\nshell = "echo forced run"\nenabled = false\nreason = "replaced"\n',
    )
    box.sync()
    env = {**os.environ, "CRONSYNC_CONFIG": str(box.config_path)}
    forced = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "run", "retired", "--force"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if os.geteuid() == 0:  # root prepares the job's directories, as a sync would
        assert forced.returncode == 0, forced.stderr
        assert "forced run" in forced.stdout
        assert box.last("retired")["status"] == "succeeded"
    else:  # nobody else may: the message says why, and where
        assert forced.returncode == 125
        assert f"{box.runs_dir}/retired does not exist" in forced.stderr
        assert "not installed on this host" in forced.stderr
    assert "Traceback" not in forced.stderr


def test_by_hand_a_disabled_job_says_it_is_not_installed_before_anything_else(
    box: ShimSandbox,
) -> None:
    box.job(
        "gone",
        'schedule = "* * * * *"\nshell = "true"\nenabled = false\nreason = "replaced"\n',
        user="no-such-user-for-cronsync",
    )
    box.sync()
    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "run", "gone"],
        capture_output=True,
        text=True,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
        timeout=120,
    )
    assert done.returncode == 125
    assert "not installed on this host" in done.stderr and "--force" in done.stderr
    assert "does not exist" not in done.stderr


def test_by_hand_a_program_that_cannot_start_is_said_once(box: ShimSandbox) -> None:
    box.job("ghost", 'schedule = "* * * * *"\ncommand = ["no-such-program-for-cronsync"]\n')
    box.sync()
    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "run", "ghost"],
        capture_output=True,
        text=True,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
        timeout=120,
    )
    assert done.returncode == 127
    assert done.stderr.count("no-such-program-for-cronsync") == 1, done.stderr
    assert box.last("ghost")["status"] == "error"


def test_encoded_forms_of_a_secret_are_masked_in_the_log(box: ShimSandbox) -> None:
    """A job prints its secret base64-encoded after "user:", echoed into base64,
    URL-encoded and inside JSON: none of it reaches the log or any file."""
    value = 'p@ss w/"rd"+\u00e9\\x-9'  # every encoding writes these differently
    box.script(
        "forms.py",
        "#!/usr/bin/env python3\nimport base64, json, os, urllib.parse\n"
        "value = os.environ['FANCY']\n"
        "print('basic', base64.b64encode(('user:' + value).encode()).decode())\n"
        "print('echo', base64.b64encode((value + '\\n').encode()).decode())\n"
        "print('form', urllib.parse.quote_plus(value))\n"
        "print('uri', urllib.parse.quote(value, safe=''))\n"
        "print('json', json.dumps({'pw': value}))\n"
        "print('utf8', json.dumps({'pw': value}, ensure_ascii=False))\n",
    )
    box.job(
        "forms",
        'schedule = "* * * * *"\ncommand = ["scripts/forms.py"]\n[secrets]\nFANCY = "app/fancy"\n',
    )
    box.sync()
    secrets = box.root / "etc/cronsync/secrets.d" / f"{box.user}.toml"
    with secrets.open("a") as handle:  # read at run time; a TOML string is a JSON one
        handle.write(f'"app/fancy" = {json.dumps(value)}\n')

    done = box.run("forms")

    assert done.returncode == 0, done
    basic = base64.b64encode(b"user:" + value.encode()).decode()
    # "user:" is 5 bytes: characters 7 up to bit 8 * (5 + len) / 6 hold only the value's
    kept = basic[: -(-40 // 6)], basic[8 * (5 + len(value.encode())) // 6 :]
    printed = [
        basic,
        base64.b64encode(value.encode() + b"\n").decode(),
        quote_plus(value),
        quote(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    ]
    assert len(set(printed)) == len(printed)
    lines = box.log_text("forms").splitlines()
    assert f"basic {kept[0]}***{kept[1]}" in lines
    assert "form ***" in lines and "uri ***" in lines
    assert 'json {"pw": "***"}' in lines and 'utf8 {"pw": "***"}' in lines
    assert any(line.startswith("echo ***") for line in lines)
    for path in box.root.rglob("*"):
        if path.is_file() and "secrets.d" not in str(path):
            data = path.read_bytes()
            for form in printed:
                assert form.encode() not in data, (path, form)
