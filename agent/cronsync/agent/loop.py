"""``cronsync agent``: the long-running service on a batch host.

A sync every ``interval`` (plus a random splay; doubling while the remote fails, back
to normal on the first success); a file watch that catches an edit of the installed
files within a second and a periodic full comparison of the release; SIGHUP or
``cronsync sync --now`` syncs at once; SIGTERM stops the programs a sync runs (git:
SIGTERM, SIGKILL after a grace), so the current step ends at once (a sync interrupted so
is recorded as failed, the last-known-good installed), then exits.
Every cycle publishes a heartbeat and the sync, drift and staleness metrics, writes the
host's status item to the fleet table (``[fleet] table``: ``cronsync fleet``), and
delivers spooled job output to CloudWatch in the background. It also serves the broker
(:mod:`cronsync.broker`): job users' secrets and live shipping of their output. One
failed cycle never stops the agent.

Requests (signals, the control socket, the file watch) only set a flag and write a
byte to a self-pipe; all the work happens in the main thread, one step at a time. The
signal handlers are installed before anything heavy is imported or read (a SIGTERM
during start-up is a clean stop, not a kill). Metrics are computed in the main thread
(cheaply, never raising) and sent by a background thread: a hanging CloudWatch never
delays a drift check, a sync or a stop.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Optional

# Only what the signal handlers need is imported here: the rest (config, git, sync) is
# imported after they are installed.
from cronsync.core.errors import CronsyncError, LockBusyError
from cronsync.host.logline import ERROR, INFO, WARNING, stderr_log, stdout_log

if TYPE_CHECKING:
    from cronsync.agent.fleetstatus import FleetStatus
    from cronsync.agent.metrics import AgentMetrics
    from cronsync.broker.daemon import BrokerDaemon
    from cronsync.core.state import SyncRecord
    from cronsync.host.config import AgentConfig
    from cronsync.host.sync import SyncOutcome

SYNC, DRIFT, DRIFT_FULL, STOP = "sync", "drift", "drift-full", "stop"
DRIFT_SETTLE = 0.2  # seconds to let a burst of file events settle before looking
SYNC_NOW_TIMEOUT = 600.0
HEARTBEAT_SECONDS = 60.0  # on its own timer: a backing-off agent is alive, not silent


# The agent's log, on stdout: one write per line (lines from the background threads
# never interleave with the main thread's), with its level for the journal
# (host/logline.py).
_log = stdout_log("cronsync agent")


class Agent:
    """The agent's state between steps.

    Args:
        config_path: the agent config (re-read every cycle, so edits apply).
        monotonic: a clock for pacing (tests may pass their own).
        handle_signals: install the signal handlers first thing, before the config is
            read (``cronsync agent`` does; ``run`` installs them in any case).
    """

    def __init__(
        self,
        config_path: Optional[str],
        monotonic: Callable[[], float] = time.monotonic,
        handle_signals: bool = False,
    ) -> None:
        self.config_path = config_path
        self.monotonic = monotonic
        self._stop_children: Optional[Callable[[], None]] = None  # set by run()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._requests: set[str] = set()
        if handle_signals:
            self.install_signal_handlers()
        from cronsync.agent.fleetstatus import FleetStatus
        from cronsync.agent.metrics import AgentMetrics
        from cronsync.host.config import load_config

        self.config: AgentConfig = load_config(config_path)
        self.failures = 0
        self.next_sync = monotonic()
        self.next_full_check = monotonic() + self.config.agent.full_check
        self.next_heartbeat = monotonic()
        self._lock = threading.Lock()
        self._waiters: list[tuple[threading.Event, list[dict[str, Any]]]] = []
        self.metrics: AgentMetrics = AgentMetrics(_log)
        self.fleet: FleetStatus = FleetStatus(_log, self.metrics.installed_jobs)
        self._flusher: Optional[threading.Thread] = None
        self.broker: Optional[BrokerDaemon] = None
        self.watcher: Any = None
        self._drift_seen: set[str] = set()
        self._force_next = False

    # -- requests from other threads and signal handlers ------------------------------

    def request(self, what: str) -> None:
        """Ask the main loop for a step (safe from any thread and from signal handlers)."""
        self._requests.add(what)  # set.add is atomic under the GIL
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"!")

    def _on_signal(self, signum: int, _frame: Optional[FrameType]) -> None:
        if signum == signal.SIGHUP:
            self.request(SYNC)
            return
        self.request(STOP)
        if self._stop_children is not None:  # the running sync's git ends now
            self._stop_children()

    def install_signal_handlers(self) -> None:
        """SIGHUP syncs, SIGTERM and SIGINT stop (the current step's programs at once,
        then the step ends)."""
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def sync_and_wait(self, word: str) -> dict[str, Any]:
        """Control-socket handler: request a sync and wait for its record."""
        if word != "sync":
            return {"error": f"unknown request {word!r}"}
        done, answer = threading.Event(), []  # type: ignore[var-annotated]
        with self._lock:
            self._waiters.append((done, answer))
        self.request(SYNC)
        if not done.wait(SYNC_NOW_TIMEOUT):
            return {"error": "the sync did not finish in time"}
        return answer[0] if answer else {"error": "the agent stopped"}

    def _take(self) -> set[str]:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        taken = set(self._requests)
        self._requests.difference_update(taken)
        return taken

    # -- the steps ----------------------------------------------------------------------

    def _reload(self) -> None:
        from cronsync.host.config import load_config

        try:
            self.config = load_config(self.config_path)
        except CronsyncError as exc:
            _log(f"keeping the previous config: {exc.message}", WARNING)
            return
        if self.broker is not None:
            self.broker.reconfigure(self.config)

    def sync(self) -> Optional[SyncOutcome]:
        """One sync cycle; schedules the next one and answers the requests made before
        it started (a request made during it waits for the next one, which it asked for:
        this cycle may have read the remote before the push the request is about)."""
        from cronsync.agent.agentfile import now_iso
        from cronsync.core.health import next_delay
        from cronsync.core.state import FAILED, SyncRecord
        from cronsync.host.sync import run_sync

        with self._lock:
            waiters, self._waiters = self._waiters, []
        self._reload()
        outcome: Optional[SyncOutcome] = None
        force, self._force_next = self._force_next, False
        try:
            outcome = run_sync(self.config, force=force)
            record = outcome.record
        except LockBusyError as exc:
            _log(f"sync skipped: {exc.message}")
            record = None
        except CronsyncError as exc:
            _log(f"sync failed: {exc.message}", ERROR)
            record = SyncRecord(now_iso(), now_iso(), FAILED, None, exc.message)
        except Exception as exc:
            _log(f"sync failed: internal error: {type(exc).__name__}: {exc}", ERROR)
            record = SyncRecord(now_iso(), now_iso(), FAILED, None, f"internal error: {exc}")
        if record is not None:
            self._after_sync(record)
        self._answer(waiters, record, outcome.exit_code if outcome else (3 if record else 75))
        agent = self.config.agent
        self.next_sync = self.monotonic() + next_delay(
            agent.interval, agent.splay, self.failures, agent.max_backoff
        )
        if self.watcher is not None:
            self.watcher.refresh()
        return outcome

    def _after_sync(self, record: SyncRecord) -> None:
        from cronsync.core.state import FAILED, REFUSED

        self.failures = self.failures + 1 if record.result == FAILED else 0
        attention = "" if record.ok else " (attention)"
        level = INFO if record.ok else ERROR if record.result == FAILED else WARNING
        _log(f"sync {record.result}{attention}: {record.message}", level)
        for error in record.errors[:20]:
            _log(f"  {error.get('file')}:{error.get('line') or ''} {error.get('message')}", level)
        failed = record.result in (FAILED, REFUSED)
        self._guarded("metrics", lambda: self.metrics.cycle(self.config, record.ok, failed))
        self._guarded("fleet status", lambda: self.fleet.cycle(self.config, self.failures))
        self._guarded("log delivery", self._flush_in_background)

    @staticmethod
    def _guarded(what: str, step: Callable[[], None]) -> None:
        """Run a step a cycle can do without (metrics, log delivery): it never stops the
        agent."""
        try:
            step()
        except Exception as exc:
            _log(f"{what} skipped: internal error: {type(exc).__name__}: {exc}", ERROR)

    def _answer(
        self,
        waiters: list[tuple[threading.Event, list[dict[str, Any]]]],
        record: Optional[SyncRecord],
        exit_code: int = 75,
    ) -> None:
        from dataclasses import asdict

        answer = (
            {"record": asdict(record), "exit_code": exit_code}
            if record
            else {"error": "no sync was done (another sync was running, or the agent stopped)"}
        )
        for done, slot in waiters:
            slot.append(answer)
            done.set()

    def drift_check(self, full: bool = False) -> None:
        """Compare the host with the last install (after a file event, or periodically)."""
        from cronsync.host.sync import check_drift

        try:
            result = check_drift(self.config, full=full)
        except LockBusyError:
            self.request(DRIFT_FULL if full else DRIFT)  # a manual sync holds the lock
            time.sleep(0.5)
            return
        except CronsyncError as exc:
            _log(f"drift check failed: {exc.message}", ERROR)
            return
        messages = {finding.message for finding in result.findings}
        for message in sorted(messages - self._drift_seen):  # each finding once
            _log(f"drift: {message}", WARNING)
        self._drift_seen = messages
        for note in result.notes:  # what was done about drift (reverted, rebuilding)
            _log(note, WARNING)
        if result.rebuild:  # a damaged release: only a forced sync rebuilds it from git
            self._force_next = True
            self.request(SYNC)
        if result.findings:
            findings = len(result.findings)
            self._guarded("metrics", lambda: self.metrics.drift(self.config, findings))

    def heartbeat(self) -> None:
        """Publish the heartbeat metric (the AgentSilent alarm's input), in the
        background: whatever CloudWatch does, this returns at once."""
        self._guarded("metrics", lambda: self.metrics.heartbeat(self.config))

    def _flush_in_background(self) -> None:
        """Deliver spooled job output, when no broker of ours does (it flushes itself:
        at its start and every few minutes, besides shipping runs live)."""
        if not self.config.run.logs_cloudwatch or self.broker is not None:
            return
        if self._flusher is not None and self._flusher.is_alive():
            return
        settings = (self.metrics.installed_jobs(self.config) or {}).get("settings") or {}
        log_group = settings.get("log_group") if isinstance(settings, dict) else None
        if not log_group:
            return  # nothing installed yet: no run could have spooled output
        from cronsync.cloud.forward import flush_all

        deadline = time.monotonic() + max(10.0, self.config.agent.interval / 2)
        runs_dir, aws, host = self.config.paths.runs_dir, self.config.run.aws, self.config.host.name

        def flush() -> None:
            try:
                flush_all(runs_dir, aws, deadline, host=host, log_group=str(log_group))
            except Exception as exc:  # in a thread: say it, never a traceback
                _log(f"log delivery failed: {type(exc).__name__}: {exc}", WARNING)

        self._flusher = threading.Thread(target=flush, name="cronsync-flush", daemon=True)
        self._flusher.start()

    # -- the loop -------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], max(0.0, seconds))

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit status (0)."""
        self.install_signal_handlers()
        from cronsync.agent.agentfile import AGENT_FILE, write_agent_file
        from cronsync.agent.control import SOCKET_NAME, ControlServer
        from cronsync.repo.process import stop_children

        self._stop_children = stop_children

        paths = self.config.paths
        write_agent_file(paths.state_dir / AGENT_FILE, self.config)
        server = ControlServer(paths.state_dir / SOCKET_NAME, self.sync_and_wait)
        server.start()
        self.broker = broker = self._start_broker()
        self._start_watcher()
        _log(f"started (pid {os.getpid()}, every {self.config.agent.interval}s)")
        try:
            self._loop()
        finally:
            server.stop()
            if broker is not None:
                broker.stop()
            if self.watcher is not None:
                self.watcher.stop()
            with self._lock:
                waiters, self._waiters = self._waiters, []
            self._answer(waiters, None)
            self.metrics.stop()  # at most ~2 s: its thread is a daemon
            self.fleet.stop()  # the same
            _log("stopped")
        return 0

    def _start_broker(self) -> Optional[BrokerDaemon]:
        """Serve the broker (job secrets, shipping job output) beside the loop; without
        it the agent still syncs, and says why."""
        from cronsync.broker.daemon import BrokerDaemon

        def broker_log(message: str, level: int = INFO) -> None:
            _log(f"broker: {message}", level)

        broker = BrokerDaemon(self.config, log=broker_log)
        try:
            broker.start()
        except CronsyncError as exc:
            _log(f"broker not served: {exc.message}", ERROR)
            return None
        return broker

    def _start_watcher(self) -> None:
        from cronsync.agent.watch import DriftWatcher

        installed_cron = self.config.paths.cron_file
        self.watcher = DriftWatcher(
            self.config.paths,
            installed_cron,
            lambda full: self.request(DRIFT_FULL if full else DRIFT),
        )
        try:
            self.watcher.start()
        except Exception as exc:
            _log(f"file watching unavailable ({exc}); drift is found by periodic checks", WARNING)
            self.watcher = None

    def _loop(self) -> None:
        while True:
            requests = self._take()
            if STOP in requests:
                return
            now = self.monotonic()
            if SYNC in requests or now >= self.next_sync:
                self.sync()
                continue
            if DRIFT in requests or DRIFT_FULL in requests:
                time.sleep(DRIFT_SETTLE)
                full = self._take_drift_burst() or DRIFT_FULL in requests
                self.drift_check(full=full)
                continue
            if now >= self.next_full_check:
                self.drift_check(full=True)
                self.next_full_check = now + self.config.agent.full_check
                continue
            if now >= self.next_heartbeat:
                self.heartbeat()
                self.next_heartbeat = now + HEARTBEAT_SECONDS
                continue
            self._wait(min(self.next_sync, self.next_full_check, self.next_heartbeat) - now)

    def _take_drift_burst(self) -> bool:
        """Swallow the drift requests of one burst of events (one check covers them);
        return whether one of them asked for a full comparison (a release changed)."""
        self._requests.discard(DRIFT)
        if DRIFT_FULL in self._requests:
            self._requests.discard(DRIFT_FULL)
            return True
        return False


def main(config_path: Optional[str]) -> int:
    """Entry of ``cronsync agent``."""
    try:
        return Agent(config_path, handle_signals=True).run()
    except CronsyncError as exc:
        stderr_log("cronsync agent")(exc.message, ERROR)
        return exc.exit_code
