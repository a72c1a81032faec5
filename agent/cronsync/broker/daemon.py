"""The broker as one running thing: its socket, its service and its outbox together.

``cronsync agent`` starts one beside its loop; ``cronsync broker`` runs one alone
(socket-activated by systemd, exiting once idle, or on a socket it makes itself).
"""

from __future__ import annotations

import threading
import time
from typing import Optional

from cronsync.broker.access import InstalledJobs
from cronsync.broker.journal import Log, log_to_stderr, sanitized
from cronsync.broker.listener import BrokerListener, activated_socket, bind_socket
from cronsync.broker.outbox import Outbox
from cronsync.broker.service import Broker
from cronsync.host.config import AgentConfig
from cronsync.host.logline import WARNING

WARM_SERVICES = ("secretsmanager", "ssm")


class BrokerDaemon:
    """The broker's socket, service and outbox.

    Args:
        config: the host's agent config.
        log: where the broker logs (refusals, delivery problems).
        poll_interval: seconds between looks at a live run's log.
    """

    def __init__(
        self, config: AgentConfig, log: Log = log_to_stderr, poll_interval: float = 0.5
    ) -> None:
        self.config = config
        self.log = log = sanitized(log)
        jobs = InstalledJobs(config.paths.root)
        self.outbox = Outbox(config, jobs, log, poll_interval)
        self.broker = Broker(config, self.outbox, log, jobs)
        self.listener: Optional[BrokerListener] = None
        self.activated = False

    def reconfigure(self, config: AgentConfig) -> None:
        """Take the agent's reloaded config for the fleet's leases (its ``[fleet]``,
        ``[host] name`` and ``[aws]``); the socket, secrets and shipping keep the config
        they started with until the agent restarts."""
        self.broker.leases.reconfigure(config)

    def start(self) -> None:
        """Listen (on systemd's socket when activated, else on ``broker.socket``), then
        warm the AWS clients and deliver what is pending, in the background.

        Raises:
            BrokerSocketError: the socket cannot be made, or another broker answers.
        """
        sock = activated_socket()
        self.activated = sock is not None
        path = None
        if sock is None:
            path = str(self.config.broker.socket)
            sock = bind_socket(path)
        self.listener = BrokerListener(sock, self.broker.handle, path, self.log)
        self.listener.start()
        self.outbox.start()
        if self.config.run.secrets_backend == "aws":
            threading.Thread(
                target=self.broker.clients.warm, args=(WARM_SERVICES,), daemon=True
            ).start()
        threading.Thread(target=self._first_flush, name="cronsync-flush", daemon=True).start()
        where = "systemd's socket" if self.activated else path
        self.log(f"listening on {where}")

    def _first_flush(self) -> None:
        try:
            self.outbox.flush()
            self.outbox.publish_left_metrics(min_age=0.0)
        except Exception as exc:  # in a thread: say it, never a traceback
            self.log(f"delivery at start: {type(exc).__name__}: {exc}", WARNING)

    def idle_for(self) -> float:
        """Seconds since the last request, 0 while a request or a run is active."""
        listener = self.listener
        busy = self.outbox.active_runs or self.broker.leases.held  # held leases are renewed
        if listener is None or listener.busy or busy:
            return 0.0
        return time.monotonic() - listener.last_request

    def stop(self) -> None:
        """Stop listening, give live runs a few seconds to deliver, stop the outbox."""
        if self.listener is not None:
            self.listener.stop()
        self.broker.leases.stop()
        self.outbox.stop()
