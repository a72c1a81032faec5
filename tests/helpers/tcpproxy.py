"""A TCP proxy on 127.0.0.1 that cuts its connections where a test says: an outage of
the network between cronsync and CloudWatch, with moto behind it keeping its state.

:class:`CuttingProxy` forwards every connection to one upstream address in its own
thread (one selector loop, so a cut never races a transfer). A cut resets every open
connection at once (RST on both sides) at a planned point:

* ``Cut("up", n)``: when the n-th byte from the clients (requests) would be forwarded:
  the request under way is cut off in the middle (or just after its end);
* ``Cut("reply", n)``: when the n-th reply starts coming back: the server has done the
  request, the client never hears of it;
* ``Cut("put-reply", n)``: the same for the reply to the n-th ``PutLogEvents`` request:
  the batch is stored, its sender does not know.

After a cut marked ``outage``, new connections are reset as soon as they are accepted
until :meth:`CuttingProxy.restore`. A reply cut marked ``hold`` cuts nothing: the reply
is swallowed and its connection left open (the client's read times out).
:func:`proxy_running` starts one for a with-block and stops it.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Optional

_CHUNK = 256 * 1024
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_PUT_TARGET = b"Logs_20140328.PutLogEvents"


@dataclass(frozen=True)
class Cut:
    """Where to cut: at byte ``at`` of the requests, at the start of reply ``at``, or
    of the reply to PutLogEvents request ``at`` (all counted from 1 over the proxy's
    life); ``outage`` keeps it down afterwards; ``hold`` swallows that one reply
    instead (the connection stays open, silent)."""

    kind: Literal["up", "reply", "put-reply"]
    at: int
    outage: bool = False
    hold: bool = False


@dataclass
class _Link:
    """One client connection and its upstream connection."""

    client: socket.socket
    server: socket.socket
    awaiting_reply: bool = False
    put_number: int = 0  # of the request under way when it is a PutLogEvents
    silent: bool = False  # its reply is being swallowed


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a RST."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    with contextlib.suppress(OSError):
        sock.close()


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``, cutting at the planned points.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        up_bytes, replies, puts: request bytes forwarded, replies started and
            PutLogEvents requests seen, so far.
        cuts: the cuts made so far.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._plan: list[Cut] = []
        self._down = False
        self._stopping = False
        self.up_bytes = 0
        self.replies = 0
        self.puts = 0
        self.cuts: list[Cut] = []
        self._thread = threading.Thread(target=self._loop, name="cutting-proxy", daemon=True)
        self._thread.start()

    def plan(self, cuts: list[Cut]) -> None:
        """Cut at these points (byte and reply counts go on from where they are)."""
        with self._lock:
            self._plan = sorted(cuts, key=lambda cut: (cut.kind, cut.at))

    def restore(self) -> None:
        """End an outage: accept connections again."""
        with self._lock:
            self._down = False

    @property
    def down(self) -> bool:
        """Whether an outage is going on."""
        with self._lock:
            return self._down

    def stop(self) -> None:
        """Stop the loop and close everything."""
        self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(10)
        for link in self._links:
            _reset(link.client)
            _reset(link.server)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    # --- the loop (its own thread) ---------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping:
            for key, _mask in self._selector.select(timeout=0.5):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj is self._wake_r:
                    self._wake_r.recv(64)
                else:
                    link, sock = key.data
                    if link in self._links:
                        self._pump(link, sock)

    def _accept(self) -> None:
        try:
            client, _address = self._listener.accept()
        except BlockingIOError:
            return
        if self.down:
            _reset(client)
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        link = _Link(client, server)
        self._links.append(link)
        for sock in (client, server):
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, (link, sock))

    def _pump(self, link: _Link, sock: socket.socket) -> None:
        """Move what ``sock`` has to the other side (or cut, if a cut point is hit)."""
        try:
            data = sock.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # one side closed: close the other (what was read is sent)
            self._close(link, graceful=True)
            return
        if sock is link.client:
            self._forward_request(link, data)
        else:
            self._forward_reply(link, data)

    def _forward_request(self, link: _Link, data: bytes) -> None:
        if not link.awaiting_reply:  # a new request: its headers come first
            link.put_number = 0
            if _PUT_TARGET in data:
                self.puts += 1
                link.put_number = self.puts
        link.awaiting_reply = True
        cut = self._next_cut("up")
        if cut is not None and self.up_bytes + len(data) >= cut.at:
            keep = cut.at - self.up_bytes
            self._send(link.server, data[:keep])
            self.up_bytes += keep
            self._cut(cut)
            return
        self.up_bytes += len(data)
        self._send(link.server, data)

    def _forward_reply(self, link: _Link, data: bytes) -> None:
        if link.awaiting_reply:
            link.awaiting_reply = False
            self.replies += 1
            cut = self._next_cut("reply")
            if cut is None or self.replies < cut.at:
                cut = self._next_cut("put-reply")
                if cut is not None and link.put_number < cut.at:
                    cut = None
            if cut is not None:
                self._cut(cut, link)
        if link in self._links and not link.silent:
            self._send(link.client, data)

    def _next_cut(self, kind: str) -> Optional[Cut]:
        with self._lock:
            return next((cut for cut in self._plan if cut.kind == kind), None)

    def _send(self, sock: socket.socket, data: bytes) -> None:
        """Send all of ``data`` (blocking briefly: loopback peers read promptly)."""
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            sock.sendall(data)
        except OSError:
            pass
        finally:
            sock.setblocking(False)

    def _cut(self, cut: Cut, link: Optional[_Link] = None) -> None:
        """Reset every connection (or silence ``link``, for a ``hold``); start an
        outage if the cut says so."""
        with self._lock:
            self._plan.remove(cut)
            self._down = self._down or cut.outage
        self.cuts.append(cut)
        if cut.hold and link is not None:
            link.silent = True
            return
        for each in list(self._links):
            self._close(each)

    def _close(self, link: _Link, *, graceful: bool = False) -> None:
        for sock in (link.client, link.server):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            if graceful:
                with contextlib.suppress(OSError):
                    sock.close()
            else:
                _reset(sock)
        with contextlib.suppress(ValueError):
            self._links.remove(link)


@contextlib.contextmanager
def proxy_running(upstream_url: str) -> Iterator[CuttingProxy]:
    """Run a :class:`CuttingProxy` in front of ``upstream_url`` (``http://127.0.0.1:PORT``)
    for the with-block; yield it."""
    host, port = upstream_url.removeprefix("http://").rsplit(":", 1)
    proxy = CuttingProxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.stop()
