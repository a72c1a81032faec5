"""The broker's side of one-host jobs: take a run's occurrence, keep it while the run
lasts (``concurrency = "forbid"``), let it go at the end.

The occurrence is computed here, from the installed job's schedule and zone and the
broker's clock (:mod:`cronsync.core.occurrence`), never taken from the caller: a job's
user cannot claim an occurrence that has not come. A lease won under ``forbid`` is
renewed every ``lease_ttl / 3`` seconds by one thread while the run's shim (the peer
that asked) lives, and released by the same thread when the shim says the run ended
(the shim does not wait for that write). When the shim is gone, or the host is,
renewals stop and the lease expires ``lease_ttl`` seconds later, so the next
occurrence proceeds elsewhere.

The leases held are also kept in ``fleet-leases.json`` in the state folder (root's,
0600, rewritten atomically at each change): a broker that starts again (an upgrade, a
restart of the agent) takes over the renewal of those whose shim still runs (the same
pid and process start time), so ``forbid`` holds across the fleet through a restart.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

from cronsync.broker.fleetlease import LeaseStore, LeaseUnavailable
from cronsync.broker.journal import Log
from cronsync.core import brokerwire
from cronsync.core.errors import ScheduleError
from cronsync.core.occurrence import latest_occurrence, occurrence_seconds
from cronsync.core.schedule import parse_schedule
from cronsync.files.atomic import atomic_write
from cronsync.host.awsclients import Timeouts, make_client
from cronsync.host.config import AgentConfig
from cronsync.run.jobspec import JobSpec
from cronsync.run.procs import process_start

# A lease must be answered while the job waits to start: two short attempts at most.
LEASE_TIMEOUTS = Timeouts(connect=2.0, read=3.0, max_attempts=2)

RunKey = tuple[str, str]  # (job, run id)
HELD_FILE = "fleet-leases.json"


@dataclass(frozen=True)
class Held:
    """A lease this host holds for a running job: its token, the asking shim's pid and
    when that process started (clock ticks after boot: a reused pid is another)."""

    token: int
    pid: int
    started: int = 0


def _alive(lease: Held) -> bool:
    """Whether the shim that asked for ``lease`` still runs."""
    started = process_start(lease.pid)
    return started != 0 and lease.started in (0, started)


def _describe(exc: Exception) -> str:
    """One line about a failed lease call (never a secret: AWS errors name no values)."""
    if isinstance(exc, LeaseUnavailable):
        return exc.message
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class FleetLeases:
    """Answers ``lease`` and ``release`` (see :mod:`cronsync.core.brokerwire`).

    Args:
        config: the host's agent config (``[fleet]``, ``[host] name``, ``[aws]``).
        log: where lost and failed leases are said.
        clock: the time source (tests inject one).
        client: a ``dynamodb`` client (None: made on first use from ``[aws]``).
    """

    def __init__(
        self,
        config: AgentConfig,
        log: Log,
        clock: Callable[[], float] = time.time,
        client: Any = None,
    ) -> None:
        self.config = config
        self.log = log
        self.clock = clock
        self._client = client
        self._store: Optional[LeaseStore] = None
        self._held: dict[RunKey, Held] = {}
        self._releasing: list[tuple[str, str, int]] = []  # job, run id, token
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._renewer: Optional[threading.Thread] = None
        self._stopping = False
        self._adopt()

    def reconfigure(self, config: AgentConfig) -> None:
        """Take the agent's reloaded config: a new table, host name, lease time or AWS
        settings apply to the next call (the leases held are kept and renewed)."""
        with self._lock:
            old, self.config = self.config, config
            if (old.fleet, old.host.name, old.run.aws) != (
                config.fleet,
                config.host.name,
                config.run.aws,
            ):
                self._store = None

    def _held_path(self) -> str:
        return str(self.config.paths.state_dir / HELD_FILE)

    def _adopt(self) -> None:
        """Take over the leases a previous broker held for shims that still run."""
        try:
            with open(self._held_path(), encoding="utf-8") as handle:
                entries = json.load(handle)
            adopted = {
                (str(e["job"]), str(e["run"])): Held(
                    int(e["token"]), int(e["pid"]), int(e["started"])
                )
                for e in entries
            }
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self.log(f"leases of a previous broker not read ({_describe(exc)}); they expire")
            return
        for key, lease in adopted.items():
            if _alive(lease):
                self._hold(key, lease, save=False)
                self.log(f"took over the lease of run {key[1]} of {key[0]!r}")
        self._save()

    def _save(self) -> None:
        """Write the leases held (best effort: a failure is said, renewal goes on)."""
        with self._lock:
            entries = [
                {"job": job, "run": run, "token": h.token, "pid": h.pid, "started": h.started}
                for (job, run), h in sorted(self._held.items())
            ]
        try:
            data = (json.dumps(entries, indent=1) + "\n").encode()
            atomic_write(self._held_path(), data, mode=0o600, durable=False)
        except Exception as exc:
            self.log(f"leases held not saved ({_describe(exc)}): a restart would drop them")

    @property
    def held(self) -> int:
        """How many leases this broker keeps renewing now."""
        with self._lock:
            return len(self._held)

    def claim(self, job: JobSpec, run_id: str, pid: int) -> Mapping[str, Any]:
        """Take the current occurrence of ``job`` for run ``run_id`` (asked by ``pid``);
        return the reply. Never raises."""
        table = self.config.fleet.table
        if not table:
            reason = f"this host has no [fleet] table in {self.config.path}"
            return brokerwire.failure(brokerwire.UNAVAILABLE, reason)
        if job.raw.get("run_on") != "one-host":
            return brokerwire.failure(brokerwire.REFUSED, f"job {job.name!r} runs on every host")
        try:
            occurrence = _occurrence(job, self.clock())
        except (ScheduleError, ValueError, KeyError) as exc:
            return brokerwire.failure(brokerwire.BAD_REQUEST, f"job {job.name!r}: {exc}")
        if occurrence is None:
            return brokerwire.failure(
                brokerwire.BAD_REQUEST, f"job {job.name!r} has no scheduled occurrence"
            )
        forbid = str(job.raw.get("concurrency") or "forbid") == "forbid"
        try:
            claim = self._lease_store(table).claim(
                job.name, occurrence_seconds(occurrence), run_id, forbid
            )
        except Exception as exc:
            message = _describe(exc)
            self.log(f"lease of job {job.name!r} for run {run_id}: {message}")
            return brokerwire.failure(brokerwire.UNAVAILABLE, message)
        if claim.won and forbid:
            self._hold((job.name, run_id), Held(claim.token, pid, process_start(pid)))
        reply = {
            "won": claim.won,
            "token": claim.token,
            "holder": claim.holder,
            "occurrence": occurrence.isoformat(),
        }
        if not claim.won:
            reply["why"] = claim.why
        return brokerwire.success(**reply)

    def release(self, job: JobSpec, run_id: str) -> Mapping[str, Any]:
        """Let go of the lease of run ``run_id`` of ``job`` (if this broker holds it):
        the renewal thread writes it, so the shim does not wait for DynamoDB at the end
        of its run. Returns the reply (``releasing``: whether it was held). Never raises."""
        with self._lock:
            held = self._held.pop((job.name, run_id), None)
            if held is not None:
                self._releasing.append((job.name, run_id, held.token))
        if held is not None:
            self._save()
        self._wake.set()
        return brokerwire.success(releasing=held is not None)

    def release_pending(self) -> None:
        """Write the releases asked for since the last call. Never raises."""
        with self._lock:
            pending, self._releasing = self._releasing, []
        for job, run_id, token in pending:
            try:
                self._lease_store(str(self.config.fleet.table)).release(job, token)
            except Exception as exc:
                self.log(f"release of job {job!r} (run {run_id}): {_describe(exc)}; it expires")

    def renew_all(self) -> None:
        """Renew every lease held for a live shim; drop those whose shim is gone (they
        expire) or that another host took meanwhile. Never raises."""
        table = self.config.fleet.table
        with self._lock:
            held = dict(self._held)
        for (job, run_id), lease in held.items():
            if not _alive(lease):
                self._drop((job, run_id), f"run {run_id} of {job!r} is gone: its lease expires")
                continue
            try:
                if not self._lease_store(str(table)).renew(job, lease.token):
                    self._drop((job, run_id), f"run {run_id} of {job!r} lost its lease")
            except Exception as exc:
                self.log(f"renewal of job {job!r} (run {run_id}): {_describe(exc)}")

    def stop(self) -> None:
        """Write the releases asked for, stop renewing (the leases still held expire
        after ``lease_ttl``)."""
        self._stopping = True
        self._wake.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
        self.release_pending()

    def _hold(self, key: RunKey, lease: Held, save: bool = True) -> None:
        with self._lock:
            self._held[key] = lease
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew_loop, name="cronsync-leases", daemon=True
                )
                self._renewer.start()
        if save:
            self._save()

    def _drop(self, key: RunKey, why: str) -> None:
        with self._lock:
            self._held.pop(key, None)
        self._save()
        self.log(why)

    def _renew_loop(self) -> None:
        """Releases as they are asked for; renewals every ``lease_ttl / 3`` seconds."""
        due = time.monotonic() + self.config.fleet.lease_ttl / 3
        while not self._stopping:
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            self.release_pending()
            if time.monotonic() >= due and not self._stopping:
                self.renew_all()
                due = time.monotonic() + self.config.fleet.lease_ttl / 3  # as reloaded

    def _lease_store(self, table: str) -> LeaseStore:
        with self._lock:
            if self._store is None:
                client = self._client or make_client(
                    "dynamodb", self.config.run.aws, timeouts=LEASE_TIMEOUTS
                )
                self._store = LeaseStore(
                    client, table, self.config.host.name, self.config.fleet.lease_ttl, self.clock
                )
            return self._store


def _occurrence(job: JobSpec, now: float) -> Optional[datetime]:
    """The occurrence of ``job`` a start at ``now`` (epoch seconds) belongs to."""
    schedule = parse_schedule(str(job.raw["schedule"]))
    zone = ZoneInfo(str(job.raw["timezone"]))
    return latest_occurrence(schedule, datetime.fromtimestamp(now, timezone.utc), zone)
