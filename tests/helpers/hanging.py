"""A CloudWatch that hangs, for the tests that must not wait for it: a TCP server on
127.0.0.1 that accepts every connection and never answers."""

from __future__ import annotations

import socket
import threading


class HangingEndpoint:
    """A CloudWatch that hangs: a TCP server on 127.0.0.1 that accepts every connection
    and never answers (its own thread, stopped by ``stop``)."""

    def __init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._connections: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-endpoint")
        self._thread.start()

    @property
    def accepted(self) -> int:
        """How many connections it accepted (and left unanswered)."""
        return len(self._connections)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:  # the accept timeout: look at the stop flag again
                continue
            self._connections.append(connection)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        for connection in self._connections:
            connection.close()
        self._server.close()
