"""Whether a batch whose outcome is unknown is in its stream: the tail check.

``PutLogEvents`` has no idempotency key. When a call fails after the request may have
reached the service (the connection closed after sending, a read timeout, a server
error), or the process dies between the call and saving the position, the batch may or
may not be stored; resending it blindly stores up to 10,000 events twice. The sender
looks at the stream's end first and sends only what is not there.

What makes that exact is what the sender knows about its own stream, a
:class:`StreamEnd`: the newest timestamp in it and how many events carry it. Batches
go out with non-decreasing timestamps, never older than the stream's newest (the
batcher's floor), and the service returns a stream's events by timestamp. So the
events stamped at or after a batch's first timestamp are those of the stream's end
that carry that very timestamp (known in number) and then the batch's accepted
events: counting them (``GetLogEvents`` from that timestamp) says whether the batch
arrived, however often the same line appears in the log, and their content is checked
as well (order aside: the service promises none among equal timestamps).

The service stores a batch's accepted events all or none; the events it rejects (too
old, expired, too new) are a prefix and a suffix of the batch by timestamp.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional, Protocol

from cronsync.cloud.batch import Event

# GetLogEvents returns at most this many events a page.
PAGE_EVENTS = 10_000
# Pages read for one look at a stream: a same-millisecond run of events longer than
# this reads as "cannot tell" rather than a long scan.
MAX_PAGES = 100
# The longest same-timestamp run at a stream's end that learning it counts.
MAX_LEARNED_RUN = 100_000


class StreamEnd(NamedTuple):
    """What a stream ends with: its newest timestamp and how many events carry it.

    Attributes:
        last_ms: the newest timestamp in the stream, or None when it holds no event.
        at_last: how many of its events are stamped ``last_ms`` (0 when empty).
    """

    last_ms: Optional[int]
    at_last: int


EMPTY_STREAM = StreamEnd(None, 0)


class PageReader(Protocol):
    """Calls ``GetLogEvents`` with these parameters and returns its response."""

    def __call__(self, **params: Any) -> Mapping[str, Any]: ...


def after_accepted(end: Optional[StreamEnd], accepted: Sequence[Event]) -> Optional[StreamEnd]:
    """Return the end of a stream that ended with ``end`` once ``accepted`` is stored.

    Args:
        end: the stream's end before, or None when unknown.
        accepted: the events the service stored, in order (non-decreasing timestamps).

    Returns:
        The new end; None when unknown, or when the events start before ``end`` (the
        stream's order is then not the order they were sent in).
    """
    if not accepted:
        return end
    if end is None or (end.last_ms is not None and accepted[0].timestamp_ms < end.last_ms):
        return None
    last = accepted[-1].timestamp_ms
    count = 0
    for event in reversed(accepted):
        if event.timestamp_ms != last:
            break
        count += 1
    return StreamEnd(last, count + (end.at_last if end.last_ms == last else 0))


def events_before(end: Optional[StreamEnd], first_ms: int) -> Optional[int]:
    """Return how many events stamped ``first_ms`` or later a stream ending with ``end``
    holds (before a batch starting at ``first_ms`` is stored).

    Returns:
        The number; None when ``end`` is unknown or newer than ``first_ms`` (a batch
        the floor did not keep after the stream's end).
    """
    if end is None:
        return None
    if end.last_ms is None or first_ms > end.last_ms:
        return 0
    return end.at_last if first_ms == end.last_ms else None


def accepted_part(
    found: Sequence[Event], batch: Sequence[Event], before: int
) -> Optional[Sequence[Event]]:
    """Return the part of ``batch`` that the stream holds.

    Args:
        found: every event of the stream stamped at or after the batch's first
            timestamp, as read after the batch was sent (see :func:`read_since`).
        batch: the batch as it was sent.
        before: how many of those events the stream held before (see
            :func:`events_before`).

    Returns:
        The stored part (the batch without the events the service rejected), empty
        when the batch did not arrive; None when ``found`` cannot be explained by this
        batch arriving or not (events unknown to the sender, or fewer than before).
    """
    extra = len(found) - before
    if extra < 0 or extra > len(batch):
        return None
    if extra == 0:
        return batch[:0]
    have = Counter(found)
    # rejected events are the oldest (too old, expired) or the newest (too new)
    for start in dict.fromkeys((len(batch) - extra, 0)):
        part = batch[start : start + extra]
        if not Counter(part) - have:
            return part
    return None


def read_since(
    get_page: PageReader, group: str, stream: str, start_ms: int, most: int
) -> Optional[list[Event]]:
    """Return the events of ``group``/``stream`` stamped ``start_ms`` or later, in the
    order the service returns them.

    Args:
        get_page: calls ``GetLogEvents``.
        most: how many events to read at most.

    Returns:
        The events; None when there are more than ``most`` (or than ``MAX_PAGES``
        pages hold).

    Raises:
        Whatever ``get_page`` raises (a missing stream, the network).
    """
    events: list[Event] = []
    token: Optional[str] = None
    params: dict[str, Any] = {
        "logGroupName": group,
        "logStreamName": stream,
        "startTime": start_ms,
        "startFromHead": True,
        "limit": PAGE_EVENTS,
    }
    for _page in range(MAX_PAGES):
        page = get_page(**params, **({"nextToken": token} if token else {}))
        events += [Event(item["timestamp"], item["message"]) for item in page.get("events", [])]
        if len(events) > most:
            return None
        following = page.get("nextForwardToken")
        if not following or following == token:  # the same token: the stream's end
            return events
        token = following
    return None


def read_end(get_page: PageReader, group: str, stream: str) -> Optional[StreamEnd]:
    """Learn how ``group``/``stream`` ends now (when the sender does not know).

    Returns:
        Its end; None when its newest timestamp is shared by more than
        ``MAX_LEARNED_RUN`` events, or the newest event cannot be found.

    Raises:
        Whatever ``get_page`` raises (a missing stream, the network).
    """
    params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "limit": 1}
    token: Optional[str] = None
    for _page in range(MAX_PAGES):
        page = get_page(**params, startFromHead=False, **({"nextToken": token} if token else {}))
        newest = page.get("events") or []
        if newest:
            last = int(newest[-1]["timestamp"])
            found = read_since(get_page, group, stream, last, MAX_LEARNED_RUN)
            return None if found is None else StreamEnd(last, len(found))
        earlier = page.get("nextBackwardToken")
        if not earlier or earlier == token:
            return EMPTY_STREAM
        token = earlier
    return None
