"""Unix socket addresses of any length, and who is on the other end of a connection.

An ``AF_UNIX`` address holds at most 107 bytes; a socket below a deep ``paths.root``
(a sandbox, a test's temporary folder) can be longer. :func:`unix_address` opens the
socket's folder and names the socket through ``/proc/self/fd/N/NAME`` instead, which
the kernel resolves to the same folder. On the shim's start-up path: nothing but ``os``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Any, Optional

MAX_ADDRESS = 107


class UnixAddress:
    """A usable address for the socket at ``path``; close() it after bind or connect.

    Attributes:
        address: the path itself when short enough, else ``/proc/self/fd/N/NAME``.

    Raises:
        OSError: the socket's folder cannot be opened (a long path only).
    """

    def __init__(self, path: str) -> None:
        self._fd: Optional[int] = None
        self.address = path
        if len(os.fsencode(path)) > MAX_ADDRESS:
            folder, name = os.path.split(path)
            self._fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self.address = f"/proc/self/fd/{self._fd}/{name}"

    def __enter__(self) -> UnixAddress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the folder's descriptor (when one was opened)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def unix_address(path: str) -> UnixAddress:
    """Return a usable address for the socket at ``path`` (use it as a context)."""
    return UnixAddress(path)


def peer_credentials(conn: Any) -> tuple[int, int, int]:
    """Return ``(pid, uid, gid)`` of the process on the other end of the connected Unix
    socket ``conn``, as the kernel says (``SO_PEERCRED``), never as it claims."""
    import socket
    import struct

    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid
