"""``cronsync broker``: the broker alone, for hosts that run the timer units instead of
the agent (``cronsync agent`` serves the same socket itself); ``cronsync doctor``: check,
as each job user, that the broker and the host keep AWS from them.

Socket-activated by ``cronsync-broker.socket``, it exits once it has been idle (no
request, no live run) for ``broker.idle_exit``; systemd starts it again on the next
connection. Started by hand, it makes ``broker.socket`` itself and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from cronsync.broker.usercheck import Check

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


DOCTOR_DESCRIPTION = """\
Check, as each job user of the installed release, what cronsync's trust model
promises: job users hold no AWS credentials, the instance metadata service is closed
to them (systemd/cronsync-imds.nft), and the broker gives each of them only its own
jobs' secrets. Read-only.

As each job user (root forks a child that becomes the user, as cron does):
  credentials-unreadable  aws.credentials_file (when set) cannot be opened for reading
  metadata-unreachable    a TCP connect to aws.metadata_endpoint (default
                          169.254.169.254:80) fails within 2s
  broker-answers          the broker answers on broker.socket and sees the user's uid
  broker-refuses          the broker refuses the secrets of another user's job (of a
                          job not in the release when there is none); a value it
                          wrongly serves is counted, never shown
Once: the installed release, the broker's socket, the credentials file's owner and
mode, and that every job user exists. Jobs running as root are trusted, not checked.

Run it as root. Another user can only check itself (when it is a job user): the other
users' checks are reported as skipped, and skipped is not passed.

exit codes: 0 every check passed; 1 a check failed, or one was skipped (with
--allow-skipped: only when one failed); 2 usage or config error."""


def check_lines(checks: Sequence[Check]) -> list[str]:
    """One line per check: ``ok|FAIL|skip  USER  CHECK  detail`` (``-``: the host)."""
    user_width = max((len(check.user or "-") for check in checks), default=1)
    check_width = max((len(check.check) for check in checks), default=1)
    mark = {"ok": "ok", "fail": "FAIL", "skip": "skip"}
    return [
        f"{mark.get(check.status, check.status):<4}  {check.user or '-':<{user_width}}  "
        f"{check.check:<{check_width}}  {check.detail}"
        for check in checks
    ]


def summary_line(checks: Sequence[Check], allow_skipped: bool = False) -> str:
    """The last line of the text output: what passed, failed and was skipped."""
    failed = sum(check.status == "fail" for check in checks)
    skipped = sum(check.status == "skip" for check in checks)
    passed = len(checks) - failed - skipped
    counts = f"{passed} ok, {failed} failed, {skipped} skipped"
    if failed:
        return f"doctor: FAILED ({counts})"
    if skipped and not allow_skipped:
        return f"doctor: NOT PROVEN ({counts}: skipped is not passed; run it as root)"
    if skipped:
        return f"doctor: ok for what could be checked ({counts}; --allow-skipped)"
    return f"doctor: ok ({counts})"


def cmd_doctor(args: argparse.Namespace) -> int:
    """``cronsync doctor``: run the checks, print them (or the JSON document)."""
    from cronsync.broker.doctor import (
        doctor_document,
        doctor_ok,
        load_doctor_config,
        run_doctor,
    )
    from cronsync.cli.jsonout import emit_json

    config, credentials_problem = load_doctor_config(args.config)
    checks = run_doctor(config, credentials_problem)
    if args.json:
        emit_json(doctor_document(checks, args.allow_skipped))
    else:
        for line in check_lines(checks):
            print(line)
        print(summary_line(checks, args.allow_skipped))
    return 0 if doctor_ok(checks, args.allow_skipped) else 1


def add_doctor_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``doctor`` to the ``cronsync`` parser."""
    doctor = verbs.add_parser(
        "doctor",
        help="check, as each job user, that AWS is out of its reach but through the broker",
        description=DOCTOR_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config(doctor)
    doctor.add_argument(
        "--json",
        action="store_true",
        help='print {"format": "cronsync.doctor/1", "ok": BOOL, "checks": [{"user", "check", '
        '"status": "ok"|"fail"|"skip", "detail"}]} ("user" is "" for the checks made once)',
    )
    doctor.add_argument(
        "--allow-skipped",
        action="store_true",
        help="exit 0 when nothing failed, even if checks were skipped (not root)",
    )
    doctor.set_defaults(func=cmd_doctor)
