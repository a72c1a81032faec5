"""The tail check, pure: ``cronsync.cloud.tailcheck`` (what a stream's end says about a
batch whose reply was lost) and ``cronsync.cloud.failures.failure_kind`` (which
failures call for it).

Reading pages goes through a page reader (the seam the sender passes in): here a list
of canned responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from cronsync.cloud.batch import Batcher, Event
from cronsync.cloud.failures import failure_kind
from cronsync.cloud.tailcheck import (
    EMPTY_STREAM,
    MAX_PAGES,
    StreamEnd,
    accepted_part,
    after_accepted,
    events_before,
    read_end,
    read_since,
)

T0 = 1_764_300_600_000
SAME = "waiting for the lock"


def events(*pairs: tuple[int, str]) -> list[Event]:
    return [Event(ms, message) for ms, message in pairs]


def same_line(count: int, ms: int = T0) -> list[Event]:
    return [Event(ms, SAME)] * count


# --- the stream's end ----------------------------------------------------------------


def test_the_end_counts_the_events_stamped_with_the_newest_timestamp() -> None:
    batch = events((T0, "a"), (T0 + 1, "b"), (T0 + 1, "c"))
    assert after_accepted(EMPTY_STREAM, batch) == StreamEnd(T0 + 1, 2)
    assert after_accepted(StreamEnd(T0 + 1, 2), events((T0 + 1, "d"))) == StreamEnd(T0 + 1, 3)
    assert after_accepted(StreamEnd(T0 + 1, 3), events((T0 + 2, "e"))) == StreamEnd(T0 + 2, 1)
    assert after_accepted(StreamEnd(T0, 1), []) == StreamEnd(T0, 1)


def test_an_unknown_end_stays_unknown_and_an_older_batch_makes_it_unknown() -> None:
    assert after_accepted(None, events((T0, "a"))) is None
    assert after_accepted(StreamEnd(T0 + 5, 1), events((T0, "a"))) is None


def test_events_before_a_batch_are_those_of_the_end_stamped_as_its_first() -> None:
    assert events_before(EMPTY_STREAM, T0) == 0
    assert events_before(StreamEnd(T0, 7), T0 + 1) == 0
    assert events_before(StreamEnd(T0, 7), T0) == 7
    assert events_before(StreamEnd(T0, 7), T0 - 1) is None  # below the floor: cannot tell
    assert events_before(None, T0) is None


# --- did the batch arrive? -----------------------------------------------------------


def test_a_batch_that_arrived_is_found_and_one_that_did_not_is_not() -> None:
    before = events((T0, "x"), (T0, "y"))
    batch = events((T0, "z"), (T0 + 1, "w"))
    assert accepted_part(before + batch, batch, before=2) == batch
    assert accepted_part(before, batch, before=2) == []


def test_the_same_line_many_times_is_told_apart_by_count_not_content() -> None:
    # 3,000 identical lines stored, a batch of 2,000 more of them in doubt
    batch = same_line(2_000)
    assert accepted_part(same_line(5_000), batch, before=3_000) == batch
    assert accepted_part(same_line(3_000), batch, before=3_000) == []


def test_equal_timestamps_may_come_back_in_another_order() -> None:
    batch = events((T0, "a"), (T0, "b"))  # sent after (T0, "old")
    assert accepted_part(events((T0, "b"), (T0, "old"), (T0, "a")), batch, before=1) == batch


def test_rejected_events_leave_the_stored_part_to_be_found() -> None:
    batch = events((T0, "a"), (T0 + 1, "b"), (T0 + 2, "c"), (T0 + 3, "d"))
    assert accepted_part(batch[2:], batch, before=0) == batch[2:]  # too old: the first two
    assert accepted_part(batch[:3], batch, before=0) == batch[:3]  # too new: the last one


@pytest.mark.parametrize(
    ("found", "before"),
    [
        (events((T0, "a")), 2),  # fewer than were there: not what the sender knows
        (events((T0, "a"), (T0, "b"), (T0, "c"), (T0, "d")), 0),  # more than the batch
        (events((T0, "someone else")), 0),  # not the batch's
    ],
)
def test_a_stream_the_sender_cannot_explain_is_cannot_tell(found: list[Event], before: int) -> None:
    assert accepted_part(found, events((T0, "a"), (T0, "b")), before) is None


# --- reading the stream --------------------------------------------------------------


class Pages:
    """Canned GetLogEvents responses, in order; records the parameters."""

    def __init__(self, *pages: Mapping[str, Any]) -> None:
        self.pages = list(pages)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **params: Any) -> Mapping[str, Any]:
        self.calls.append(params)
        return self.pages.pop(0)


def page(stamps: list[int], forward: str, backward: str = "b/0") -> dict[str, Any]:
    found = [{"timestamp": ms, "message": f"m{ms}"} for ms in stamps]
    return {"events": found, "nextForwardToken": forward, "nextBackwardToken": backward}


def test_read_since_follows_tokens_over_empty_pages_until_the_token_repeats() -> None:
    reader = Pages(page([T0, T0], "f/1"), page([], "f/2"), page([T0 + 1], "f/3"), page([], "f/3"))
    found = read_since(reader, "g", "s", T0, most=10)
    assert found == events((T0, f"m{T0}"), (T0, f"m{T0}"), (T0 + 1, f"m{T0 + 1}"))
    assert [call.get("nextToken") for call in reader.calls] == [None, "f/1", "f/2", "f/3"]
    assert {call["startTime"] for call in reader.calls} == {T0}
    assert all(call["startFromHead"] for call in reader.calls)


def test_read_since_gives_up_past_what_it_may_read() -> None:
    assert read_since(Pages(page([T0] * 3, "f/1")), "g", "s", T0, most=2) is None
    endless = Pages(*[page([T0], f"f/{n}") for n in range(MAX_PAGES + 1)])
    assert read_since(endless, "g", "s", T0, most=10**6) is None


def test_read_end_finds_the_newest_timestamp_and_counts_it() -> None:
    reader = Pages(page([T0 + 5], "f/9"), page([T0 + 5, T0 + 5], "f/1"), page([], "f/1"))
    assert read_end(reader, "g", "s") == StreamEnd(T0 + 5, 2)
    assert reader.calls[0]["startFromHead"] is False and reader.calls[1]["startTime"] == T0 + 5


def test_read_end_of_an_empty_stream() -> None:
    assert read_end(Pages(page([], "f/0", "b/0"), page([], "f/0", "b/0")), "g", "s") == (
        EMPTY_STREAM
    )


# --- which failures call for a look ----------------------------------------------------


def client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutLogEvents")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (EndpointConnectionError(endpoint_url="http://x"), "retry"),  # refused: not sent
        (ConnectTimeoutError(endpoint_url="http://x"), "retry"),
        (client_error("ThrottlingException", 400), "retry"),
        (ConnectionClosedError(endpoint_url="http://x"), "doubt"),  # after sending
        (ReadTimeoutError(endpoint_url="http://x"), "doubt"),
        (client_error("ServiceUnavailableException", 503), "doubt"),
        (ConnectionResetError(), "doubt"),
        (client_error("InvalidParameterException", 400), "refused"),
        (client_error("AccessDeniedException", 400), "refused"),
        (NoCredentialsError(), "refused"),
    ],
)
def test_failure_kinds(error: Exception, kind: str) -> None:
    assert failure_kind(error) == kind


# --- the floor -------------------------------------------------------------------------


def test_the_batcher_keeps_events_at_or_above_the_streams_newest_timestamp() -> None:
    batcher: Batcher[Optional[int]] = Batcher(floor_ms=T0 + 10)
    for ms in (T0, T0 + 20, T0 + 15):
        batcher.add(Event(ms, "m"), None)
    batch = batcher.flush()
    assert batch is not None
    assert [event.timestamp_ms for event in batch.events] == [T0 + 10, T0 + 20, T0 + 20]
