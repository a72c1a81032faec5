"""The shim's side of the broker: ask for the job's secrets, say a run started or ended.

One request per connection over the broker's Unix socket (see
:mod:`cronsync.core.brokerwire`). The broker knows who asks from the kernel, so the
request carries only the job's name (and the run's id). On the shim's start-up path:
``socket`` is imported only when a job talks to the broker; no typing at import time.
"""

from __future__ import annotations

import os
import time

from cronsync.core import brokerwire
from cronsync.core.errors import CronsyncError
from cronsync.files.paths import path_str
from cronsync.files.sockaddr import peer_credentials, unix_address

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from typing import Any

DEFAULT_SOCKET = "run/cronsync/broker.sock"  # below paths.root
SECRETS_TIMEOUT = 60.0  # the broker's AWS calls: timeouts and retries, all of them
NOTICE_TIMEOUT = 5.0


class BrokerUnreachable(CronsyncError):
    """Nothing answered on the broker's socket, or the answer was not a reply."""


def socket_path(settings: Mapping[str, Any], root: str) -> str:
    """Return the broker's socket from a release's settings (``broker.socket``), or
    the default below ``root`` for a release compiled before there was one."""
    broker = settings.get("broker")
    configured = broker.get("socket") if isinstance(broker, dict) else None
    return (
        configured if isinstance(configured, str) and configured else path_str(root, DEFAULT_SOCKET)
    )


def ask(
    path: str, message: Mapping[str, Any], timeout: float, patience: float = 10.0
) -> dict[str, Any]:
    """Send ``message`` to the broker at ``path``; return its reply.

    A broker that is busy (it says so, or its backlog is full) or restarting (the
    connection is refused) is asked again, with growing pauses, for ``patience``
    seconds; a missing socket for at most 2 of them. The socket must belong to root or
    to this user (a broker in a sandbox): anything else is not a broker.

    Raises:
        BrokerUnreachable: no broker there, it did not answer within ``timeout``
            seconds, or it answered something that is not a reply.
    """
    deadline = time.monotonic() + timeout
    give_up = time.monotonic() + min(patience, timeout)
    missing_until = time.monotonic() + min(2.0, patience, timeout)
    pause = 0.05
    while True:
        try:
            answer = _ask_once(path, message, deadline, timeout)
        except _Transient as exc:
            limit = missing_until if exc.missing else give_up
            if time.monotonic() + pause > limit:
                raise BrokerUnreachable(exc.message) from exc
        else:
            if answer.get("kind") != brokerwire.BUSY or time.monotonic() + pause > give_up:
                return answer
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


class _Transient(BrokerUnreachable):
    """A failure worth another try: the broker is busy, restarting, or its socket is
    missing for a moment (``missing``)."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _ask_once(
    path: str, message: Mapping[str, Any], deadline: float, timeout: float
) -> dict[str, Any]:
    """One connection: send ``message``, read the reply (see :func:`ask`)."""
    import socket

    data = brokerwire.encode(message)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(max(0.001, deadline - time.monotonic()))
            with unix_address(path) as where:
                conn.connect(where.address)
            _check_owner(conn, path)
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
            reply = _read_all(conn, deadline)
    except FileNotFoundError as exc:
        raise _Transient(
            f"no broker at {path} (is the agent or cronsync-broker.socket running?)", True
        ) from exc
    except ConnectionRefusedError as exc:
        raise _Transient(f"the broker at {path} is not running (connection refused)") from exc
    except BlockingIOError as exc:
        raise _Transient(f"the broker at {path} is too busy to take the connection") from exc
    except (ConnectionResetError, BrokenPipeError) as exc:  # a busy broker closed on us
        raise _Transient(f"the broker at {path} closed the connection (busy)") from exc
    except TimeoutError as exc:
        raise BrokerUnreachable(f"the broker at {path} did not answer within {timeout:g}s") from exc
    except OSError as exc:
        raise BrokerUnreachable(
            f"cannot reach the broker at {path}: {exc.strerror or exc}"
        ) from exc
    try:
        answer = brokerwire.decode(reply)
    except brokerwire.WireError as exc:
        raise BrokerUnreachable(f"the broker at {path} gave no valid reply ({exc})") from exc
    if not isinstance(answer.get("ok"), bool):
        raise BrokerUnreachable(f"the broker at {path} gave no valid reply")
    return answer


def _check_owner(conn: Any, path: str) -> None:
    """Make sure root (or this very user: a sandbox) is on the other end.

    Raises:
        BrokerUnreachable: another user answers there: not the broker.
    """
    uid = peer_credentials(conn)[1]
    if uid not in (0, os.geteuid()):
        raise BrokerUnreachable(f"{path} is served by uid {uid}, not root: not the broker")


def _read_all(conn: Any, deadline: float) -> bytes:
    """Read the reply until the broker closes, at most MAX_MESSAGE bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        conn.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > brokerwire.MAX_MESSAGE:
            raise OSError("reply over the size limit")
        chunks.append(chunk)


def fetch_secrets(path: str, job: str, expected: Collection[str]) -> dict[str, str]:
    """Return the job's secrets (env variable -> value) from the broker.

    Args:
        path: the broker's socket.
        job: the job's name.
        expected: the environment variables the job declares: the reply must hold
            exactly those (nothing else reaches the job's environment).

    Raises:
        BrokerUnreachable: see :func:`ask`; or a reply that is not exactly the job's.
        CronsyncError: the broker refused (with its reason) or could not fetch them
            (with each reference and why, never a value).
    """
    answer = ask(path, brokerwire.request(brokerwire.SECRETS, job), SECRETS_TIMEOUT)
    if not answer["ok"]:
        kind, error = answer.get("kind"), str(answer.get("error") or "no reason given")
        if kind == brokerwire.REFUSED:
            raise CronsyncError(f"the broker refused the job's secrets: {error}")
        if kind == brokerwire.BUSY:
            raise BrokerUnreachable(f"the broker at {path} stayed too busy to answer")
        raise CronsyncError(error)  # each reference and why, as the broker says
    values = answer.get("values")
    if not isinstance(values, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in values.items()
    ):
        raise BrokerUnreachable(f"the broker at {path} gave no valid reply (values)")
    if set(values) != set(expected):
        raise BrokerUnreachable(
            f"the broker at {path} answered other variables than the job declares"
        )
    return values


def notify(path: str, op: str, job: str, run_id: str) -> str:
    """Tell the broker run ``run_id`` of ``job`` started or ended (``op``).

    Returns:
        "" when the broker took it and ships the run's output; otherwise why not (one
        line, for the run record: the spool keeps everything for a later delivery).
    """
    try:
        answer = ask(path, brokerwire.request(op, job, run_id), NOTICE_TIMEOUT, patience=3.0)
    except BrokerUnreachable as exc:
        return exc.message
    if not answer["ok"]:
        return f"the broker refused: {answer.get('error')}"
    if answer.get("shipping"):
        return ""
    return str(answer.get("reason") or "the broker does not ship this run's output")
