"""The fast exact-JSON path gives RFC 8785 bytes, or defers to the reference."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waste.errors import Invalid
from waste.ledger import exactjson
from waste.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-9e15, max_value=9e15)
    | st.text(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_every_spelling_parses_to_the_reference_bytes(value: Any) -> None:
    reference = canonical_bytes(value)
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False), reference.decode()):
        parsed, fast = exactjson.parse(text)
        assert exactjson.dumps(parsed, fast) == reference
    assert exactjson.is_canonical(reference)[1]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('{"a":795}', '{"a":795}'),
        ('{"a":795.0}', '{"a":795}'),
        ('{"a":1e-05}', '{"a":0.00001}'),
        ('{"a":1.5e3}', '{"a":1500}'),
        ('{"\ufb01":2,"\U0001f600":1}', '{"\U0001f600":1,"\ufb01":2}'),  # UTF-16 key order
        ('{"a":"\\u00e9"}', '{"a":"\u00e9"}'),
    ],
)
def test_edge_spellings(text: str, canonical: str) -> None:
    parsed, fast = exactjson.parse(text)
    assert exactjson.dumps(parsed, fast) == canonical.encode()
    assert exactjson.is_canonical(text.encode())[1] == (text == canonical)


@pytest.mark.parametrize("text", ['{"a":9007199254740992}', '{"a":NaN}', '"\\ud800"', "{", b"\xff"])
def test_what_jcs_cannot_represent_is_refused(text: str | bytes) -> None:
    with pytest.raises(Invalid):
        exactjson.parse(text)


def test_first_difference_names_the_path_and_tells_true_from_one() -> None:
    left = {"a": {"b": [1, {"c": True}]}, "d": 1}
    assert exactjson.first_difference(left, {"a": {"b": [1, {"c": 1}]}, "d": 1}) == (
        "a.b[1].c",
        True,
        1,
    )
    assert exactjson.first_difference(left, left) is None
    assert exactjson.first_difference({"x": 1}, {"x": 1.0}) is None  # one JSON number
