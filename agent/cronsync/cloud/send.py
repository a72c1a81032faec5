"""Sending batches to CloudWatch Logs: the one seam between delivery and boto3.

:class:`LogsSender` wraps a boto3 ``logs`` client made on first use by
:func:`cronsync.host.awsclients.make_client` (so boto3 is imported only when a batch is
sent). It creates the stream on first use, and a missing group once when allowed.
Every botocore or network failure becomes a one-line :class:`DeliveryError` here, at
the edge, without the offending values a validation message may quote.

The client makes one attempt per call and the retries are ours: botocore would resend
a ``PutLogEvents`` whose connection dropped after the service took it, storing the
batch twice. A failure that leaves the outcome unknown (the connection closed or timed
out after the request went out, a server error) is followed by a look at the stream
(:mod:`cronsync.cloud.tailcheck`) before anything is resent; a clear one (no
connection, throttling) is simply retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.cloud.batch import Event
from cronsync.cloud.failures import DeliveryError, error_code, failure_kind, translate
from cronsync.cloud.tailcheck import (
    EMPTY_STREAM,
    StreamEnd,
    accepted_part,
    after_accepted,
    events_before,
    read_end,
    read_since,
)
from cronsync.core.errors import CronsyncError
from cronsync.host.awsclients import AwsSettings, Timeouts, make_client


@dataclass(frozen=True)
class Retries:
    """How :class:`LogsSender` retries a call.

    Attributes:
        attempts: calls at most per operation, or None for the settings' ``max_attempts``.
        backoff: seconds before the first retry at most (full jitter), doubled after
            each, up to ``cap``.
        cap: the longest wait between two attempts, in seconds.
        settle: seconds to wait before reading a stream after a failure whose outcome
            is unknown (the service's reads may lag its writes a little).
    """

    attempts: Optional[int] = None
    backoff: float = 0.5
    cap: float = 5.0
    settle: float = 1.0


def _accepted_range(response: Any, count: int) -> tuple[int, int]:
    """Return ``(start, stop)``: the events of a batch of ``count`` the service stored
    (it rejects the oldest as too old or expired, the newest as too new)."""
    info = response.get("rejectedLogEventsInfo") if isinstance(response, dict) else None
    if not isinstance(info, dict):
        return 0, count
    too_new = info.get("tooNewLogEventStartIndex")
    stop = min(max(too_new, 0), count) if isinstance(too_new, int) else count
    old_ends = [info.get("tooOldLogEventEndIndex"), info.get("expiredLogEventEndIndex")]
    start = max([end + 1 for end in old_ends if isinstance(end, int)], default=0)
    return min(max(start, 0), stop), stop


class LogsSender:
    """Sends batches to CloudWatch Logs through one boto3 ``logs`` client.

    It keeps, per stream, how the stream ends (:class:`~cronsync.cloud.tailcheck.
    StreamEnd`): what it created or was told (:meth:`assume_stream_end`), moved on by
    every batch stored, or learnt from the stream when unknown. That is what lets it
    tell whether a batch whose reply was lost arrived.

    Args:
        aws: where and how to reach AWS (the client is made on first use).
        client: a ready client (tests), or None to make one. It must make one attempt
            per call (its own retries could store a batch twice).
        create_group: create a missing log group (once per group) before giving up.
        retries: how to retry (see :class:`Retries`).

    Attributes:
        rejected_events: events the service refused as too old or too new, so far.
        recovered_batches: batches whose outcome was unknown and that the stream
            showed stored (not sent again).
        unverified_batches: looks at a stream that could not tell whether a batch
            had arrived (it may not be read, or does not hold what was expected): the
            batch is sent again, so it may be stored twice.
    """

    def __init__(
        self,
        aws: AwsSettings,
        client: Optional[Any] = None,
        *,
        create_group: bool = True,
        retries: Retries = Retries(),
    ) -> None:
        self.aws = aws
        self.retries = retries
        self._client = client
        self._create_group = create_group
        self._ready: set[tuple[str, str]] = set()
        self._groups_tried: set[str] = set()
        self._ends: dict[tuple[str, str], Optional[StreamEnd]] = {}
        self._unlearnable: set[tuple[str, str]] = set()
        self._readable = True
        self.rejected_events = 0
        self.recovered_batches = 0
        self.unverified_batches = 0

    @property
    def _attempts(self) -> int:
        """Calls at most per operation."""
        return max(1, self.retries.attempts or self.aws.max_attempts)

    def stream_end(self, group: str, stream: str) -> Optional[StreamEnd]:
        """Return how ``group``/``stream`` ends as far as this sender knows (None: unknown)."""
        return self._ends.get((group, stream))

    def assume_stream_end(self, group: str, stream: str, end: Optional[StreamEnd]) -> None:
        """Take ``end`` as how ``group``/``stream`` ends now (a pending file's word)."""
        self._ends[(group, stream)] = end

    def send(self, group: str, stream: str, events: list[Event]) -> None:
        """Put ``events`` (one service-sized batch, in order) into ``group``/``stream``.

        The stream is created on first use; a missing group is created once if allowed.
        Once the request may have reached the service, it is sent again only after the
        stream showed that it did not arrive (or could not tell: see
        ``unverified_batches``).

        Raises:
            DeliveryError: boto3 is missing, or any botocore/network failure after
                our retries; ``in_doubt`` when the batch may be stored all the same.
        """
        if not events:
            return
        operation = "client"
        try:
            self._make_client()
            operation = "CreateLogStream"
            if (group, stream) not in self._ready:
                self._create_stream(group, stream)
            operation = "GetLogEvents"
            if self.stream_end(group, stream) is None:
                self._learn_end(group, stream)
        except Exception as exc:
            raise self._edge(exc, operation) from exc
        self._put(group, stream, events)

    def find_batch(self, group: str, stream: str, events: Optional[list[Event]]) -> bool:
        """Whether ``events``, a batch sent earlier whose outcome is unknown (a pending
        file's batch in flight), are stored in ``group``/``stream``, assumed to have
        ended as :meth:`stream_end` says before they were sent.

        Args:
            events: the batch as sent, or None when it could not be rebuilt (then it
                counts as unverified and is sent again).

        Returns:
            True when stored (the stream's end moves past them); False when they
            must be sent (not stored, or it cannot be told).

        Raises:
            DeliveryError: ``in_doubt``: the stream cannot be read now.
        """
        if events is None:
            self._unverified(group, stream)
            return False
        try:
            self._make_client()
            part = self._look_for(group, stream, events)
        except Exception as exc:
            raise self._edge(exc, "GetLogEvents", in_doubt=True) from exc
        return self._settled(group, stream, events, part)

    def _edge(self, exc: Exception, operation: str, *, in_doubt: bool = False) -> Exception:
        """Return the error to raise for ``exc`` (ours pass through, foreign translated)."""
        if isinstance(exc, CronsyncError):
            return exc
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, (BotoCoreError, ClientError, OSError)):
            return translate(exc, operation, in_doubt=in_doubt)
        return exc

    def _make_client(self) -> None:
        """Make the client on first use.

        Raises:
            DeliveryError: boto3 is not installed.
        """
        if self._client is not None:
            return
        try:
            import botocore  # noqa: F401
        except ImportError as exc:
            raise DeliveryError(
                "CloudWatch Logs: boto3 is not installed", unreachable=True
            ) from exc
        single = Timeouts(self.aws.connect_timeout, self.aws.read_timeout, max_attempts=1)
        self._client = make_client("logs", self.aws, validate=False, timeouts=single)

    @property
    def _api(self) -> Any:
        """The client (made before any call)."""
        return self._client

    def _pause(self, attempt: int) -> None:
        """Wait before attempt ``attempt + 1`` (exponential backoff, full jitter)."""
        limit = min(self.retries.cap, self.retries.backoff * 2 ** (attempt - 1))
        time.sleep(random.uniform(0, limit))  # noqa: S311 - jitter, not for security

    def _call(self, method: str, *, retry_doubt: bool = True, **params: Any) -> Any:
        """Call a client ``method`` that is safe to repeat, retrying what may be retried.

        Args:
            retry_doubt: retry a call that may have reached the service, too.

        Raises:
            The client's exception once out of attempts, or at once when refused.
        """
        for attempt in range(1, self._attempts + 1):
            try:
                return getattr(self._api, method)(**params)
            except Exception as exc:
                kind = failure_kind(exc)
                if attempt >= self._attempts or kind == "refused":
                    raise
                if kind == "doubt" and not retry_doubt:
                    raise
                self._pause(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _create_stream(self, group: str, stream: str) -> None:
        """Create ``stream`` (and its group, once, when missing and allowed); a stream
        created here is known to be empty."""
        try:
            self._call("create_log_stream", logGroupName=group, logStreamName=stream)
            self._ends[(group, stream)] = EMPTY_STREAM
        except Exception as exc:
            code = error_code(exc)
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
            self._call("create_log_group", logGroupName=group)
        except Exception as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise

    def _get_page(self, **params: Any) -> Any:
        """Call GetLogEvents; a failure that leaves its answer unknown is not retried
        (the service is not answering: the batch waits for the next delivery)."""
        return self._call("get_log_events", retry_doubt=False, **params)

    def _learn_end(self, group: str, stream: str) -> None:
        """Find out how ``group``/``stream`` ends (a stream this sender knows nothing of).

        Raises:
            The client's exception, unless the stream may not be read (then it stays
            unknown: an unknown outcome will be resent unverified).
        """
        if not self._readable or (group, stream) in self._unlearnable:
            return
        try:
            end = read_end(self._get_page, group, stream)
            self._ends[(group, stream)] = end
            if end is None:  # too long a run at one timestamp: do not read it again
                self._unlearnable.add((group, stream))
        except Exception as exc:
            if failure_kind(exc) != "refused":
                raise
            self._note_refused(exc)

    def _note_refused(self, exc: Exception) -> None:
        """A read of a stream was refused: without the permission, read no more."""
        if error_code(exc) == "AccessDeniedException":
            self._readable = False

    def _look_for(self, group: str, stream: str, events: list[Event]) -> Optional[Sequence[Event]]:
        """Read the stream and return the part of ``events`` it holds (empty: none);
        None when that cannot be told.

        Raises:
            The client's exception when the stream cannot be read now.
        """
        before = events_before(self.stream_end(group, stream), events[0].timestamp_ms)
        if before is None or not self._readable:
            return None
        if self.retries.settle > 0:
            time.sleep(self.retries.settle)
        most = before + len(events)
        try:
            found = read_since(self._get_page, group, stream, events[0].timestamp_ms, most)
        except Exception as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                found = []  # no stream, so nothing in it
            elif failure_kind(exc) == "refused":
                self._note_refused(exc)
                return None
            else:
                raise
        return None if found is None else accepted_part(found, events, before)

    def _settled(
        self, group: str, stream: str, events: list[Event], part: Optional[Sequence[Event]]
    ) -> bool:
        """Record what a look at the stream found; return whether ``events`` are stored."""
        if part is None:
            self._unverified(group, stream)
            return False
        if not part:
            return False
        key = (group, stream)
        self._ends[key] = after_accepted(self._ends.get(key), part)
        self.rejected_events += len(events) - len(part)
        self.recovered_batches += 1
        return True

    def _unverified(self, group: str, stream: str) -> None:
        """Count a batch sent again unverified; the stream's end is unknown from now."""
        self.unverified_batches += 1
        self._ends[(group, stream)] = None

    def _put(self, group: str, stream: str, events: list[Event]) -> None:
        """Call PutLogEvents until the batch is stored, looking at the stream after any
        failure that leaves that unknown; re-create the stream once if it vanished.

        Raises:
            DeliveryError: refused, or out of attempts (``in_doubt`` when an attempt's
                outcome could not be told: the batch may be stored).
        """
        payload = [{"timestamp": event.timestamp_ms, "message": event.message} for event in events]
        attempt = 0
        recreated = unresolved = False
        while True:
            try:
                response = self._api.put_log_events(
                    logGroupName=group, logStreamName=stream, logEvents=payload
                )
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException" and not recreated:
                    recreated = True
                    self._recreate_stream(group, stream)
                    continue
                attempt += 1
                kind = failure_kind(exc)
                if kind == "doubt":
                    stored = self._stored_after(group, stream, events, exc)
                    if stored:
                        return
                    unresolved = unresolved or stored is None
                if kind == "refused" or attempt >= self._attempts:
                    raise self._edge(exc, "PutLogEvents", in_doubt=unresolved) from exc
                self._pause(attempt)
                continue
            start, stop = _accepted_range(response, len(events))
            self.rejected_events += len(events) - (stop - start)
            self._ends[(group, stream)] = after_accepted(
                self.stream_end(group, stream), events[start:stop]
            )
            return

    def _recreate_stream(self, group: str, stream: str) -> None:
        """Create ``stream`` again: it vanished (a refused PutLogEvents stored nothing).

        Raises:
            DeliveryError: it could not be created.
        """
        self._ready.discard((group, stream))
        try:
            self._create_stream(group, stream)
        except Exception as exc:
            raise self._edge(exc, "CreateLogStream") from exc

    def _stored_after(
        self, group: str, stream: str, events: list[Event], exc: Exception
    ) -> Optional[bool]:
        """Whether ``events`` are stored after PutLogEvents failed with ``exc`` leaving
        that unknown: True, False, or None when the stream cannot tell.

        Raises:
            DeliveryError: ``in_doubt``: the stream cannot be read now.
        """
        try:
            part = self._look_for(group, stream, events)
        except Exception as unread:
            raise self._edge(exc, "PutLogEvents", in_doubt=True) from unread
        if self._settled(group, stream, events, part):
            return True
        return None if part is None else False
