"""Copy a running job's stdout and stderr into its run log, masked, without slowing it.

Work is done per chunk, not per line: a read of up to 256 KiB is split once at its last
newline, masked with a few C-level passes, tagged with one marker and appended to the
log. A line without its newline stays in a per-stream buffer until it is complete; a
line longer than ``MAX_PIECE`` is written in pieces (never dropped), keeping enough of
its tail back that a secret split between two reads is still masked. Memory therefore
stays bounded whatever the job prints.
"""

from __future__ import annotations

import os
import time

from cronsync.core.logformat import CRONSYNC, ERR, MARK, OUT, encode_block, marker

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import BinaryIO, Optional

    from cronsync.run.masking import Masker

READ_SIZE = 256 * 1024
MAX_PIECE = 256 * 1024 - 64  # a piece of a very long line still fits one CloudWatch event


def epoch_ms() -> int:
    """Return the current wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class OutputPump:
    """Masks and appends output blocks to an open run log.

    Args:
        log: the run's log file, opened for binary append.
        masker: masks every secret value the job received (None: it received none).
        clock: milliseconds since the epoch (tests pass a fixed one).
        echo: stream -> a binary file that also gets that stream's (masked) lines, for
            ``cronsync run`` by hand.
    """

    def __init__(
        self,
        log: BinaryIO,
        masker: Optional[Masker],
        clock: Callable[[], int] = epoch_ms,
        echo: Optional[Mapping[str, BinaryIO]] = None,
    ) -> None:
        self.log = log
        self.masker = masker
        self.clock = clock
        self.echo = echo or {}
        self.partial = {OUT: b"", ERR: b""}
        self.bytes = 0
        self.lines = 0
        self._last_ms = 0

    def _stamp(self) -> int:
        """Return a non-decreasing timestamp (CloudWatch wants events in order)."""
        self._last_ms = max(self._last_ms, self.clock())
        return self._last_ms

    def _write(self, stream: str, lines: bytes) -> None:
        if lines:
            self.log.write(encode_block(stream, self._stamp(), lines))
            terminal = self.echo.get(stream)
            if terminal is not None:  # `cronsync run` by hand: show it as well
                terminal.write(b"[cronsync] " + lines if stream == CRONSYNC else lines)
                terminal.flush()

    def feed(self, stream: str, chunk: bytes) -> None:
        """Take one read of ``stream``'s output; write every complete line of it."""
        self.bytes += len(chunk)
        self.lines += chunk.count(b"\n")
        head = self.partial[stream]
        cut = chunk.rfind(b"\n") + 1
        if cut and not (self.masker or self.echo or MARK in chunk or MARK in head):
            # Nothing to mask or escape: the same bytes as below, without copying the
            # chunk into new objects (a third of the shim's CPU on a flood of output).
            self.log.write(marker(stream, self._stamp()))
            if head:
                self.log.write(head)
            self.log.write(memoryview(chunk)[:cut])
            rest = chunk[cut:]
            if len(rest) > MAX_PIECE:
                rest = self._write_piece(stream, rest)
            self.partial[stream] = rest
            return
        data = head + chunk
        cut = data.rfind(b"\n") + 1
        complete, rest = data[:cut], data[cut:]
        if complete:
            self._write(stream, self.masker.mask(complete) if self.masker else complete)
        if len(rest) > MAX_PIECE:
            rest = self._write_piece(stream, rest)
        self.partial[stream] = rest

    def _write_piece(self, stream: str, rest: bytes) -> bytes:
        """Write most of an over-long line as a piece; return the raw tail kept back.

        The masker decides how much it can mask for sure: at most ``overlap`` raw bytes
        that could begin a secret stay unwritten until the next read completes them.
        """
        if not self.masker:
            self._write(stream, rest + b"\n")
            return b""
        ready, raw_tail = self.masker.mask_partial(rest)
        self._write(stream, ready + b"\n")
        return raw_tail

    def close(self) -> None:
        """Write what is left of unfinished lines (at the job's end) and flush."""
        for stream in (OUT, ERR):
            rest = self.partial[stream]
            if rest:
                self._write(stream, (self.masker.mask(rest) if self.masker else rest) + b"\n")
                self.partial[stream] = b""
        self.log.flush()

    def note(self, text: str) -> None:
        """Write a line of cronsync's own (start, end, timeout notices) to the log."""
        line = text.replace("\n", " ").encode("utf-8", "replace") + b"\n"
        self._write(CRONSYNC, self.masker.mask(line) if self.masker else line)


def read_chunk(fd: int) -> Optional[bytes]:
    """Read what a pipe has (up to ``READ_SIZE``); None at end of file."""
    try:
        chunk = os.read(fd, READ_SIZE)
    except BlockingIOError:
        return b""
    return chunk or None
