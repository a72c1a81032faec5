"""What is left to deliver of one run log: the content of a pending file (see
:mod:`cronsync.cloud.spool` for where the files are and how they are read and written).

:class:`Pending` says where the log is, where to send it, where delivery stopped, how
the stream ends as far as delivery knows (:class:`~cronsync.cloud.tailcheck.StreamEnd`)
and which batch is in flight (:class:`InFlight`), and checks every field of a file it
loads: the files are written by job users, so nothing in them is trusted unchecked.
Files written before the last two fields existed load with the stream's end unknown.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Optional

from cronsync.cloud.batch import MAX_BATCH_EVENTS, Position
from cronsync.cloud.spoolstart import PENDING_FORMAT
from cronsync.cloud.tailcheck import EMPTY_STREAM, StreamEnd
from cronsync.core import logformat


def _now_ms() -> int:
    """Return the wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class InFlight(NamedTuple):
    """A batch sent (or about to be) whose outcome is not known yet.

    It starts at the pending file's position; the events themselves are read again
    from the log when needed (they are not copied into the pending file).

    Attributes:
        events: how many events it holds.
        first_ms: its first event's timestamp as sent (the batcher's floor for it).
        after: the position just after it.
    """

    events: int
    first_ms: int
    after: Position


@dataclass(frozen=True)
class Pending:
    """What is left to deliver of one run log.

    Attributes:
        log_path: the run's local log.
        group, stream: the CloudWatch Logs group and stream to deliver to.
        offset, marker_stream, marker_epoch_ms, mid_line, skip_events: where to resume
            (see :class:`~cronsync.cloud.batch.Position`).
        finished: the run has ended; nothing more will be appended to the log.
        attempts: failed delivery attempts since the last delivered batch.
        last_error: the last failure (a one-line service or network message), or None.
        created_ms: when the run's delivery was set up (flush goes oldest first).
        stream_end: how the stream ends after what was delivered (a new run's stream
            is empty), or None when unknown (a file from before this field).
        in_flight: the batch sent whose outcome is not known yet, or None.
    """

    log_path: str
    group: str
    stream: str
    offset: int = 0
    marker_stream: str = logformat.OUT
    marker_epoch_ms: int = 0
    mid_line: bool = False
    skip_events: int = 0
    finished: bool = False
    attempts: int = 0
    last_error: Optional[str] = None
    created_ms: int = field(default_factory=_now_ms)
    stream_end: Optional[StreamEnd] = EMPTY_STREAM
    in_flight: Optional[InFlight] = None

    @property
    def position(self) -> Position:
        """Where delivery resumes."""
        return Position(
            self.offset, self.marker_stream, self.marker_epoch_ms, self.mid_line, self.skip_events
        )

    def at(self, position: Position) -> Pending:
        """Return this pending delivery moved on to ``position`` (failures cleared)."""
        return replace(
            self,
            offset=position.offset,
            marker_stream=position.stream,
            marker_epoch_ms=position.epoch_ms,
            mid_line=position.mid_line,
            skip_events=position.skip,
            attempts=0,
            last_error=None,
        )

    def delivered(self, position: Position, stream_end: Optional[StreamEnd]) -> Pending:
        """Return this pending delivery after a batch the service took: moved on to
        ``position``, the stream ending with ``stream_end``, nothing in flight."""
        return replace(self.at(position), stream_end=stream_end, in_flight=None)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object stored in the pending file."""
        data: dict[str, Any] = {"format": PENDING_FORMAT}
        data.update(self.__dict__)
        data["stream_end"] = None if self.stream_end is None else self.stream_end._asdict()
        flight = self.in_flight
        if flight is not None:
            data["in_flight"] = {**flight._asdict(), "after": flight.after._asdict()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pending:
        """Build from the JSON object of a pending file.

        Raises:
            ValueError: not a pending file of this format, or a field has a wrong type.
        """
        if data.get("format") != PENDING_FORMAT:
            raise ValueError("not a cronsync pending-delivery file")
        values = {name: _checked(data, name, kind) for name, kind in _FIELDS.items()}
        if values["marker_stream"] not in logformat.STREAMS:
            raise ValueError(f"marker_stream: unknown stream {values['marker_stream']!r}")
        if min(values["offset"], values["skip_events"], values["attempts"]) < 0:
            raise ValueError("offset, skip_events and attempts must not be negative")
        end, flight = data.get("stream_end"), data.get("in_flight")
        return cls(
            **values,
            stream_end=None if end is None else _stream_end(end),
            in_flight=None if flight is None else _in_flight(flight),
        )


_FIELDS: dict[str, type] = {
    "log_path": str,
    "group": str,
    "stream": str,
    "offset": int,
    "marker_stream": str,
    "marker_epoch_ms": int,
    "mid_line": bool,
    "skip_events": int,
    "finished": bool,
    "attempts": int,
    "last_error": str,
    "created_ms": int,
}


def _checked(data: Mapping[str, Any], name: str, kind: type) -> Any:
    """Return ``data[name]`` if it is a ``kind`` (``last_error`` may be None).

    Raises:
        ValueError: missing or of another type (a bool is not an int here).
    """
    value = data.get(name)
    if name == "last_error" and value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {kind.__name__}")
    return value


def _stream_end(data: Any) -> StreamEnd:
    """Return the ``stream_end`` of a pending file's JSON.

    Raises:
        ValueError: not an object of ``last_ms`` (an integer or null) and ``at_last``.
    """
    if not isinstance(data, dict):
        raise ValueError("stream_end: expected an object")
    last_ms = None if data.get("last_ms") is None else _checked(data, "last_ms", int)
    at_last = _checked(data, "at_last", int)
    if at_last < 0 or (last_ms is None) != (at_last == 0):
        raise ValueError("stream_end: at_last must count the events stamped last_ms")
    return StreamEnd(last_ms, at_last)


def _in_flight(data: Any) -> InFlight:
    """Return the ``in_flight`` of a pending file's JSON.

    Raises:
        ValueError: not an object of ``events``, ``first_ms`` and ``after`` (a position).
    """
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, dict):
        raise ValueError("in_flight: expected an object with a position 'after'")
    events = _checked(data, "events", int)
    if not 0 < events <= MAX_BATCH_EVENTS:
        raise ValueError(f"in_flight: events must be 1 to {MAX_BATCH_EVENTS}")
    kinds = {"offset": int, "stream": str, "epoch_ms": int, "mid_line": bool, "skip": int}
    position = Position(**{name: _checked(after, name, kind) for name, kind in kinds.items()})
    if position.stream not in logformat.STREAMS or min(position.offset, position.skip) < 0:
        raise ValueError("in_flight: not a valid position")
    return InFlight(events, _checked(data, "first_ms", int), position)
