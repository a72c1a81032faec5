"""fastjson gives exactly what json gives: the same text out, the same values in, the
same errors for what is not JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core import fastjson
from helpers.startup import modules_loaded

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(documents, st.integers(min_value=0, max_value=4), st.booleans())
def test_dumps_writes_what_json_writes(value: Any, indent: int, sort_keys: bool) -> None:
    assert fastjson.dumps(value, indent=indent, sort_keys=sort_keys) == json.dumps(
        value, indent=indent, sort_keys=sort_keys
    )


@settings(max_examples=400, deadline=None)
@given(documents, st.integers(min_value=0, max_value=2), st.sampled_from(["", " ", "\n\t "]))
def test_loads_reads_what_json_reads(value: Any, indent: int, space: str) -> None:
    text = space + json.dumps(value, indent=indent or None, ensure_ascii=indent == 1) + space
    assert fastjson.loads(text) == json.loads(text)


def test_the_special_floats_as_json_has_them() -> None:
    value = [math.inf, -math.inf, math.nan, 1e300, -0.0]
    assert fastjson.dumps(value) == json.dumps(value, indent=1)
    back = fastjson.loads(json.dumps(value))
    assert back[:2] == [math.inf, -math.inf] and math.isnan(back[2]) and back[3:] == [1e300, 0.0]


@pytest.mark.parametrize(
    "text", ["", "   ", "{bad", '{"a": 1} x', "[1,]", "'single'", '{"a": 1}{"b": 2}', "\ufeff{}"]
)
def test_what_is_not_json_is_refused_as_json_refuses_it(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        fastjson.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_nesting_too_deep_is_a_recursion_error() -> None:
    with pytest.raises(RecursionError):
        fastjson.loads("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("value", [{1: "x"}, {"a": {2}}, [object()]])
def test_what_json_cannot_hold_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        fastjson.dumps(value)


def test_the_shim_path_does_not_import_json() -> None:
    code = "from cronsync.core import fastjson\nfastjson.loads(fastjson.dumps({'a': [1, 'x']}))"
    assert modules_loaded(code, {"json", "re"}) == []
