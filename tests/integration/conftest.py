"""Fixtures of the sync and CLI integration tests: real git, a sandbox host root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.hanging import HangingEndpoint
from helpers.motoserver import moto_running, reset_moto
from helpers.sandbox import GIT_ENV, Sandbox, make_sandbox


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's git config away from the tests and the code under test."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def sandbox(tmp_path: Path, git_env: None) -> Sandbox:
    """Template pushed to a bare remote; agent.toml for host batch-1; nothing synced."""
    return make_sandbox(tmp_path)


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


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1, one per test module (stopped at its end)."""
    with moto_running() as url:
        yield url


@pytest.fixture
def endpoint(moto_server: str) -> str:
    """The module's moto server, emptied for this test."""
    return reset_moto(moto_server)
