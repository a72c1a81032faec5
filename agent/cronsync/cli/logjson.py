"""``cronsync logs JOB --json``: a run log as one JSON document, streamed.

The document is ``{"format": "cronsync.logs/1", "job", "run_id", "lines": [{"stream":
"stdout" | "stderr" | "cronsync", "time": ISO 8601 UTC or null, "text"}]}``; it is
written line by line as the log is read, so a big log never sits in memory whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import BinaryIO, Optional

from cronsync.core.logformat import OUT, STREAM_NAMES, parse_marker, unescape_line

LOGS_FORMAT = "cronsync.logs/1"
_CHUNK = 1 << 20
_LONGEST_LINE = 4 << 20  # a longer "line" (no newline in a forged log) is cut


def _lines(fd: int) -> Iterator[tuple[str, Optional[int], bytes]]:
    """Yield ``(stream, epoch_ms or None, line)`` for each line of output of a run log
    read from ``fd`` (markers consumed, escapes undone), in order."""
    stream, stamp, pending = OUT, None, b""
    while True:
        chunk = os.read(fd, _CHUNK)
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop() if chunk else b""
        if chunk and len(pending) > _LONGEST_LINE:
            lines.append(pending)
            pending = b""
        for line in lines if chunk else [line for line in lines if line]:
            marker = parse_marker(line)
            if marker is not None:
                stream, stamp = marker
                continue
            yield stream, stamp, unescape_line(line)
        if not chunk:
            return


def _time(epoch_ms: Optional[int]) -> Optional[str]:
    """A marker's time as ISO 8601 UTC; None without one, or for one no clock can show
    (a marker holds any digits when the log was rewritten by hand)."""
    if epoch_ms is None:
        return None
    try:
        when = datetime.fromtimestamp(epoch_ms / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return when.isoformat(timespec="milliseconds")


def write_log_json(fd: int, out: BinaryIO, job: str, run_id: str) -> None:
    """Write the run log read from ``fd`` to ``out`` as the ``cronsync.logs/1`` document.

    Args:
        fd: the opened log (read to its end, not closed).
        out: where the document goes (bytes).
        job: the job's name.
        run_id: the run's id.

    Text that is not UTF-8 is decoded with U+FFFD for each bad byte (never dropped); a
    marker time out of the clock's range is null.

    Raises:
        OSError: reading the log or writing ``out`` failed.
    """
    head = {"format": LOGS_FORMAT, "job": job, "run_id": run_id}
    out.write(json.dumps(head)[:-1].encode() + b', "lines": [')
    separator = b"\n  "
    for stream, stamp, line in _lines(fd):
        entry = {
            "stream": STREAM_NAMES[stream],
            "time": _time(stamp),
            "text": line.decode("utf-8", errors="replace"),
        }
        out.write(separator + json.dumps(entry).encode())
        separator = b",\n  "
    out.write(b"\n]}\n")
    out.flush()
