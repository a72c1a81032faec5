"""The pure CloudWatch Logs batcher: ``cronsync.cloud.batch``.

Every service limit is checked exactly at its boundary and one past it, on the
batcher's own output (moto enforces none of the batch limits).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.cloud.batch import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    MAX_EVENT_BYTES,
    MAX_MESSAGE_BYTES,
    Batcher,
    Event,
    Piece,
    Position,
    batch_events,
    line_events,
    message_size,
    scan_pieces,
    split_message,
    text_events,
    utf8_cut,
)
from cronsync.core import logformat

T0 = 1_764_300_600_000
HOUR_MS = 3_600_000


def sizes(batch: list[Event]) -> int:
    return sum(message_size(event.message) + EVENT_OVERHEAD for event in batch)


def assert_within_limits(batches: list[list[Event]]) -> None:
    for batch in batches:
        assert 1 <= len(batch) <= MAX_BATCH_EVENTS
        assert sizes(batch) <= MAX_BATCH_BYTES
        stamps = [event.timestamp_ms for event in batch]
        assert stamps == sorted(stamps)
        assert stamps[-1] - stamps[0] <= MAX_BATCH_SPAN_MS
        for event in batch:
            assert event.message
            assert message_size(event.message) + EVENT_OVERHEAD <= MAX_EVENT_BYTES


# --- limits as numbers --------------------------------------------------------------


def test_limits_are_the_services() -> None:
    assert (MAX_EVENT_BYTES, MAX_MESSAGE_BYTES) == (262_144, 262_118)
    assert (MAX_BATCH_EVENTS, MAX_BATCH_BYTES) == (10_000, 1_048_576)
    assert MAX_BATCH_SPAN_MS == 24 * HOUR_MS


# --- events from lines --------------------------------------------------------------


def test_prefixes_by_stream() -> None:
    assert text_events("o", T0, b"out")[0].message == "out"
    assert text_events("e", T0, b"err")[0].message == "[stderr] err"
    assert text_events("c", T0, b"note")[0].message == "[cronsync] note"


def test_empty_line_is_one_space_and_prefixed_empty_lines_keep_the_prefix() -> None:
    assert text_events("o", T0, b"") == [Event(T0, " ")]
    assert text_events("e", T0, b"") == [Event(T0, "[stderr] ")]


def test_invalid_utf8_and_binary_become_replacement_characters() -> None:
    assert text_events("o", T0, b"caf\xe9 ok")[0].message == "caf\ufffd ok"
    junk = bytes(range(256)).replace(b"\n", b"")
    (event,) = text_events("o", T0, junk)
    assert event.message == junk.decode("utf-8", "replace")


def test_line_events_uses_the_lines_stream_and_time() -> None:
    line = logformat.LogLine("e", T0 + 5, b"boom", 10)
    assert line_events(line) == [Event(T0 + 5, "[stderr] boom")]


def test_continuation_piece_has_no_prefix() -> None:
    assert text_events("e", T0, b"rest", first=False) == [Event(T0, "rest")]


# --- the per-event limit: split, never dropped --------------------------------------


def test_message_at_the_event_limit_is_one_event() -> None:
    assert split_message("a" * 262_118) == ["a" * 262_118]
    assert len(text_events("o", T0, b"a" * 262_118)) == 1


def test_message_one_byte_past_the_event_limit_is_two_events() -> None:
    events = text_events("o", T0, b"a" * 262_119)
    assert [len(event.message) for event in events] == [262_118, 1]
    assert "".join(event.message for event in events) == "a" * 262_119


def test_prefix_counts_towards_the_limit() -> None:
    events = text_events("e", T0, b"a" * (262_118 - len("[stderr] ")))
    assert len(events) == 1
    events = text_events("e", T0, b"a" * (262_119 - len("[stderr] ")))
    assert [message_size(event.message) for event in events] == [262_118, 1]


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_multibyte_character_at_the_split_point_is_not_cut(char: str) -> None:
    width = len(char.encode())
    fits = "a" * (262_118 - width) + char
    assert split_message(fits) == [fits]
    straddles = "a" * (262_118 - width + 1) + char
    assert split_message(straddles) == ["a" * (262_118 - width + 1), char]


def test_long_line_splits_into_full_sized_parts() -> None:
    line = ("é" * 150_000).encode()  # 300,000 bytes
    events = text_events("o", T0, line)
    assert [message_size(event.message) for event in events] == [262_118, 37_882]
    assert "".join(event.message for event in events).encode() == line


def test_utf8_cut_in_non_utf8_data_cuts_at_the_limit() -> None:
    assert utf8_cut(b"\x80" * 10, 5) == 5
    assert utf8_cut(b"ab\xc3\xa9cd", 3) == 2
    assert utf8_cut(b"ab\xc3\xa9cd", 4) == 4


@given(st.text(min_size=1, max_size=60))
def test_split_parts_fit_and_concatenate(text: str) -> None:
    parts = split_message(text, limit=7)
    assert "".join(parts) == text
    assert all(message_size(part) <= 7 and part for part in parts)


# --- the batch limits ---------------------------------------------------------------


def test_10000_events_are_one_batch() -> None:
    batches = list(batch_events(Event(T0, "x") for _ in range(10_000)))
    assert [len(batch) for batch in batches] == [10_000]


def test_10001_events_are_two_batches() -> None:
    batches = list(batch_events(Event(T0, "x") for _ in range(10_001)))
    assert [len(batch) for batch in batches] == [10_000, 1]


def test_batch_of_exactly_1048576_bytes_fits() -> None:
    events = [Event(T0, "a" * MAX_MESSAGE_BYTES) for _ in range(4)]  # 4 * 262,144
    batches = list(batch_events(events))
    assert [sizes(batch) for batch in batches] == [1_048_576]


def test_batch_one_byte_over_1048576_is_split() -> None:
    events = [Event(T0, "a" * MAX_MESSAGE_BYTES) for _ in range(3)]
    events.append(Event(T0, "a" * (MAX_MESSAGE_BYTES - 1)))  # total 1,048,575
    assert len(list(batch_events(events))) == 1
    events[-1] = Event(T0, "a" * MAX_MESSAGE_BYTES)
    events.append(Event(T0, "b"))  # total 1,048,576 + 27
    batches = list(batch_events(events))
    assert [len(batch) for batch in batches] == [4, 1]
    assert batches[1] == [Event(T0, "b")]


def test_bytes_count_utf8_size_not_characters() -> None:
    wide = "é" * (MAX_MESSAGE_BYTES // 2)  # 262,118 bytes, 131,059 characters
    batches = list(batch_events([Event(T0, wide)] * 5))
    assert [len(batch) for batch in batches] == [4, 1]


def test_event_at_262144_bytes_is_accepted_and_one_more_byte_refused() -> None:
    batcher: Batcher[int] = Batcher()
    assert batcher.add(Event(T0, "a" * 262_118), 1) is None
    with pytest.raises(ValueError, match="262145"):
        batcher.add(Event(T0, "a" * 262_119), 2)


def test_span_of_exactly_24_hours_is_one_batch() -> None:
    events = [Event(T0, "first"), Event(T0 + MAX_BATCH_SPAN_MS, "last")]
    assert list(batch_events(events)) == [events]


def test_span_one_millisecond_past_24_hours_starts_a_new_batch() -> None:
    events = [Event(T0, "first"), Event(T0 + MAX_BATCH_SPAN_MS + 1, "last")]
    assert list(batch_events(events)) == [[events[0]], [events[1]]]


def test_25_hour_spread_is_cut_into_batches_within_24_hours() -> None:
    events = [Event(T0 + minute * 60_000, f"m{minute}") for minute in range(25 * 60 + 1)]
    batches = list(batch_events(events))
    assert len(batches) == 2
    assert batches[0][0].timestamp_ms == T0
    assert batches[0][-1].timestamp_ms == T0 + MAX_BATCH_SPAN_MS
    assert [event for batch in batches for event in batch] == events
    assert_within_limits(batches)


def test_timestamps_are_clamped_non_decreasing() -> None:
    events = [Event(T0 + 5, "a"), Event(T0 + 3, "b"), Event(T0 + 7, "c"), Event(T0, "d")]
    (batch,) = batch_events(events)
    assert [event.timestamp_ms for event in batch] == [T0 + 5, T0 + 5, T0 + 7, T0 + 7]
    assert [event.message for event in batch] == ["a", "b", "c", "d"]


def test_batch_reports_the_tag_of_its_last_event() -> None:
    batcher: Batcher[str] = Batcher(max_events=2)
    assert batcher.add(Event(T0, "a"), "after-a") is None
    assert batcher.add(Event(T0, "b"), "after-b") is None
    closed = batcher.add(Event(T0, "c"), "after-c")
    assert closed is not None and closed.tag == "after-b"
    last = batcher.flush()
    assert last is not None and (last.events, last.tag) == ([Event(T0, "c")], "after-c")
    assert batcher.flush() is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3 * HOUR_MS, 30 * HOUR_MS), st.integers(1, 400_000)),
        max_size=25,
    )
)
def test_any_lines_give_batches_within_every_limit(lines: list[tuple[int, int]]) -> None:
    events = [e for delta, size in lines for e in text_events("o", T0 + delta, b"x" * size)]
    batches = list(batch_events(events))
    assert_within_limits(batches)
    assert [e.message for batch in batches for e in batch] == [e.message for e in events]


# --- scanning a run log -------------------------------------------------------------


def log_of(*blocks: tuple[str, int, bytes]) -> bytes:
    return b"".join(logformat.encode_block(stream, ms, lines) for stream, ms, lines in blocks)


def texts(pieces: list[Piece]) -> list[tuple[str, int, bytes]]:
    return [(p.start.stream, p.start.epoch_ms, p.text) for p in pieces]


def test_scan_reads_markers_and_unescapes() -> None:
    data = log_of(("o", T0, b"one\n\x1fo 5\n"), ("e", T0 + 1, b"two\n\n"))
    pieces = list(scan_pieces(data, Position(), complete=False))
    assert texts(pieces) == [
        ("o", T0, b"one"),
        ("o", T0, b"\x1fo 5"),  # output that looks like a marker stays output
        ("e", T0 + 1, b"two"),
        ("e", T0 + 1, b""),
    ]
    assert pieces[-1].after.offset == len(data)


def test_scan_leaves_a_partial_last_line_unless_complete() -> None:
    data = log_of(("o", T0, b"done\n")) + b"half"
    assert texts(list(scan_pieces(data, Position(), complete=False))) == [("o", T0, b"done")]
    pieces = list(scan_pieces(data, Position(), complete=True))
    assert texts(pieces) == [("o", T0, b"done"), ("o", T0, b"half")]
    assert pieces[-1].after.offset == len(data)


def test_scan_ignores_a_trailing_marker_without_newline() -> None:
    data = log_of(("o", T0, b"done\n")) + logformat.marker("e", T0 + 9)[:-1]
    assert texts(list(scan_pieces(data, Position(), complete=True))) == [("o", T0, b"done")]


def test_scan_cuts_a_long_line_into_pieces_at_utf8_boundaries() -> None:
    line = "é".encode() * 7  # 14 bytes
    data = log_of(("e", T0, line + b"\nnext\n"))
    pieces = list(scan_pieces(data, Position(), complete=False, max_piece=5))
    e2 = "éé".encode()
    assert [p.text for p in pieces] == [e2, e2, e2, "é".encode(), b"next"]
    assert [p.start.mid_line for p in pieces] == [False, True, True, True, False]
    messages = [e.message for p in pieces for e in p.events()]
    assert messages == ["[stderr] éé", "éé", "éé", "é", "[stderr] next"]


def test_scan_waits_for_more_of_a_long_line_without_newline() -> None:
    data = log_of(("o", T0, b"x\n")) + b"y" * 12
    pieces = list(scan_pieces(data, Position(), complete=False, max_piece=5))
    # 12 bytes are known: two whole pieces; the last 2 wait (the line may go on).
    assert [p.text for p in pieces] == [b"x", b"yyyyy", b"yyyyy"]
    assert pieces[-1].after.mid_line


def test_resuming_from_any_position_gives_the_same_rest() -> None:
    data = log_of(("o", T0, b"a\n\x1f\x1fb\n" + b"z" * 13 + b"\n"), ("c", T0 + 2, b"end\n"))
    everything = list(scan_pieces(data, Position(), complete=True, max_piece=4))
    assert any(p.after.mid_line for p in everything)
    for index, piece in enumerate(everything):
        tail = data[piece.after.offset :]
        resumed = list(scan_pieces(tail, piece.after, complete=True, max_piece=4))
        rest = everything[index + 1 :]
        assert texts(resumed) == texts(rest)
        assert [p.after for p in resumed] == [p.after for p in rest]


def test_first_piece_keeps_the_skip_of_the_resume_point() -> None:
    data = log_of(("o", T0, b"a\nb\n"))
    start = Position(len(logformat.marker("o", T0)), "o", T0, skip=1)
    pieces = list(scan_pieces(data[start.offset :], start, complete=False))
    assert [p.start.skip for p in pieces] == [1, 0]
