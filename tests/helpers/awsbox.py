"""A jobs repository synced into a sandbox root whose agent config reaches AWS (moto over
HTTP on 127.0.0.1) only through ``[aws]``, with the broker served in-process: what the
shim and broker tests share.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

from cronsync.broker.daemon import BrokerDaemon
from cronsync.cloud.batch import PREFIXES
from cronsync.core.logformat import read_lines
from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from cronsync.run.store import read_last
from helpers.loglines import LogLines
from helpers.sandbox import Upstream, agent_toml

GROUP = "/cronsync/test"
NAMESPACE = "CronsyncTest"
HOST = "batch-1"
REGION = "us-east-1"
CRONSYNC_PREFIX = PREFIXES["c"]
WAIT = 60.0  # seconds a test waits for the broker's background work, at most


def wait_for(condition: Callable[[], Any], what: str, seconds: float = WAIT) -> Any:
    """Return ``condition()`` once it is true, polling; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def client(endpoint: str, service: str) -> Any:
    """A boto3 client of the test itself (explicit keys: the process env is not used)."""
    import boto3

    return boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stream_messages(endpoint: str, stream: str) -> list[str]:
    """Every event message of ``stream`` in GROUP, oldest first (none while the group
    or the stream does not exist)."""
    logs = client(endpoint, "logs")
    messages: list[str] = []
    token: Optional[str] = None
    while True:
        extra = {"nextToken": token} if token else {}
        try:
            page = logs.get_log_events(
                logGroupName=GROUP, logStreamName=stream, startFromHead=True, **extra
            )
        except logs.exceptions.ResourceNotFoundException:
            return []
        messages += [event["message"] for event in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return messages
        token = page["nextForwardToken"]


def stream_names(endpoint: str) -> list[str]:
    logs = client(endpoint, "logs")
    try:
        streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return sorted(s["logStreamName"] for s in streams)


# --- the sandbox --------------------------------------------------------------------


class AwsShimSandbox:
    """A jobs repository synced into a sandbox root whose agent config reaches AWS only
    through ``[aws]`` (a credentials file of its own, an endpoint, a region), and the
    broker those syncs configure, served in this process (:meth:`start_broker`)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.broker: Optional[BrokerDaemon] = None
        self.broker_log = LogLines()  # what the broker logged (and at which level)
        self.root = base / "root"
        self.upstream = Upstream(base)
        self.config_path = self.root / "etc/cronsync/agent.toml"
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        # named in users.allowed: root and system users (the tests' own user when they
        # run as root) run jobs only when named there
        self.users = {self.user}
        self.credentials = base / "aws-credentials"
        self.credentials.write_text(
            "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        )
        self.credentials.chmod(0o600)
        self.upstream.write(
            "cronsync.toml",
            f'[cloudwatch]\nlog_group = "{GROUP}"\nmetrics_namespace = "{NAMESPACE}"\n',
        )
        # the file backend's file (for tests whose secrets are not about AWS)
        secrets = self.root / "etc/cronsync/secrets.d" / f"{self.user}.toml"
        secrets.parent.mkdir(parents=True, exist_ok=True)
        secrets.write_text('"local/unused" = "nothing"\n')
        secrets.chmod(0o600)

    def job(self, name: str, body: str, user: Optional[str] = None) -> None:
        self.users.add(user or self.user)
        self.upstream.write(
            f"jobs/{name}.toml",
            f'description = "test job {name}"\nowner = "tests@example.com"\n'
            f'user = "{user or self.user}"\nschedule = "* * * * *"\n{body}\n',
        )

    def script(self, name: str, text: str) -> None:
        self.upstream.write(f"scripts/{name}", text, mode=0o755)

    def sync(
        self,
        endpoint: str,
        *,
        secrets: str = "aws",
        logs: bool = True,
        metrics: bool = False,
    ) -> None:
        extra = (
            '[run]\nkill_grace = "1s"\n'
            f'[secrets]\nbackend = "{secrets}"\n'
            f"[logs]\ncloudwatch = {json.dumps(logs)}\n"
            f"[metrics]\ncloudwatch = {json.dumps(metrics)}\n"
            f'[aws]\nregion = "{REGION}"\nendpoint_url = "{endpoint}"\n'
            f"credentials_file = {json.dumps(str(self.credentials))}\n"
        )
        self.upstream.commit_and_push("jobs")
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            agent_toml(str(self.upstream.bare), self.root, extra).replace(
                'allowed = ["batch"]', f"allowed = {json.dumps(sorted(self.users))}"
            )
        )
        outcome = run_sync(load_config(str(self.config_path)))
        assert outcome.record.result == "installed", outcome.record

    def start_broker(self) -> BrokerDaemon:
        """Serve the broker of the current agent config in this process (the one
        running before is stopped first)."""
        self.stop_broker()
        self.broker = BrokerDaemon(
            load_config(str(self.config_path)), log=self.broker_log, poll_interval=0.2
        )
        self.broker.start()
        return self.broker

    def stop_broker(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    @property
    def socket(self) -> Path:
        return self.root / "run/cronsync/broker.sock"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment cron would give: nothing of AWS (the test's own removed)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(extra)
        return env

    def run(self, job: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cronsync.cli.shim", "--root", str(self.root), job],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
        )

    def flush(self) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "cronsync.cli.main", "flush", "--json", "--seconds", "30"],
            capture_output=True,
            text=True,
            env=self.env(CRONSYNC_CONFIG=str(self.config_path)),
            cwd=self.base,
            timeout=60,
        )
        assert done.stdout.strip(), done
        return done, json.loads(done.stdout)

    @property
    def runs_dir(self) -> Path:
        return self.root / "var/lib/cronsync/runs"

    def last(self, job: str) -> dict[str, Any]:
        record: dict[str, Any] = read_last(self.runs_dir, job)["last_run"]
        return record

    def log_bytes(self, record: dict[str, Any]) -> bytes:
        return Path(record["log"]).read_bytes()

    def expected_events(self, record: dict[str, Any]) -> list[str]:
        """The messages the run's local log should give in CloudWatch, in order."""
        return [
            PREFIXES[line.stream] + line.text.decode("utf-8", "replace")
            for line in read_lines(self.log_bytes(record))
        ]

    def pending_file(self, job: str, run_id: str) -> Path:
        return self.runs_dir / job / "pending" / f"{run_id}.json"


@contextlib.contextmanager
def aws_box(base: Path) -> Iterator[AwsShimSandbox]:
    """An :class:`AwsShimSandbox` whose broker is stopped at the end."""
    box = AwsShimSandbox(base)
    try:
        yield box
    finally:
        box.stop_broker()
