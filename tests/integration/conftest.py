"""Fixtures of the sync and CLI integration tests: real git, a sandbox host root."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:  # makes tests/helpers importable as ``helpers``
    sys.path.insert(0, _TESTS_DIR)

from helpers.sandbox import GIT_ENV, Sandbox, make_sandbox  # noqa: E402


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
