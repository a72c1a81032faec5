"""The checks ``cronsync doctor`` makes as one job user (in a child that has become that
user, see :mod:`cronsync.broker.doctor`): the credentials file cannot be read, the
instance metadata service cannot be reached, the broker answers and refuses that user
another user's job. Each check is a :class:`Check`; none raises. Everything a check
needs is imported here, before the child switches users (a job user may not be able to
read the interpreter's library).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.core import brokerwire
from cronsync.core.errors import ConfigError, os_reason
from cronsync.host.config import AgentConfig
from cronsync.run.broker import BrokerUnreachable, ask

PROBE_TIMEOUT = 2.0  # the metadata service's TCP connect
BROKER_TIMEOUT = 10.0  # each request to the broker
DETAIL_LIMIT = 300

OK, FAIL, SKIP = "ok", "fail", "skip"

CREDENTIALS = "credentials-unreadable"
METADATA = "metadata-unreachable"
BROKER_ANSWERS = "broker-answers"
BROKER_REFUSES = "broker-refuses"
USER_CHECKS = (CREDENTIALS, METADATA, BROKER_ANSWERS, BROKER_REFUSES)


@dataclass(frozen=True)
class Check:
    """One check's outcome: whose, which, ``ok``/``fail``/``skip``, and one line why."""

    user: str
    check: str
    status: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The check as the JSON document lists it."""
        return {
            "user": self.user,
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Targets:
    """What a user's checks probe (plain data, decided before any fork).

    Attributes:
        credentials_file: ``aws.credentials_file``, or None when not set.
        metadata: ``aws.metadata_endpoint`` as configured (HOST:PORT), for messages.
        metadata_address: its address family and socket address, resolved by the doctor.
        socket: the broker's socket.
    """

    credentials_file: Optional[str]
    metadata: str
    metadata_address: tuple[int, tuple[Any, ...]]
    socket: str


@dataclass(frozen=True)
class Probe:
    """The job whose secrets a user asks for, to be refused: another user's job
    (``owner``), or a name not in the release (``owner`` None)."""

    job: str
    owner: Optional[str]

    def describe(self) -> str:
        """The job as a message names it."""
        whose = f"runs as {self.owner}" if self.owner else "not in the release"
        return f"job {self.job!r} ({whose})"


def resolve_endpoint(endpoint: str) -> tuple[int, tuple[Any, ...]]:
    """Return the address family and socket address of ``HOST:PORT``.

    Raises:
        ConfigError: the host does not resolve.
    """
    host, _, port = endpoint.rpartition(":")
    try:
        found = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"aws.metadata_endpoint: cannot resolve {endpoint!r}: {exc}") from exc
    family, _, _, _, address = found[0]
    return int(family), tuple(address)


def make_targets(config: AgentConfig) -> Targets:
    """Return what the users' checks probe, from the agent config.

    Raises:
        ConfigError: ``aws.metadata_endpoint`` does not resolve.
    """
    return Targets(
        credentials_file=config.run.aws.credentials_file,
        metadata=config.metadata_endpoint,
        metadata_address=resolve_endpoint(config.metadata_endpoint),
        socket=str(config.broker.socket),
    )


# --- the checks a user makes (in the child, after the switch: nothing is imported) ---


def one_line(text: str) -> str:
    """``text`` on one line, control characters replaced, at most DETAIL_LIMIT long."""
    flat = "".join(char if char.isprintable() else " " for char in text)
    return flat if len(flat) <= DETAIL_LIMIT else flat[: DETAIL_LIMIT - 3] + "..."


def check_credentials(user: str, path: Optional[str]) -> Check:
    """Whether ``user`` (this process) cannot open the credentials file for reading."""
    if path is None:
        return Check(user, CREDENTIALS, OK, "aws.credentials_file is not set: no file to read")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)  # opened, never read
    except OSError as exc:
        return Check(user, CREDENTIALS, OK, f"cannot open {path}: {os_reason(exc)}")
    os.close(descriptor)
    return Check(
        user, CREDENTIALS, FAIL, f"{user} can open {path} for reading: chown root, chmod 600"
    )


def check_metadata(user: str, targets: Targets) -> Check:
    """Whether a TCP connect to the metadata service fails within PROBE_TIMEOUT."""
    family, address = targets.metadata_address
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT)
    try:
        probe.connect(address)
    except TimeoutError:
        return Check(user, METADATA, OK, f"no answer from {targets.metadata} in {PROBE_TIMEOUT:g}s")
    except OSError as exc:
        return Check(user, METADATA, OK, f"cannot connect to {targets.metadata}: {os_reason(exc)}")
    finally:
        probe.close()
    return Check(
        user,
        METADATA,
        FAIL,
        f"{user} can connect to {targets.metadata} (the instance metadata service): load "
        "systemd/cronsync-imds.nft (cronsync-imds-guard.service)",
    )


def check_broker_answers(user: str, uid: int, path: str) -> Check:
    """Whether the broker answers ``ping`` and sees ``uid`` on the other end."""
    try:
        reply = ask(path, brokerwire.request(brokerwire.PING), BROKER_TIMEOUT)
    except BrokerUnreachable as exc:
        return Check(user, BROKER_ANSWERS, FAIL, one_line(exc.message))
    if not reply["ok"]:
        return Check(user, BROKER_ANSWERS, FAIL, f"the broker answered {reply.get('kind')!r}")
    if reply.get("uid") != uid:
        seen = one_line(str(reply.get("uid")))
        return Check(user, BROKER_ANSWERS, FAIL, f"the broker sees uid {seen}, not {uid}")
    version = one_line(str(reply.get("version")))
    return Check(user, BROKER_ANSWERS, OK, f"answers on {path} (cronsync {version}, uid {uid})")


def check_broker_refuses(user: str, path: str, probe: Probe) -> Check:
    """Whether the broker refuses ``user`` the secrets of ``probe``'s job. A value it
    serves is counted, never returned."""
    what = probe.describe()
    try:
        reply = ask(path, brokerwire.request(brokerwire.SECRETS, probe.job), BROKER_TIMEOUT)
    except BrokerUnreachable as exc:
        return Check(user, BROKER_REFUSES, FAIL, one_line(f"asking for {what}: {exc.message}"))
    if reply["ok"]:
        values = reply.get("values")
        served = len(values) if isinstance(values, dict) else 0
        del reply, values  # nothing of it is kept, shown or passed on
        return Check(
            user,
            BROKER_REFUSES,
            FAIL,
            f"the broker SERVED the secrets of {what} to {user} ({served} value(s), not "
            "shown): it must refuse",
        )
    kind = one_line(str(reply.get("kind")))
    if kind != brokerwire.REFUSED:  # its error text is not shown: it is not trusted
        return Check(user, BROKER_REFUSES, FAIL, f"the broker did not refuse {what}: {kind!r}")
    reason = one_line(str(reply.get("error")))
    return Check(user, BROKER_REFUSES, OK, f"refused {what}: {reason}")


def checks_as_this_process(user: str, targets: Targets, probe: Probe) -> list[Check]:
    """Run a user's checks as this process is (the user itself, or the child)."""
    return [
        check_credentials(user, targets.credentials_file),
        check_metadata(user, targets),
        check_broker_answers(user, os.geteuid(), targets.socket),
        check_broker_refuses(user, targets.socket, probe),
    ]


# --- acting as another user: a forked child -------------------------------------------
