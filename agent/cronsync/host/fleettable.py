"""The fleet table's host status items in DynamoDB: put one, read them all.

Only two calls, the ones the host role grants: ``PutItem`` of this host's item and a
``Query`` on ``pk = "host"`` (paginated; never a Scan, which would read the lease items
too). A failed call becomes one :class:`FleetTableError` line, without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cronsync.core.errors import EXIT_USAGE, CronsyncError
from cronsync.core.fleetitem import HOST_PARTITION, from_attributes, to_attributes
from cronsync.host.awsclients import METRICS_TIMEOUTS, AwsSettings, make_client

MAX_PAGES = 1000  # a Query page holds up to 1 MB: far more hosts than any fleet has


class FleetTableError(CronsyncError):
    """The fleet table cannot be read or written (unreachable, missing, refused)."""

    exit_code = EXIT_USAGE


def fleet_client(aws: AwsSettings, *, short: bool = False) -> Any:
    """A ``dynamodb`` client from the host's ``[aws]`` settings; ``short`` asks for the
    metrics' short timeouts and one attempt (the agent's write: cheap to lose, never
    worth holding a thread for).

    Raises:
        CredentialsFileError: ``aws.credentials_file`` is refused or unreadable.
        FleetTableError: botocore cannot make the client (no region, say).
    """
    from botocore.exceptions import BotoCoreError

    try:
        return make_client("dynamodb", aws, timeouts=METRICS_TIMEOUTS if short else None)
    except BotoCoreError as exc:
        raise FleetTableError(f"cannot reach the fleet table: {exc}") from exc


def put_host_item(client: Any, table: str, item: Mapping[str, Any]) -> None:
    """Write (replace) one host status item.

    Raises:
        FleetTableError: the call failed (the line says why).
    """
    _call(table, "write", lambda: client.put_item(TableName=table, Item=to_attributes(item)))


def read_host_items(client: Any, table: str) -> list[dict[str, Any]]:
    """Every host status item of the table (plain values), following the pages.

    Raises:
        FleetTableError: a call failed (the line says why).
    """
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": HOST_PARTITION}},
    }
    for _ in range(MAX_PAGES):
        page = _call(table, "read", lambda: client.query(**request))
        items += [from_attributes(raw) for raw in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        if not last:
            return items
        request["ExclusiveStartKey"] = last
    raise FleetTableError(f"fleet table {table}: more than {MAX_PAGES} pages of host items")


def _call(table: str, what: str, call: Any) -> Any:
    """Make one call; translate botocore's failures into one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        reason = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        raise FleetTableError(f"cannot {what} the fleet table {table}: {reason}") from exc
    except BotoCoreError as exc:
        raise FleetTableError(f"cannot {what} the fleet table {table}: {exc}") from exc
