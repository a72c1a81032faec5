"""The local log of one job run: job output as written, plus small marker lines.

A run's log is the job's output bytes, masked, line by line as the job wrote them,
with a *marker line* before each block that says which stream the block came from and
when it was read:

    \\x1fo 1764300600123          <- marker: stream o(ut), e(rr) or c(ronsync); epoch ms
    Aggregating 2025-06-01...     <- job output, unchanged
    \\x1fe 1764300600125
    warning: slow query

A line of output that itself starts with ``\\x1f`` is stored with the byte doubled, so a
marker can never be forged by a job. Markers cost a few bytes per block (not per line),
which keeps the shim's copying at disk speed. The file is also the durable spool for
CloudWatch Logs: the forwarder reads it from a saved offset, so nothing is held in
memory and nothing is lost while CloudWatch is unreachable.

Pure: bytes in, bytes or records out.
"""

from __future__ import annotations

from cronsync.core.frozen import Frozen

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Iterator

MARK = b"\x1f"
OUT = "o"
ERR = "e"
CRONSYNC = "c"
STREAMS = (OUT, ERR, CRONSYNC)
STREAM_NAMES = {OUT: "stdout", ERR: "stderr", CRONSYNC: "cronsync"}


def marker(stream: str, epoch_ms: int) -> bytes:
    """Return the marker line that starts a block of ``stream`` read at ``epoch_ms``."""
    return b"%s%s %d\n" % (MARK, stream.encode(), epoch_ms)


def escape_block(lines: bytes) -> bytes:
    """Double a leading ``\\x1f`` on every line of a block of complete lines."""
    if MARK not in lines:
        return lines
    escaped = lines.replace(b"\n" + MARK, b"\n" + MARK + MARK)
    return MARK + escaped if escaped.startswith(MARK) else escaped


def encode_block(stream: str, epoch_ms: int, lines: bytes) -> bytes:
    """Return a marker plus a block of complete lines (``lines`` ends with ``\\n``)."""
    return marker(stream, epoch_ms) + escape_block(lines)


class LogLine(Frozen):
    """One line of output read back from a run log.

    Attributes:
        stream: ``o``, ``e`` or ``c``.
        epoch_ms: when the block holding it was read.
        text: the line's bytes, without the newline.
        end: the offset just after this line in the file (a resume point).
    """

    # the fields, in order
    __slots__ = (  # noqa: RUF023
        "stream",
        "epoch_ms",
        "text",
        "end",
    )
    stream: str
    epoch_ms: int
    text: bytes
    end: int

    def __init__(self, stream: str, epoch_ms: int, text: bytes, end: int) -> None:
        self._fill(stream, epoch_ms, text, end)


def _parse_marker(line: bytes) -> tuple[str, int] | None:
    """Return (stream, epoch_ms) when ``line`` (without newline) is a marker."""
    if len(line) < 4 or line[:1] != MARK or line[1:2] == MARK:
        return None
    stream, _, stamp = line[1:].decode("ascii", "replace").partition(" ")
    if stream not in STREAMS or not stamp.isdigit():
        return None
    return stream, int(stamp)


def read_lines(
    data: bytes, offset: int = 0, stream: str = OUT, epoch_ms: int = 0
) -> Iterator[LogLine]:
    """Read the complete lines of a run log from ``offset``.

    Args:
        data: the log's bytes (or a tail of them that starts at a line boundary).
        offset: where to start in ``data``; must be at a line boundary.
        stream, epoch_ms: the marker in force at ``offset`` (a resume point saves
            them together with the offset).

    Yields:
        Each output line with the stream and time of its block; markers are consumed.
        A final line without its newline (still being written) is not yielded.
    """
    position = offset
    while True:
        newline = data.find(b"\n", position)
        if newline < 0:
            return
        line = data[position:newline]
        position = newline + 1
        found = _parse_marker(line)
        if found is not None:
            stream, epoch_ms = found
            continue
        if line[:2] == MARK + MARK:
            line = line[1:]
        yield LogLine(stream, epoch_ms, line, position)


def plain_text(data: bytes, with_streams: bool = False) -> bytes:
    """Return a run log as the job's output only (markers removed, escapes undone).

    With ``with_streams``, each stderr line is prefixed ``[stderr] `` and each line of
    cronsync's own ``[cronsync] ``.
    """
    prefixes = {OUT: b"", ERR: b"[stderr] ", CRONSYNC: b"[cronsync] "}
    out = []
    for line in read_lines(data):
        prefix = prefixes[line.stream] if with_streams or line.stream == CRONSYNC else b""
        out.append(prefix + line.text + b"\n")
    return b"".join(out)


def parse_marker(line: bytes) -> tuple[str, int] | None:
    """Return ``(stream, epoch_ms)`` when ``line`` (one line, no newline) is a marker.

    Returns:
        The marker's stream and time, or None for a line of output.
    """
    return _parse_marker(line)


def unescape_line(line: bytes) -> bytes:
    """Return one line of output (not a marker) as the job wrote it (undo the escape)."""
    return line[1:] if line[:2] == MARK + MARK else line
