"""Makes tests/helpers importable as ``helpers`` in every test folder."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from hypothesis import settings  # noqa: E402

# CI must not turn red on a slow machine or a newly drawn example: no deadline, and the
# same examples every run (a fresh counterexample is found by changing the code, not
# by chance on someone else's commit)
settings.register_profile("cronsync", deadline=None, derandomize=True)
settings.load_profile("cronsync")
