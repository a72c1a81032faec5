"""What the broker answers: a job's secrets to its own user, the start and end of its
runs (whose output and metrics :mod:`cronsync.broker.outbox` ships), and the fleet
leases of one-host jobs (:mod:`cronsync.broker.leases`).

Every request naming a job is checked first (:mod:`cronsync.broker.access`); a refusal
is logged with the job, the caller's uid and pid and the reason, never a value. Secrets
are fetched on every request through one warm client per AWS service (connection reuse,
botocore's retries); no value is cached, written or logged.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Optional

from cronsync import __version__
from cronsync.broker.access import InstalledJobs, Refusal, job_secrets
from cronsync.broker.journal import Log, log_to_stderr
from cronsync.broker.leases import FleetLeases
from cronsync.broker.listener import Peer
from cronsync.core import brokerwire
from cronsync.host.awsclients import AwsSettings, make_client
from cronsync.host.config import AgentConfig
from cronsync.host.logline import ERROR, WARNING
from cronsync.run.jobspec import JobSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cronsync.broker.outbox import Outbox


class WarmClients:
    """One boto3 client per AWS service, made on first use and kept.

    Args:
        aws: where and how to reach AWS.
    """

    def __init__(self, aws: AwsSettings) -> None:
        self.aws = aws
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        """Return the client of ``service`` (botocore's errors as they come)."""
        with self._lock:  # making a client is not thread-safe in boto3; using one is
            client = self._clients.get(service)
            if client is None:
                client = self._clients[service] = make_client(service, self.aws)
            return client

    def warm(self, services: tuple[str, ...]) -> None:
        """Make the clients of ``services`` now (best effort: a failure shows later)."""
        for service in services:
            try:
                self.get(service)
            except Exception:  # noqa: S112 - the first request will say what is wrong
                continue


class Broker:
    """Answers requests (see :mod:`cronsync.core.brokerwire`).

    Args:
        config: the host's agent config (paths, secrets backend, AWS).
        outbox: ships output and metrics of runs (None: started/ended are only checked).
        log: where refusals and errors are logged.
        jobs: the installed release (shared with the outbox), or None for a new view.
    """

    def __init__(
        self,
        config: AgentConfig,
        outbox: Optional[Outbox] = None,
        log: Log = log_to_stderr,
        jobs: Optional[InstalledJobs] = None,
    ) -> None:
        self.config = config
        self.jobs = jobs or InstalledJobs(config.paths.root)
        self.clients = WarmClients(config.run.aws)
        self.outbox = outbox
        self.log = log
        self.leases = FleetLeases(config, log)

    def handle(self, message: Mapping[str, Any], peer: Peer) -> Mapping[str, Any]:
        """Return the reply to ``message`` from ``peer``. Never raises."""
        try:
            op, name, run = brokerwire.check_request(message)
        except brokerwire.WireError as exc:
            self.log(f"bad request from uid {peer.uid} (pid {peer.pid}): {exc}", WARNING)
            return brokerwire.failure(brokerwire.BAD_REQUEST, str(exc))
        if op == brokerwire.PING:
            return brokerwire.success(version=__version__, uid=peer.uid)
        allowed = self.jobs.authorise(peer.uid, name)
        if isinstance(allowed, Refusal):
            who = f"uid {peer.uid} (pid {peer.pid})"
            self.log(f"refused {op} of job {name!r} to {who}: {allowed.reason}", WARNING)
            return brokerwire.failure(brokerwire.REFUSED, allowed.reason)
        if op == brokerwire.SECRETS:
            return self._secrets(allowed, peer)
        if op == brokerwire.LEASE:
            return self.leases.claim(allowed, run, peer.pid)
        if op == brokerwire.RELEASE:
            return self.leases.release(allowed, run)
        if self.outbox is None:
            return brokerwire.success(shipping=False)
        if op == brokerwire.STARTED:
            return self.outbox.started(allowed, run, peer.uid)
        return self.outbox.ended(allowed, run, peer.uid)

    def _secrets(self, job: JobSpec, peer: Peer) -> Mapping[str, Any]:
        """Fetch the job's declared secrets (fail closed: any failure, no value)."""
        from cronsync.secrets.fetch import SecretsUnavailable, fetch_secrets

        refs = job_secrets(job)
        if not refs:
            return brokerwire.success(values={})
        backend = self.config.run.secrets_backend
        if backend != "aws":
            reason = f"this host's secrets backend is {backend!r}: the broker serves only 'aws'"
            return brokerwire.failure(brokerwire.UNAVAILABLE, reason)
        try:
            values = fetch_secrets(
                refs,
                "aws",
                file_template="",
                user=str(job.raw.get("user")),
                aws=self.config.run.aws,
                clients=self.clients.get,
            )
        except SecretsUnavailable as exc:
            self.log(
                f"secrets of job {job.name!r} for uid {peer.uid} unavailable: {exc.message}", ERROR
            )
            failures = [failure.as_dict() for failure in exc.failures]
            return brokerwire.failure(brokerwire.UNAVAILABLE, exc.message, failures=failures)
        except Exception as exc:
            self.log(f"secrets of job {job.name!r}: internal error: {type(exc).__name__}", ERROR)
            return brokerwire.failure(
                brokerwire.UNAVAILABLE, f"the broker failed: {type(exc).__name__}"
            )
        return brokerwire.success(values=values)
