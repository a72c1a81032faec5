"""``cronsync broker``: the broker alone, for hosts that run the timer units instead of
the agent (``cronsync agent`` serves the same socket itself).

Socket-activated by ``cronsync-broker.socket``, it exits once it has been idle (no
request, no live run) for ``broker.idle_exit``; systemd starts it again on the next
connection. Started by hand, it makes ``broker.socket`` itself and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any, Callable, Optional

IDLE_CHECK = 1.0


def cmd_broker(args: argparse.Namespace) -> int:
    """``cronsync broker``: serve until SIGTERM/SIGINT, or idle when socket-activated."""
    from cronsync.broker.daemon import BrokerDaemon
    from cronsync.host.config import load_config

    config = load_config(args.config)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Optional[FrameType]) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon = BrokerDaemon(config)
    daemon.start()
    idle_exit = args.idle_exit if args.idle_exit is not None else config.broker.idle_exit
    try:
        while not stop.wait(IDLE_CHECK):
            if daemon.activated and idle_exit and daemon.idle_for() >= idle_exit:
                daemon.log(f"idle for {idle_exit}s: exiting (systemd starts it on demand)")
                break
    finally:
        daemon.stop()
    return 0


def _seconds(text: str) -> int:
    from cronsync.core.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_broker_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``broker`` to the ``cronsync`` parser."""
    broker = verbs.add_parser(
        "broker",
        help="serve job secrets and ship job output (what cronsync-broker.service starts)",
        description="Listen on broker.socket (or the socket systemd passes) and hand each "
        "job user its own jobs' AWS secrets (the caller's uid, from the kernel, must be "
        "the job's user in the installed release; anything else is refused and logged), "
        "forward job output from the local spool to CloudWatch Logs and publish job "
        "metrics. Runs as root. `cronsync agent` serves the same socket: run one or the "
        "other. Socket-activated, it exits after broker.idle_exit without requests.",
    )
    add_config(broker)
    broker.add_argument(
        "--idle-exit",
        metavar="DURATION",
        type=_seconds,
        help="when socket-activated, exit after this long idle (default: broker.idle_exit; "
        "0 never)",
    )
    broker.set_defaults(func=cmd_broker)
