"""AWS for the tests: moto's server over HTTP on 127.0.0.1 (never the real AWS).

:func:`moto_running` starts one on a free loopback port for a with-block and stops
it, by its own handle, at the end. moto keeps its state per process, not per server:
a test that needs an empty AWS resets it (``POST /moto-api/reset``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

START_TIMEOUT = 60.0  # seconds; moto starts in about 0.5 s on an idle machine


@contextlib.contextmanager
def moto_running(start_timeout: float = START_TIMEOUT) -> Iterator[str]:
    """Run a moto server for the with-block; yield its URL (``http://127.0.0.1:PORT``).

    Raises:
        RuntimeError: the server did not come up within ``start_timeout`` seconds.
            ``ThreadedMotoServer.start`` waits for ever when its server thread dies
            (no free descriptor for the socket, say), so it is waited for here with a
            limit instead of hanging the suite.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    starter = threading.Thread(target=server.start, name="moto-start", daemon=True)
    starter.start()
    starter.join(start_timeout)
    if starter.is_alive():
        raise RuntimeError(
            f"the moto server did not start within {start_timeout:g} s "
            "(its thread died: out of file descriptors or ports?)"
        )
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
