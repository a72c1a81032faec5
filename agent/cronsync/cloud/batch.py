"""CloudWatch Logs events and batches made from a run log, within the service's limits.

Pure: bytes in, events and batches out. Two steps:

* :func:`scan_pieces` reads a run log (see :mod:`cronsync.core.logformat`) from a resume
  :class:`Position` and yields its output as :class:`Piece` s, each with the position
  just after it. Only complete lines are yielded while the log may still grow; a line
  longer than ``MAX_PIECE`` bytes comes in several pieces, so memory stays bounded.
* :func:`text_events` turns a piece into :class:`Event` s (UTF-8 with replacement
  characters, ``[stderr] `` / ``[cronsync] `` prefixes, an empty line as one space, an
  over-long message split at character boundaries) and a :class:`Batcher` groups events
  into ``PutLogEvents`` batches.

The service limits (moto enforces none of the batch ones): at most 10,000 events and
1,048,576 bytes per batch, each event counting its UTF-8 size plus 26 bytes; at most
262,144 bytes per event (the 26 included); events in chronological order; a batch
spans at most 24 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, NamedTuple, Optional, TypeVar

from cronsync.core import logformat

EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 262_144
MAX_MESSAGE_BYTES = MAX_EVENT_BYTES - EVENT_OVERHEAD
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_SPAN_MS = 24 * 60 * 60 * 1000
# Raw bytes of one piece of a very long line: a whole number of maximal messages, so
# a long valid UTF-8 line is cut only where the message limit would cut it anyway.
MAX_PIECE = 4 * MAX_MESSAGE_BYTES
# Longer than any marker line ("\x1f" + stream + " " + epoch ms); longer lines are output.
_MAX_MARKER = 40

PREFIXES = {logformat.OUT: "", logformat.ERR: "[stderr] ", logformat.CRONSYNC: "[cronsync] "}

T = TypeVar("T")


# Event, Position and Piece are NamedTuples rather than frozen dataclasses: a large log
# makes millions of them, and a NamedTuple is three times cheaper to build.


class Event(NamedTuple):
    """One CloudWatch Logs event: milliseconds since the epoch and a non-empty message."""

    timestamp_ms: int
    message: str


def message_size(message: str) -> int:
    """Return the UTF-8 size of ``message`` in bytes (without the per-event overhead)."""
    return len(message) if message.isascii() else len(message.encode("utf-8", "replace"))


def utf8_cut(data: bytes, limit: int, start: int = 0) -> int:
    """Return where to cut ``data[start:]`` at most ``limit`` bytes in, not inside a char.

    Args:
        data: bytes longer than ``start + limit``.
        limit: the most bytes the part before the cut may hold.
        start: where the part starts.

    Returns:
        An index into ``data``: backs up over at most three UTF-8 continuation bytes;
        in data that is not UTF-8 (no lead byte found) it is ``start + limit`` itself.
    """
    cut = start + limit
    lowest = max(start + 1, cut - 3)
    while cut > lowest and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut if data[cut] & 0xC0 != 0x80 else start + limit


def split_message(message: str, limit: int = MAX_MESSAGE_BYTES) -> list[str]:
    """Split ``message`` into parts of at most ``limit`` UTF-8 bytes, never inside a char.

    Returns:
        The parts in order; their concatenation is ``message``. One part when it fits.
    """
    if len(message) * 4 <= limit:
        return [message]
    data = message.encode("utf-8", "replace")
    if len(data) <= limit:
        return [message]
    parts = []
    while len(data) > limit:
        cut = utf8_cut(data, limit)
        parts.append(data[:cut].decode("utf-8", "replace"))
        data = data[cut:]
    parts.append(data.decode("utf-8", "replace"))
    return parts


def text_events(stream: str, epoch_ms: int, text: bytes, first: bool = True) -> list[Event]:
    """Return the events for one line (or one piece of a long line) of a run log.

    Args:
        stream: ``o``, ``e`` or ``c`` (see :mod:`cronsync.core.logformat`).
        epoch_ms: the time of the line's block.
        text: the line's bytes, any bytes at all (decoded with replacement characters).
        first: whether ``text`` starts the line; only the start gets the stream prefix.

    Returns:
        One event, or several when the message exceeds ``MAX_MESSAGE_BYTES`` (their
        messages concatenated are the prefixed line). An empty line becomes ``" "``.
    """
    message = text.decode("utf-8", "replace")
    if first:
        message = PREFIXES.get(stream, "") + message
    if not message:
        message = " "
    if len(message) * 4 <= MAX_MESSAGE_BYTES:  # surely fits: skip measuring it
        return [Event(epoch_ms, message)]
    return [Event(epoch_ms, part) for part in split_message(message)]


def line_events(line: logformat.LogLine) -> list[Event]:
    """Return the events for one :class:`~cronsync.core.logformat.LogLine`."""
    return text_events(line.stream, line.epoch_ms, line.text)


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Events for one ``PutLogEvents`` call, and the tag of the last one."""

    events: list[Event]
    tag: T


class Batcher(Generic[T]):
    """Groups events into batches within the service limits, in order.

    Timestamps are clamped to be non-decreasing (a clock stepping back must not make
    the service refuse a batch), and never below ``floor_ms``: a delivery resuming a
    stream passes the newest timestamp already in it, so the stream stays in the order
    it was sent in (see :mod:`cronsync.cloud.tailcheck`). Each event carries a tag (a
    resume position) and a batch reports the tag of its last event.

    Args:
        max_events, max_bytes, max_span_ms: the limits (defaults: the service's).
        floor_ms: the lowest timestamp to give an event, or None for no floor.
    """

    _tag: T

    def __init__(
        self,
        max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_BATCH_BYTES,
        max_span_ms: int = MAX_BATCH_SPAN_MS,
        *,
        floor_ms: Optional[int] = None,
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_span_ms = max_span_ms
        self._events: list[Event] = []
        self._bytes = 0
        self._first_ms = 0
        self._floor_ms = floor_ms

    def add(self, event: Event, tag: T) -> Optional[Batch[T]]:
        """Add ``event``; return the batch it closed when it did not fit.

        Returns:
            The previous batch, complete, when ``event`` had to start a new one; else None.

        Raises:
            ValueError: the event is larger than ``MAX_EVENT_BYTES`` (split it first).
        """
        size = message_size(event.message) + EVENT_OVERHEAD
        if size > MAX_EVENT_BYTES:
            raise ValueError(f"event of {size} bytes exceeds {MAX_EVENT_BYTES}")
        stamp = event.timestamp_ms
        if self._floor_ms is not None and stamp < self._floor_ms:
            stamp = self._floor_ms
            event = Event(stamp, event.message)
        self._floor_ms = stamp
        closed = None
        if self._events and (
            len(self._events) >= self.max_events
            or self._bytes + size > self.max_bytes
            or stamp - self._first_ms > self.max_span_ms
        ):
            closed = self.flush()
        if not self._events:
            self._first_ms = stamp
        self._events.append(event)
        self._bytes += size
        self._tag = tag
        return closed

    def flush(self) -> Optional[Batch[T]]:
        """Close and return the current batch, or None when it is empty."""
        if not self._events:
            return None
        batch = Batch(self._events, self._tag)
        self._events = []
        self._bytes = 0
        return batch


def batch_events(events: Iterable[Event]) -> Iterator[list[Event]]:
    """Group ``events`` into service-sized batches (see :class:`Batcher`), in order."""
    batcher: Batcher[None] = Batcher()
    for event in events:
        closed = batcher.add(event, None)
        if closed is not None:
            yield closed.events
    last = batcher.flush()
    if last is not None:
        yield last.events


class Position(NamedTuple):
    """A resume point in a run log.

    Attributes:
        offset: byte offset in the log (a line start, or inside a long line).
        stream, epoch_ms: the marker in force at ``offset``.
        mid_line: ``offset`` is inside a line, after a piece of it.
        skip: events of the piece starting at ``offset`` that were already delivered
            (a piece can yield several events and a batch can end among them).
    """

    offset: int = 0
    stream: str = logformat.OUT
    epoch_ms: int = 0
    mid_line: bool = False
    skip: int = 0


class Piece(NamedTuple):
    """A line of output, or a piece of a long one, with where it starts and ends."""

    start: Position
    after: Position
    text: bytes

    def events(self) -> list[Event]:
        """Return this piece's events (see :func:`text_events`)."""
        start = self.start
        return text_events(start.stream, start.epoch_ms, self.text, not start.mid_line)


def scan_pieces(
    data: bytes, start: Position, *, complete: bool, max_piece: int = MAX_PIECE
) -> Iterator[Piece]:
    """Yield the pieces of output in ``data``, a part of a run log starting at ``start``.

    Args:
        data: the log's bytes from ``start.offset`` on (as many as were read).
        start: where ``data`` starts; its ``skip`` is kept for the first piece only.
        complete: ``data`` ends the log and nothing more will be appended, so a last
            line without its newline is output too.
        max_piece: the longest piece (tests pass small values).

    Yields:
        Each piece, in order; markers are consumed. A line longer than ``max_piece``
        comes in pieces (cut at UTF-8 boundaries); an incomplete last line is left
        (unless ``complete``) for a later call to resume at the last ``after``.
    """
    state, pos, end, base = start, 0, len(data), start.offset
    window = max(max_piece, _MAX_MARKER) + 1
    while pos < end:
        newline = data.find(b"\n", pos, pos + window)
        if 0 <= newline - pos <= max_piece and not state.mid_line:  # the common case
            raw, after = data[pos:newline], newline + 1
            found = _marker(raw) if raw[:1] == logformat.MARK else None
            if found is not None:
                state, pos = Position(base + after, found[0], found[1]), after
                continue
            next_state = Position(base + after, state.stream, state.epoch_ms)
            yield Piece(state, next_state, logformat.unescape_line(raw))
            state, pos = next_state, after
            continue
        found_piece = _long_line_piece(data, pos, newline, state, complete, max_piece)
        if found_piece is None:
            return
        next_state, text = found_piece
        if text is not None:
            yield Piece(state, next_state, text)
        state, pos = next_state, next_state.offset - base


def _long_line_piece(
    data: bytes, pos: int, newline: int, state: Position, complete: bool, max_piece: int
) -> Optional[tuple[Position, Optional[bytes]]]:
    """Read what is at ``pos`` when it is not a whole short line (see scan_pieces).

    That is: the rest of a long line already cut (``state.mid_line``), a line too long
    for one piece, or the last line of a complete log without its newline.

    Returns:
        The position after it and its text (None for a marker, or for the bare newline
        ending a cut line: nothing to output); None when more data is needed first.
    """
    base = state.offset - pos
    marker = None
    if newline >= 0 and not state.mid_line:
        marker = _marker(data[pos:newline])
    if newline >= 0 and (newline - pos <= max_piece or marker is not None):
        cut, after, mid_line = newline, newline + 1, False
    elif len(data) - pos > max_piece:
        cut = after = utf8_cut(data, max_piece, pos)
        mid_line = True
    elif complete:
        cut = after = len(data)
        mid_line = False
        marker = None if state.mid_line else _marker(data[pos:cut])
    else:
        return None
    if marker is not None:
        return Position(base + after, marker[0], marker[1]), None
    raw = data[pos:cut]
    if state.mid_line and not raw:
        return Position(base + after, state.stream, state.epoch_ms), None
    text = raw if state.mid_line else logformat.unescape_line(raw)
    return Position(base + after, state.stream, state.epoch_ms, mid_line), text


def _marker(raw: bytes) -> Optional[tuple[str, int]]:
    """Return the marker in ``raw`` (a whole line), cheaply rejecting output lines."""
    if raw[:1] != logformat.MARK or len(raw) > _MAX_MARKER:
        return None
    return logformat.parse_marker(raw)
