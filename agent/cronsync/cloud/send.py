"""Sending batches to CloudWatch Logs: the one seam between delivery and boto3.

:class:`LogsSender` wraps a boto3 ``logs`` client made on first use by
:func:`cronsync.host.awsclients.make_client` (so boto3 is imported only when a batch is
sent). It creates the stream on first use, and a missing group once when allowed.
Every botocore or network failure becomes a one-line :class:`DeliveryError` here, at
the edge, without the offending values a validation message may quote.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from cronsync.cloud.batch import Event
from cronsync.core.errors import CronsyncError
from cronsync.host.awsclients import AwsSettings, make_client

_UNREACHABLE_CODES = frozenset(
    {
        "AccessDeniedException",
        "ExpiredTokenException",
        "InternalFailure",
        "ServiceUnavailableException",
        "ThrottlingException",
        "UnrecognizedClientException",
    }
)
# Validation messages quote the offending value ("Value '...' at ..."): leave it out.
_QUOTED = re.compile(r"'[^']{40,}'")


class DeliveryError(CronsyncError):
    """CloudWatch Logs did not take a batch (after botocore's own retries).

    Args:
        message: one line, without secrets (the service's or the network's reason).
        unreachable: the service as a whole failed us (network, credentials,
            throttling, a server error), so other deliveries would fail too.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def one_line(text: str, limit: int = 300) -> str:
    """Return ``text`` on one line, shortened to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _error_code(exc: BaseException) -> str:
    """Return the service's error code of a botocore ``ClientError`` ("" for others)."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return str(error.get("Code", "")) if isinstance(error, dict) else ""


def _translate(exc: BaseException, operation: str) -> DeliveryError:
    """Return the :class:`DeliveryError` for a botocore or network exception."""
    code = _error_code(exc)
    if not code:
        return DeliveryError(
            one_line(f"CloudWatch Logs {operation}: {type(exc).__name__}: {exc}"),
            unreachable=True,
        )
    response: dict[str, Any] = getattr(exc, "response", {})
    message = _QUOTED.sub("'…'", str(response.get("Error", {}).get("Message", "")))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    unreachable = code in _UNREACHABLE_CODES or (isinstance(status, int) and status >= 500)
    text = one_line(f"CloudWatch Logs {operation}: {code}: {message}")
    return DeliveryError(text, unreachable=unreachable)


def _rejected(response: Any, count: int) -> int:
    """Return how many of ``count`` events the service rejected as too old or too new."""
    info = response.get("rejectedLogEventsInfo") if isinstance(response, dict) else None
    if not isinstance(info, dict):
        return 0
    rejected = 0
    too_new = info.get("tooNewLogEventStartIndex")
    if isinstance(too_new, int):
        rejected += count - too_new
    old_ends = [info.get("tooOldLogEventEndIndex"), info.get("expiredLogEventEndIndex")]
    rejected += max([end + 1 for end in old_ends if isinstance(end, int)], default=0)
    return min(max(rejected, 0), count)


class LogsSender:
    """Sends batches to CloudWatch Logs through one boto3 ``logs`` client.

    Args:
        aws: where and how to reach AWS (the client is made on first use).
        client: a ready client (tests), or None to make one.
        create_group: create a missing log group (once per group) before giving up.

    Attributes:
        rejected_events: events the service refused as too old or too new, so far.
    """

    def __init__(
        self, aws: AwsSettings, client: Optional[Any] = None, *, create_group: bool = True
    ) -> None:
        self.aws = aws
        self._client = client
        self._create_group = create_group
        self._ready: set[tuple[str, str]] = set()
        self._groups_tried: set[str] = set()
        self.rejected_events = 0

    def send(self, group: str, stream: str, events: list[Event]) -> None:
        """Put ``events`` (one service-sized batch, in order) into ``group``/``stream``.

        The stream is created on first use; a missing group is created once if allowed.

        Raises:
            DeliveryError: boto3 is missing, or any botocore/network failure after
                botocore's own retries.
        """
        if not events:
            return
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError as exc:
            raise DeliveryError(
                "CloudWatch Logs: boto3 is not installed", unreachable=True
            ) from exc
        operation = "client"
        try:
            if self._client is None:
                self._client = make_client("logs", self.aws, validate=False)
            operation = "CreateLogStream"
            if (group, stream) not in self._ready:
                self._create_stream(group, stream)
            operation = "PutLogEvents"
            self._put(group, stream, events)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _translate(exc, operation) from exc

    @property
    def _api(self) -> Any:
        """The client (made by send() before any call)."""
        return self._client

    def _create_stream(self, group: str, stream: str) -> None:
        """Create ``stream`` (and its group, once, when missing and allowed)."""
        try:
            self._api.create_log_stream(logGroupName=group, logStreamName=stream)
        except Exception as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException" and self._may_create_group(group):
                self._create_log_group(group)
                self._create_stream(group, stream)
                return
            if code != "ResourceAlreadyExistsException":
                raise
        self._ready.add((group, stream))

    def _may_create_group(self, group: str) -> bool:
        """Whether to try creating ``group`` now (allowed, and not tried before)."""
        if not self._create_group or group in self._groups_tried:
            return False
        self._groups_tried.add(group)
        return True

    def _create_log_group(self, group: str) -> None:
        """Create ``group``; one created meanwhile by someone else is fine."""
        try:
            self._api.create_log_group(logGroupName=group)
        except Exception as exc:
            if _error_code(exc) != "ResourceAlreadyExistsException":
                raise

    def _put(self, group: str, stream: str, events: list[Event]) -> None:
        """Call PutLogEvents, re-creating the stream once if it vanished."""
        payload = [{"timestamp": event.timestamp_ms, "message": event.message} for event in events]
        try:
            response = self._api.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=payload
            )
        except Exception as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            self._ready.discard((group, stream))
            self._create_stream(group, stream)
            response = self._api.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=payload
            )
        self.rejected_events += _rejected(response, len(events))
