"""The broker's wire format: one request and one reply per connection, each one JSON
object (ASCII, at most :data:`MAX_MESSAGE` bytes), ended by the sender shutting down its
side of the connection for writing.

Requests (``v`` is :data:`VERSION`)::

    {"v": 1, "op": "secrets", "job": "JOB"}            the job's declared secrets
    {"v": 1, "op": "started", "job": "JOB", "run": ID}  a run began: deliver its output
    {"v": 1, "op": "ended",   "job": "JOB", "run": ID}  it ended: deliver the rest, metrics
    {"v": 1, "op": "lease",   "job": "JOB", "run": ID}  a one-host job's run: take this
                                                         occurrence in the fleet table
    {"v": 1, "op": "release", "job": "JOB", "run": ID}  that run ended: let the job go
    {"v": 1, "op": "ping"}                               is the broker there (doctor)

Replies: ``{"ok": true, ...}`` (``values`` for secrets; ``won``, ``token``, ``holder``,
``occurrence`` and, when lost, ``why`` for a lease), or ``{"ok": false, "kind": K,
"error": "one line"}`` with K one of :data:`REFUSED` (the caller may not ask this),
:data:`UNAVAILABLE` (the secrets could not be fetched; ``failures`` lists each reference
and why, never a value), :data:`BAD_REQUEST`, or :data:`BUSY` (the broker answers too
many connections now, or too many of this uid: try again).

Pure: encoding and checking only; the sockets are the broker's and the shim's. On the
shim's start-up path: no typing or dataclasses at import time.
"""

from __future__ import annotations

from cronsync.core import fastjson

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

VERSION = 1
MAX_MESSAGE = 256 * 1024  # a job's secrets, all of them, fit many times over

SECRETS = "secrets"
STARTED = "started"
ENDED = "ended"
PING = "ping"
LEASE = "lease"
RELEASE = "release"
OPERATIONS = (SECRETS, STARTED, ENDED, PING, LEASE, RELEASE)
RUN_OPERATIONS = (STARTED, ENDED, LEASE, RELEASE)  # those naming a run

# A run whose end the broker did not hear of leaves ``runs/JOB/pending/RUN-ID.metrics``
# (empty): the broker publishes that run's metrics from its record later, then removes it.
METRICS_MARKER = ".metrics"

REFUSED = "refused"
UNAVAILABLE = "unavailable"
BAD_REQUEST = "bad-request"
BUSY = "busy"  # over the broker's limits now: the caller tries again shortly

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class WireError(ValueError):
    """A message that is not a valid request or reply (the text says what is wrong)."""


def is_plain_name(text: Any) -> bool:
    """Whether ``text`` can name a job or a run: 1-200 of ``[A-Za-z0-9._-]``, not
    ``.`` or ``..`` nor starting with ``-`` (it becomes a file name)."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= 200
        and text not in (".", "..")
        and not text.startswith("-")
        and all(char in _NAME_CHARS for char in text)
    )


def encode(message: Mapping[str, Any]) -> bytes:
    """Return ``message`` as JSON text (bytes).

    Raises:
        WireError: the text would be longer than :data:`MAX_MESSAGE`.
    """
    data = fastjson.dumps(message, indent=0).encode()
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes is over the {MAX_MESSAGE}-byte limit")
    return data


def decode(data: bytes) -> dict[str, Any]:
    """Return the JSON object of one received message.

    Raises:
        WireError: not UTF-8 JSON, not an object, or over the size limit.
    """
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message over the {MAX_MESSAGE}-byte limit")
    try:
        value = fastjson.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError("not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise WireError("not a JSON object")
    return value


def request(op: str, job: str = "", run: str = "") -> dict[str, Any]:
    """Return the request ``op`` for ``job`` (and ``run``)."""
    message: dict[str, Any] = {"v": VERSION, "op": op}
    if job:
        message["job"] = job
    if run:
        message["run"] = run
    return message


def check_request(message: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return ``(op, job, run)`` of a received request (empty strings where unused).

    Raises:
        WireError: an unknown version or operation, a missing or invalid job or run name.
    """
    if message.get("v") != VERSION:
        raise WireError(f"unsupported protocol version {message.get('v')!r} (this is {VERSION})")
    op = message.get("op")
    if op not in OPERATIONS:
        raise WireError(f"unknown operation {op!r}")
    if op == PING:
        return op, "", ""
    job = message.get("job")
    if not is_plain_name(job):
        raise WireError("job: not a valid job name")
    run = message.get("run", "")
    if op in RUN_OPERATIONS and not is_plain_name(run):
        raise WireError("run: not a valid run id")
    return str(op), str(job), str(run) if op != SECRETS else ""


def failure(kind: str, error: str, **extra: Any) -> dict[str, Any]:
    """Return a refusal or failure reply."""
    return {"ok": False, "kind": kind, "error": error, **extra}


def success(**fields: Any) -> dict[str, Any]:
    """Return a success reply carrying ``fields``."""
    return {"ok": True, **fields}
