"""Makes tests/helpers importable as ``helpers`` in every test folder; the fixtures
and options every folder shares (the sandbox host, moto, ``--long``) and the
end-of-run search for secret values outside the stores."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from helpers import secretledger  # noqa: E402
from helpers.motoserver import moto_running, reset_moto  # noqa: E402
from helpers.sandbox import GIT_ENV, Sandbox, make_sandbox  # noqa: E402

# CI must not turn red on a slow machine or a newly drawn example: no deadline, and the
# same examples every run (a fresh counterexample is found by changing the code, not
# by chance on someone else's commit)
settings.register_profile("cronsync", deadline=None, derandomize=True)
settings.load_profile("cronsync")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--long``: the fault suite's long run (200 iterations where CI does 12)."""
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="tests/faults: 200 random fault points per test instead of 20",
    )


@pytest.fixture(scope="session", autouse=True)
def _secret_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the run, no secret value any test stored may be in a file below
    pytest's temporary folder but the secret stores (helpers/secretledger.py).

    Under pytest-xdist each worker is a session of its own: it notes the values its
    tests stored and searches its own temporary folder (``popen-gwN``), where its
    tests wrote; a leak fails the worker's last test (an error in its teardown)."""
    secretledger.start_recording()
    yield
    found = secretledger.leaks(tmp_path_factory.getbasetemp())
    if found:
        pytest.fail(
            f"{len(found)} files hold a secret value outside the secret stores:\n"
            + "\n".join(found[:50]),
            pytrace=False,
        )


# --- fixtures the integration tests and the fault suite share ------------------------


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's git config away from the tests and the code under test."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def sandbox(tmp_path: Path, git_env: None) -> Sandbox:
    """Template pushed to a bare remote; agent.toml for host batch-1; nothing synced."""
    return make_sandbox(tmp_path)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1, one per test module (stopped at its end)."""
    with moto_running() as url:
        yield url


@pytest.fixture
def endpoint(moto_server: str) -> str:
    """The module's moto server, emptied for this test."""
    return reset_moto(moto_server)
