"""A host's status item in the fleet table (DynamoDB), and its wire form (pure).

Every agent with ``[fleet] table`` writes one item after each cycle: partition key
``pk`` = ``"host"``, sort key ``sk`` = the host's name, TTL attribute ``expires_at``
(epoch seconds). ``cronsync fleet`` reads them back with one Query on ``pk = "host"``.
The lease items of the same table (``pk`` = ``job#NAME``) are not this module's.

Besides the keys, an item has ``format``, ``expires_at`` (a number, as DynamoDB's TTL
wants) and ``summary``: the host's summary as one JSON string (times in ISO 8601 UTC),
readable in the console. One attribute rather than twenty: reading 500 hosts, the
client's typed parsing (and moto's serializer) costs per attribute, and nothing filters
on the fields server-side (every host item is read).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Optional

from cronsync.core.health import parse_time

HOST_PARTITION = "host"
ITEM_FORMAT = 1
# A dead host's item stays this many of its intervals (a day at least), shown as
# silent, then DynamoDB's TTL removes it.
EXPIRY_INTERVALS = 1440
EXPIRY_MIN_SECONDS = 86400
HEALTHS = ("ok", "degraded", "failed")
ONE_HOST = "one-host"  # a job's run_on that makes it run on one host of the fleet


@dataclass(frozen=True)
class HostSummary:
    """What one host says about itself.

    Attributes:
        host: the host's name (``[host] name``), the item's sort key.
        groups: its ``[host] groups``.
        repo: the jobs repository's URL, credentials removed. branch: its branch.
        installed_commit: the installed commit, None before the first install.
        health: ``ok``, ``degraded`` or ``failed``, as ``cronsync status`` says.
        last_sync_result: ``installed``, ``unchanged``, ``refused``, ``failed`` or None.
        last_sync_at: when that sync finished (ISO 8601), or None.
        drift: how many drift findings the host has.
        stale_jobs: the installed jobs without a success within their window.
        version: the agent's cronsync version.
        heartbeat: when the item was made (ISO 8601).
        interval: seconds until the host's next item is due at the latest (its sync
            interval, longer while it backs off, plus the splay).
        fetched_commit: the branch tip the host's last successful fetch saw, or None.
        fetched_at: when the cycle of that fetch started (ISO 8601), or None.
        one_host_jobs: its installed jobs with ``run_on = "one-host"``.
    """

    host: str
    groups: tuple[str, ...]
    repo: str
    branch: str
    installed_commit: Optional[str]
    health: str
    last_sync_result: Optional[str]
    last_sync_at: Optional[str]
    drift: int
    stale_jobs: tuple[str, ...]
    version: str
    heartbeat: str
    interval: int
    fetched_commit: Optional[str]
    fetched_at: Optional[str]
    one_host_jobs: tuple[str, ...]


_TEXT = ("host", "repo", "branch", "health", "version", "heartbeat")
_OPTIONAL_TEXT = (
    "installed_commit",
    "last_sync_result",
    "last_sync_at",
    "fetched_commit",
    "fetched_at",
)
_NAMES = ("groups", "stale_jobs", "one_host_jobs")
_COUNTS = ("drift", "interval")


def expires_at(summary: HostSummary) -> int:
    """When the item may be removed (epoch seconds): ``EXPIRY_INTERVALS`` of the host's
    intervals after its heartbeat, a day at least.

    Raises:
        ValueError: the heartbeat is not an ISO 8601 time.
    """
    beat = parse_time(summary.heartbeat)
    if beat is None:
        raise ValueError(f"heartbeat {summary.heartbeat!r} is not an ISO 8601 time")
    keep = max(EXPIRY_MIN_SECONDS, EXPIRY_INTERVALS * summary.interval)
    return int(beat.timestamp()) + keep


def summary_item(summary: HostSummary) -> dict[str, Any]:
    """The item to put (plain values; :func:`to_attributes` makes the wire form).

    Raises:
        ValueError: the heartbeat is not an ISO 8601 time.
    """
    return {
        "pk": HOST_PARTITION,
        "sk": summary.host,
        "format": ITEM_FORMAT,
        "expires_at": expires_at(summary),
        "summary": json.dumps(asdict(summary), sort_keys=True, separators=(",", ":")),
    }


def summary_from_item(item: Mapping[str, Any]) -> Optional[HostSummary]:
    """Read an item back (any host with write access could have written anything).

    Returns:
        The summary, or None when the item is not a host status item of a format this
        cronsync reads (not JSON, a field missing or of the wrong type, an unknown
        health, a host name that is not the item's sort key).
    """
    if item.get("format") != ITEM_FORMAT or not isinstance(item.get("summary"), str):
        return None
    try:
        fields = json.loads(item["summary"])
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict) or fields.get("host") != item.get("sk"):
        return None
    return _summary_of(fields)


def _summary_of(item: Mapping[str, Any]) -> Optional[HostSummary]:
    """The summary in a decoded ``summary`` attribute, or None (see above)."""
    if not all(isinstance(item.get(key), str) for key in _TEXT):
        return None
    if not all(item.get(key) is None or isinstance(item.get(key), str) for key in _OPTIONAL_TEXT):
        return None
    if not all(_is_names(item.get(key)) for key in _NAMES):
        return None
    if not all(_is_count(item.get(key)) for key in _COUNTS):
        return None
    if item["health"] not in HEALTHS or parse_time(item["heartbeat"]) is None:
        return None
    values: dict[str, Any] = {key: item.get(key) for key in (*_TEXT, *_OPTIONAL_TEXT, *_COUNTS)}
    values.update({key: tuple(item[key]) for key in _NAMES})
    return HostSummary(**values)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_expired(item: Mapping[str, Any], now: datetime) -> bool:
    """Whether the item's ``expires_at`` has passed (DynamoDB removes such items
    lazily, so a Query may still return them)."""
    expiry = item.get("expires_at")
    if not isinstance(expiry, int) or isinstance(expiry, bool):
        return False
    return expiry <= now.timestamp()


# -- DynamoDB's attribute values --------------------------------------------------------


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed form of a plain item (``{"S": ...}``, ``{"N": "1"}``, ...).

    Raises:
        TypeError: a value is not a str, int, bool, None, list or mapping.
    """
    return {key: _attribute(value) for key, value in item.items()}


def _attribute(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (list, tuple)):
        return {"L": [_attribute(part) for part in value]}
    if isinstance(value, Mapping):
        return {"M": to_attributes(value)}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def from_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The plain item of DynamoDB's typed form. A number that is not an integer, and a
    type this module never writes (sets, binary), read as None."""
    return {str(key): _plain(value) for key, value in attributes.items()}


def _plain(value: Any) -> Any:
    if not isinstance(value, Mapping) or len(value) != 1:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "S" and isinstance(inner, str):
        return inner
    if kind == "N" and isinstance(inner, str):
        try:
            return int(inner)
        except ValueError:
            return None
    if kind == "BOOL" and isinstance(inner, bool):
        return inner
    if kind == "L" and isinstance(inner, list):
        return [_plain(part) for part in inner]
    if kind == "M" and isinstance(inner, Mapping):
        return from_attributes(inner)
    return None
