"""AWS for the tests: moto's server over HTTP on 127.0.0.1 (never the real AWS).

:func:`moto_running` starts one on a free loopback port for a with-block and stops
it, by its own handle, at the end. moto keeps its state per process, not per server:
a test that needs an empty AWS resets it (``POST /moto-api/reset``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def reset_moto(url: str) -> str:
    """Empty moto's state (it is per process, not per server); return ``url``."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return url


def isolate_aws_env(monkeypatch: Any, tmp_path: Path) -> None:
    """Dummy keys in the environment, and no AWS config or credentials file of this
    machine's (a ``pytest.MonkeyPatch`` undoes it after the test)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
