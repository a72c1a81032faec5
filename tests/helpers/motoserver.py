"""AWS for the tests: moto's server over HTTP on 127.0.0.1 (never the real AWS).

:func:`moto_running` starts one on a free loopback port for a with-block and stops
it, by its own handle, at the end. moto keeps its state per process, not per server:
a test that needs an empty AWS resets it (``POST /moto-api/reset``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def moto_running() -> Iterator[str]:
    """Run a moto server for the with-block; yield its URL (``http://127.0.0.1:PORT``)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
