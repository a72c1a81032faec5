"""The broker's socket: made (or taken from systemd), read, answered, each connection
in its own thread.

One request per connection: the caller writes one message and shuts its side down
(see :mod:`cronsync.core.brokerwire`); the broker reads at most
:data:`~cronsync.core.brokerwire.MAX_MESSAGE` bytes, asks the kernel who the caller is
(``SO_PEERCRED``: never the request's word for it), hands both to the service and
writes its reply. A slow or silent caller is cut off after :data:`READ_TIMEOUT`. At most
:data:`MAX_HANDLERS` connections are answered at once, at most :data:`MAX_PER_UID` of one
uid: a connection over either limit gets an immediate ``busy`` reply (the shim tries
again), so the accept loop never waits and no user can starve the others. An error in
the loop is logged and the loop goes on: it ends only with :meth:`BrokerListener.stop`.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.core import brokerwire
from cronsync.core.errors import InstallError
from cronsync.core.suppress import suppress
from cronsync.files.sockaddr import peer_credentials, unix_address
from cronsync.host.logline import ERROR, INFO, WARNING, Log

READ_TIMEOUT = 2.0  # a request is under 1 KiB: a caller that has not sent it by then won't
WRITE_TIMEOUT = 10.0
MAX_HANDLERS = 128
MAX_PER_UID = 16  # connections answered at once for one uid: no user can take every slot
BACKLOG = 512
SOCKET_MODE = 0o666  # every job user connects; the broker checks who they are itself
DIRECTORY_MODE = 0o755
LISTEN_FDS_START = 3  # sd_listen_fds(3): the first socket systemd passes


class BrokerSocketError(InstallError):
    """The broker's socket cannot be made, or another broker serves it (exit 4)."""


@dataclass(frozen=True)
class Peer:
    """Who is on the other end, as the kernel says: pid, uid, gid."""

    pid: int
    uid: int
    gid: int


# Answers one request from one peer: (request, peer) -> reply.
Handler = Callable[[Mapping[str, Any], Peer], Mapping[str, Any]]


def peer_of(conn: socket.socket) -> Peer:
    """Return the connected peer's credentials (``SO_PEERCRED``)."""
    return Peer(*peer_credentials(conn))


def activated_socket(environ: Mapping[str, str] = os.environ) -> Optional[socket.socket]:
    """Return the listening socket systemd passed (socket activation), or None.

    Raises:
        BrokerSocketError: systemd passed something that is not a Unix stream socket.
    """
    if environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    os.set_inheritable(LISTEN_FDS_START, False)
    sock = socket.socket(fileno=LISTEN_FDS_START)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise BrokerSocketError("the socket systemd passed is not a Unix stream socket")
    return sock


def _answers(path: str) -> bool:
    """Whether a broker is alive on the socket at ``path``: it accepts, or its backlog
    is full (busy, not stale); only a refused connection means nobody listens."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        with unix_address(path) as where:
            probe.connect(where.address)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # EAGAIN (a full backlog), a timeout: someone is there
    finally:
        probe.close()
    return True


def bind_socket(path: str) -> socket.socket:
    """Make the listening socket at ``path``, mode 0666, its directory 0755 (made when
    missing; an existing one must be ours or root's and writable by nobody else).

    The socket is bound under a temporary name in the same directory, given its mode,
    then renamed over ``path``, so no caller ever meets it half set up. A stale socket
    (nobody answers) is replaced; a live one is left alone.

    Raises:
        BrokerSocketError: another broker answers there, or the socket cannot be made.
    """
    directory = os.path.dirname(path) or "."
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, exist_ok=True)
            os.chmod(directory, DIRECTORY_MODE)  # whatever the umask
        folder = os.stat(directory)
        info = os.lstat(path) if os.path.lexists(path) else None
    except OSError as exc:
        raise BrokerSocketError(f"cannot create {directory}: {exc.strerror}") from exc
    if folder.st_uid not in (0, os.geteuid()) or folder.st_mode & 0o022:
        raise BrokerSocketError(
            f"{directory} is writable by others or not ours (owner uid {folder.st_uid}, "
            f"mode {stat.S_IMODE(folder.st_mode):04o}): anyone could replace the socket"
        )
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise BrokerSocketError(f"{path} exists and is not a socket; not replacing it")
        if _answers(path):
            raise BrokerSocketError(
                f"another broker already answers on {path} (the agent, or "
                "cronsync-broker.socket): run only one"
            )
    temporary = os.path.join(directory, f".broker.{os.getpid()}.{os.urandom(4).hex()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_address(temporary) as where:
            sock.bind(where.address)
        os.chmod(temporary, SOCKET_MODE)
        sock.listen(BACKLOG)  # before the rename: a caller never finds it refusing
        os.rename(temporary, path)
    except OSError as exc:
        sock.close()
        with suppress(OSError):
            os.unlink(temporary)
        raise BrokerSocketError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    return sock


def read_message(conn: socket.socket, deadline: float) -> bytes:
    """Read until the peer shuts its side down, at most ``MAX_MESSAGE`` bytes.

    Raises:
        brokerwire.WireError: too long, or not finished before ``deadline``.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise brokerwire.WireError("the request did not arrive in time")
        conn.settimeout(remaining)
        try:
            chunk = conn.recv(65536)
        except socket.timeout as exc:
            raise brokerwire.WireError("the request did not arrive in time") from exc
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > brokerwire.MAX_MESSAGE:
            raise brokerwire.WireError("request over the size limit")
        chunks.append(chunk)


def _silent(message: str, level: int = INFO) -> None:
    """The log of a listener given none."""


class BrokerListener:
    """Accepts connections on a listening socket and answers each in a thread.

    Args:
        sock: the listening socket (owned from now on; closed by :meth:`stop`).
        handler: answers one request.
        path: the socket's path, removed by :meth:`stop` when it is still this socket
            (None: leave it, systemd owns it).
        log: where errors of the loop are logged.
    """

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        path: Optional[str] = None,
        log: Optional[Log] = None,
    ) -> None:
        self.sock = sock
        self.handler = handler
        self.path = path
        self.log: Log = log or _silent
        self._identity = _identity(path) if path is not None else None
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._active = 0
        self._per_uid: dict[int, int] = {}
        self._count_lock = threading.Lock()
        self.last_request = time.monotonic()

    @property
    def busy(self) -> bool:
        """Whether a connection is being answered now."""
        with self._count_lock:
            return self._active > 0

    def start(self) -> None:
        """Accept in a background thread (returns at once)."""
        self._thread = threading.Thread(target=self.serve, name="cronsync-broker", daemon=True)
        self._thread.start()

    def serve(self) -> None:
        """Accept until :meth:`stop`; nothing else ends the loop."""
        self.sock.settimeout(0.5)
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    return
                self.log(f"accept failed: {exc.strerror or exc}; going on", WARNING)
                time.sleep(0.1)  # out of descriptors, say: let the running answers finish
                continue
            try:
                self._dispatch(conn)
            except Exception as exc:  # out of threads, say: this caller is told to retry
                self.log(f"cannot answer a connection: {type(exc).__name__}: {exc}", ERROR)
                _refuse_busy(conn)
                time.sleep(0.05)

    def _dispatch(self, conn: socket.socket) -> None:
        """Answer ``conn`` in a thread, or tell it at once that the broker is busy."""
        peer = peer_of(conn)
        with self._count_lock:
            mine = self._per_uid.get(peer.uid, 0)
            if self._active >= MAX_HANDLERS or mine >= MAX_PER_UID:
                admitted = False
            else:
                admitted = True
                self._active += 1
                self._per_uid[peer.uid] = mine + 1
                self.last_request = time.monotonic()
        if not admitted:
            _refuse_busy(conn)
            return
        try:
            threading.Thread(target=self._answer, args=(conn, peer), daemon=True).start()
        except BaseException:
            self._release(peer)
            raise

    def _release(self, peer: Peer) -> None:
        with self._count_lock:
            self._active -= 1
            left = self._per_uid.get(peer.uid, 1) - 1
            if left > 0:
                self._per_uid[peer.uid] = left
            else:
                self._per_uid.pop(peer.uid, None)
            self.last_request = time.monotonic()

    def _answer(self, conn: socket.socket, peer: Peer) -> None:
        try:
            reply = self._reply(conn, peer)
            conn.settimeout(WRITE_TIMEOUT)
            with suppress(OSError):
                conn.sendall(brokerwire.encode(reply))
        except Exception as exc:  # a bug must not take the broker down: say it
            self.log(f"internal error: {type(exc).__name__}: {exc}", ERROR)
        finally:
            conn.close()
            self._release(peer)

    def _reply(self, conn: socket.socket, peer: Peer) -> Mapping[str, Any]:
        try:
            message = brokerwire.decode(read_message(conn, time.monotonic() + READ_TIMEOUT))
        except brokerwire.WireError as exc:
            return brokerwire.failure(brokerwire.BAD_REQUEST, str(exc))
        except OSError as exc:
            return brokerwire.failure(brokerwire.BAD_REQUEST, f"cannot read: {exc.strerror}")
        return self.handler(message, peer)

    def stop(self) -> None:
        """Stop accepting, close the socket and remove it when it is still ours (another
        broker may have taken the path since)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self.sock.close()
        mine = self._identity is not None and _identity(self.path or "") == self._identity
        if self.path is not None and mine:
            with suppress(OSError):
                os.unlink(self.path)


def _identity(path: str) -> Optional[tuple[int, int]]:
    """The device and inode of the file at ``path`` (None when there is none)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _refuse_busy(conn: socket.socket) -> None:
    """Tell ``conn`` to try again later, without waiting for anything, and close it."""
    try:
        conn.setblocking(False)
        with suppress(OSError):
            conn.send(brokerwire.encode(brokerwire.failure(brokerwire.BUSY, "busy: try again")))
            conn.recv(brokerwire.MAX_MESSAGE)  # what has come: closing on unread data resets
    finally:
        conn.close()
