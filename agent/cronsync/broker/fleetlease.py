"""The leases of one-host jobs in the fleet table: take an occurrence, renew, release.

Each call is one DynamoDB request on the job's lease item (see
:mod:`cronsync.core.leaseitem`); the client is the broker's (root's credentials, never a
job user's). A conditional write that fails is an answer (another host has the
occurrence, or holds the job); every other failure (no connection, throttling, no
table, access denied) is :class:`LeaseUnavailable`, and the job's ``fleet_unreachable``
decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.core import leaseitem
from cronsync.core.errors import CronsyncError

CONDITION_FAILED = "ConditionalCheckFailedException"
RAN = "ran"  # another host took this occurrence (or a later one)
RUNNING = "running"  # forbid: another host still holds the job


class LeaseUnavailable(CronsyncError):
    """The fleet table could not answer (the text says why, one line)."""


@dataclass(frozen=True)
class Claim:
    """What taking an occurrence gave.

    Attributes:
        won: this host runs the occurrence.
        token: the fencing token (won), else the holder's last one (0: unknown).
        holder: the host that has it (this one when won).
        why: when lost, :data:`RAN` or :data:`RUNNING`.
        holder_until: when lost to a running holder, until when it holds the job.
    """

    won: bool
    token: int
    holder: str
    why: str = ""
    holder_until: int = 0


class LeaseStore:
    """One host's view of the leases in the fleet table.

    Args:
        client: a boto3 ``dynamodb`` client.
        table: the table's name (agent.toml ``[fleet] table``).
        host: this host's name (``[host] name``), written as the holder.
        lease_ttl: seconds a lease holds without renewal (``[fleet] lease_ttl``).
        clock: the time source (tests inject skewed clocks).
    """

    def __init__(
        self,
        client: Any,
        table: str,
        host: str,
        lease_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.table = table
        self.host = host
        self.lease_ttl = lease_ttl
        self.clock = clock

    def claim(self, job: str, occurrence: int, run_id: str, forbid: bool) -> Claim:
        """Take ``occurrence`` (epoch seconds) of ``job`` for run ``run_id``.

        Raises:
            LeaseUnavailable: the table did not answer.
        """
        request = leaseitem.claim_request(
            self.table,
            job,
            occurrence,
            host=self.host,
            run_id=run_id,
            now=self.clock(),
            lease_ttl=self.lease_ttl,
            forbid=forbid,
        )
        reply = self._call("update_item", request, job)
        if reply is not None:
            return Claim(True, leaseitem.number(reply.get("Attributes", {}), "token"), self.host)
        item = self._call("get_item", leaseitem.read_request(self.table, job), job) or {}
        found = item.get("Item", {})
        ran = leaseitem.number(found, "last_occurrence") >= occurrence
        return Claim(
            False,
            leaseitem.number(found, "token"),
            leaseitem.text(found, "holder") or "another host",
            RAN if ran else RUNNING,
            leaseitem.number(found, "holder_until"),
        )

    def renew(self, job: str, token: int) -> bool:
        """Hold ``job`` for another ``lease_ttl`` seconds; False when it is no longer
        this host's with ``token`` (another host took it after it expired).

        Raises:
            LeaseUnavailable: the table did not answer.
        """
        until = int(self.clock()) + self.lease_ttl
        request = leaseitem.holder_request(self.table, job, until, host=self.host, token=token)
        return self._call("update_item", request, job) is not None

    def release(self, job: str, token: int) -> bool:
        """Let ``job`` go at the end of its run (the next occurrence need not wait for
        the lease to expire); False when it was not this host's any more.

        Raises:
            LeaseUnavailable: the table did not answer.
        """
        request = leaseitem.holder_request(self.table, job, 0, host=self.host, token=token)
        return self._call("update_item", request, job) is not None

    def _call(self, operation: str, request: dict[str, Any], job: str) -> Optional[dict[str, Any]]:
        """Make one call; None when its condition failed.

        Raises:
            LeaseUnavailable: any other failure, said in one line.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply: dict[str, Any] = getattr(self.client, operation)(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == CONDITION_FAILED:
                return None
            message = exc.response.get("Error", {}).get("Message", "")
            raise LeaseUnavailable(
                f"fleet table {self.table!r}: lease of {job!r}: {code or 'error'}: {message}"
            ) from exc
        except BotoCoreError as exc:
            raise LeaseUnavailable(f"fleet table {self.table!r}: lease of {job!r}: {exc}") from exc
        return reply
