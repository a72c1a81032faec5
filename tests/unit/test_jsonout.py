"""The ``--json`` documents of the ``cronsync`` command are strict JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cronsync.cli.jsonout import emit_json


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_a_float_json_has_no_word_for_becomes_null(capsys: pytest.CaptureFixture[str]) -> None:
    """A run record's user can write ``Infinity`` or ``NaN`` in it (Python reads them):
    ``history --json`` and the other documents must still be JSON."""
    emit_json({"duration": float("inf"), "runs": [{"d": float("nan")}, 1.5, (float("-inf"),)]})
    assert strict(capsys.readouterr().out) == {"duration": None, "runs": [{"d": None}, 1.5, [None]]}
