"""Fixtures of the fault-injection suite: a sandbox host, and how many fault points.

Each test injects a fault at many points, chosen by a seeded random generator so a
failure names a point that reproduces, and checks the invariants of
:mod:`helpers.faultcheck` after each. ``fault_points`` is 20 (200 with ``--long``): the
killed sync and the killed shim use that many, the slower faults a share of it (the
agent a third, a full disk and Secrets Manager half, CloudWatch a quarter).
"""

from __future__ import annotations

import os
import random

import pytest

SEED = int(os.environ.get("CRONSYNC_FAULT_SEED", "20261207"))
"""The fault points' seed; ``CRONSYNC_FAULT_SEED`` replays another draw."""


@pytest.fixture
def fault_points(request: pytest.FixtureRequest) -> int:
    """How many fault points each test tries: 12 (the suite stays under 10 minutes), or
    200 with ``--long``."""
    return 200 if request.config.getoption("--long") else 12


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A generator seeded by :data:`SEED` and the test's name."""
    return random.Random(f"{SEED}:{request.node.name}")
