"""The running agent's control socket: ``cronsync sync --now`` asks it to sync now.

A Unix socket in the state directory (mode 0600: root only). A client sends one line
(``sync``) and gets one JSON line back: the sync record. One request at a time is
enough: syncs are serialised by the agent anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from cronsync.core.errors import CronsyncError

SOCKET_NAME = "agent.sock"
MAX_REQUEST = 64


class ControlServer:
    """Serves sync requests for the agent.

    Args:
        path: the socket's path.
        handle: called with the request word (``"sync"``), in the server's thread;
            returns the JSON-ready answer (it may block until the sync is done).
    """

    def __init__(self, path: Path, handle: Callable[[str], dict[str, Any]]) -> None:
        self.path = path
        self.handle = handle
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Bind the socket (replacing a stale one) and serve in a daemon thread.

        Raises:
            OSError: the socket cannot be created.
        """
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        sock.listen(4)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="cronsync-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by stop()
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        try:
            request = conn.recv(MAX_REQUEST).decode("ascii", "replace").strip()
            answer = self.handle(request)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(answer, default=str).encode() + b"\n")

    def stop(self) -> None:
        """Stop serving and remove the socket."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def ask_agent(path: Path, request: str, timeout: float) -> Optional[dict[str, Any]]:
    """Send ``request`` to a running agent and wait for its answer.

    Returns:
        The answer, or None when no agent listens on ``path``.

    Raises:
        CronsyncError: the agent did not answer within ``timeout`` or answered garbage.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        sock.sendall(request.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout as exc:
        raise CronsyncError(f"the agent did not answer within {timeout:g}s") from exc
    except OSError as exc:
        raise CronsyncError(f"cannot talk to the agent at {path}: {exc.strerror}") from exc
    finally:
        sock.close()
    try:
        answer = json.loads(data.decode())
    except ValueError as exc:
        raise CronsyncError(f"the agent at {path} gave no usable answer") from exc
    return answer if isinstance(answer, dict) else None
