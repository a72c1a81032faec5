"""A one-host job's lease in the fleet table (DynamoDB): the requests, pure.

One item per job: partition key ``pk`` = ``job#NAME``, sort key ``sk`` = ``lease``. It
holds the last occurrence taken (epoch seconds), who took it (``holder``: a host name),
until when that host holds it while the job runs (``holder_until``: epoch seconds),
the run's id, and ``token``: the fencing token, a counter raised by 1 with every
occurrence taken, in the same conditional write, so a job can hand it to a store that
refuses writes carrying an older one.

The item has no ``expires_at``: DynamoDB's TTL would delete it and restart the token at
1, which a store checking tokens would refuse for ever. (The host status items of the
same table expire; see :mod:`cronsync.core.fleetitem` where it exists.)

Functions here build the keyword arguments of the boto3 calls; the broker makes them
(:mod:`cronsync.broker.fleetlease`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LEASE_SORT_KEY = "lease"
JOB_PARTITION_PREFIX = "job#"


def lease_key(job: str) -> dict[str, Any]:
    """The key of ``job``'s lease item."""
    return {"pk": {"S": f"{JOB_PARTITION_PREFIX}{job}"}, "sk": {"S": LEASE_SORT_KEY}}


def claim_request(
    table: str,
    job: str,
    occurrence: int,
    *,
    host: str,
    run_id: str,
    now: float,
    lease_ttl: int,
    forbid: bool,
) -> dict[str, Any]:
    """The ``UpdateItem`` taking ``occurrence`` of ``job`` for ``host``.

    It succeeds only when no host took this occurrence or a later one, and, with
    ``forbid``, when no host holds the job (its ``holder_until`` has passed: a host that
    died mid-run loses it ``lease_ttl`` seconds after its last renewal). It returns the
    new token (``ReturnValues`` UPDATED_NEW).
    """
    condition = "(attribute_not_exists(pk) OR last_occurrence < :occ)"
    if forbid:
        condition += " AND (attribute_not_exists(holder_until) OR holder_until < :now)"
    values: dict[str, Any] = {
        ":occ": {"N": str(occurrence)},
        ":me": {"S": host},
        ":until": {"N": str(int(now) + lease_ttl)},
        ":run": {"S": run_id},
        ":one": {"N": "1"},
    }
    if forbid:
        values[":now"] = {"N": str(int(now))}
    return {
        "TableName": table,
        "Key": lease_key(job),
        "UpdateExpression": (
            "SET last_occurrence = :occ, holder = :me, holder_until = :until, run_id = :run "
            "ADD #token :one"
        ),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#token": "token"},
        "ExpressionAttributeValues": values,
        "ReturnValues": "UPDATED_NEW",
    }


def holder_request(table: str, job: str, until: int, *, host: str, token: int) -> dict[str, Any]:
    """The ``UpdateItem`` setting ``holder_until`` of the lease ``host`` holds with
    ``token`` (a renewal: now + lease_ttl; a release: 0); it fails when another host
    took the lease since."""
    return {
        "TableName": table,
        "Key": lease_key(job),
        "UpdateExpression": "SET holder_until = :until",
        "ConditionExpression": "holder = :me AND #token = :token",
        "ExpressionAttributeNames": {"#token": "token"},
        "ExpressionAttributeValues": {
            ":until": {"N": str(until)},
            ":me": {"S": host},
            ":token": {"N": str(token)},
        },
    }


def read_request(table: str, job: str) -> dict[str, Any]:
    """The ``GetItem`` (strongly consistent) reading ``job``'s lease item."""
    return {"TableName": table, "Key": lease_key(job), "ConsistentRead": True}


def number(item: Mapping[str, Any], name: str) -> int:
    """An attribute of type N as an int (0 when missing or not a number)."""
    value = item.get(name)
    try:
        return int(value["N"]) if isinstance(value, dict) else 0
    except (KeyError, ValueError):
        return 0


def text(item: Mapping[str, Any], name: str) -> str:
    """An attribute of type S ("" when missing)."""
    value = item.get(name)
    return str(value.get("S", "")) if isinstance(value, dict) else ""
