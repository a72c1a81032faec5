"""Fixtures of the sync and CLI integration tests (the sandbox host, git_env and moto
are in tests/conftest.py, shared with the fault suite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.hanging import HangingEndpoint
from helpers.sandbox import Sandbox


@pytest.fixture
def synced(sandbox: Sandbox) -> Sandbox:
    """The sandbox after one successful in-process sync of the template."""
    outcome = sandbox.sync()
    assert outcome.record.result == "installed", outcome.record
    return sandbox


@pytest.fixture
def hanging_endpoint() -> Iterator[HangingEndpoint]:
    """A CloudWatch endpoint that accepts connections and never answers."""
    server = HangingEndpoint()
    try:
        yield server
    finally:
        server.stop()
