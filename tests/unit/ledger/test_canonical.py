"""Canonical JSON (RFC 8785) and the strict JSON reader."""

from __future__ import annotations

import json
import math
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waste.errors import CanonicalJSONError, Invalid
from waste.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes, loads_strict


def test_members_are_sorted_and_whitespace_dropped() -> None:
    assert canonical_bytes({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is the surrogate pair D83D DE00, which sorts below U+FB01 in UTF-16.
    obj = {"\ufb01": 3, "\U0001f600": 2, "\u20ac": 1}
    assert canonical_bytes(obj) == '{"€":1,"😀":2,"ﬁ":3}'.encode()


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1e-7, b"1e-7"),
        (0.000001, b"0.000001"),
        (-0.0, b"0"),
        (4.50, b"4.5"),
        (2e-3, b"0.002"),
        (333333333.33333329, b"333333333.3333333"),
        (9007199254740991.0, b"9007199254740991"),
    ],
)
def test_numbers_use_the_ecmascript_form(number: float, text: bytes) -> None:
    assert canonical_bytes(number) == text


def test_strings_escape_only_what_jcs_requires() -> None:
    assert canonical_bytes('é\n\u0001"\\/') == '"é\\n\\u0001\\"\\\\/"'.encode()


def test_mappings_and_tuples_are_json_objects_and_arrays() -> None:
    assert canonical_bytes(MappingProxyType({"a": (1, 2)})) == b'{"a":[1,2]}'


@pytest.mark.parametrize("n", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0])
def test_safe_integers_pass(n: int) -> None:
    assert canonical_bytes(n) == str(n).encode()


@pytest.mark.parametrize(
    "value",
    [2**53, -(2**53), 2**64, float("nan"), float("inf"), float("-inf"), 1e20, -1e300],
)
def test_inexact_numbers_are_refused(value: float) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_bytes(value)


def test_refusal_names_the_member() -> None:
    with pytest.raises(CanonicalJSONError) as info:
        canonical_bytes({"data": {"wastes": [{"mass_kg": float("nan")}]}})
    assert info.value.field == "data.wastes[0].mass_kg"


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {"a": b"bytes"}, {"a": {1, 2}}, "lone \ud800 surrogate", {"\udfff": 1}, object()],
)
def test_non_json_values_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_bytes(value)


def test_deep_nesting_is_refused_not_crashed() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        canonical_bytes(deep)


# --- loads_strict ---------------------------------------------------------------


def test_reads_plain_json() -> None:
    assert loads_strict(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_duplicate_keys_are_refused_even_nested() -> None:
    with pytest.raises(Invalid, match="duplicate object key 'k'"):
        loads_strict('{"a": {"k": 1, "k": 2}}')


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(literal: str) -> None:
    with pytest.raises(CanonicalJSONError, match="not a JSON number"):
        loads_strict(f'{{"x": {literal}}}')


@pytest.mark.parametrize(
    "text", ["9007199254740992", "-9007199254740992", "1" * 5000, "1e400", "1e20", "-1.5e300"]
)
def test_unsafe_numbers_are_refused(text: str) -> None:
    with pytest.raises(CanonicalJSONError, match=r"outside ±\(2\^53 - 1\)"):
        loads_strict(f"[{text}]")


def test_boundary_integers_pass() -> None:
    assert loads_strict("[9007199254740991, -9007199254740991]") == [
        MAX_SAFE_INTEGER,
        -MAX_SAFE_INTEGER,
    ]


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(Invalid, match="not valid UTF-8"):
        loads_strict(b'{"a": "\xff"}')


def test_escaped_lone_surrogate_is_refused() -> None:
    with pytest.raises(CanonicalJSONError, match="lone surrogate"):
        loads_strict('{"a": "\\ud800"}')


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{'a': 1}", "\ufeff{}", '{"a":1} x'])
def test_malformed_json_is_invalid(text: str) -> None:
    with pytest.raises(Invalid, match="not valid JSON"):
        loads_strict(text)


def test_deeply_nested_input_is_refused() -> None:
    with pytest.raises(CanonicalJSONError):
        loads_strict("[" * 100_000 + "]" * 100_000)


# --- properties -------------------------------------------------------------------

safe_ints = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
safe_floats = st.floats(
    min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER, allow_nan=False, allow_infinity=False
)
json_values = st.recursive(
    st.none() | st.booleans() | safe_ints | safe_floats | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_text_reads_back_to_the_same_value(value: Any) -> None:
    text = canonical_bytes(value)
    again = loads_strict(text)
    assert again == value
    assert canonical_bytes(again) == text


@given(json_values)
def test_canonical_text_is_what_json_reads(value: Any) -> None:
    assert json.loads(canonical_bytes(value)) == value


@given(st.dictionaries(st.text(), safe_ints, max_size=6))
def test_member_order_does_not_change_the_bytes(obj: dict[str, int]) -> None:
    reversed_obj = dict(reversed(list(obj.items())))
    assert canonical_bytes(reversed_obj) == canonical_bytes(obj)


@given(st.integers(min_value=MAX_SAFE_INTEGER + 1) | st.integers(max_value=-MAX_SAFE_INTEGER - 1))
def test_every_unsafe_integer_is_refused_both_ways(n: int) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_bytes({"n": n})
    with pytest.raises(CanonicalJSONError):
        loads_strict(f'{{"n": {n}}}')


@given(
    st.sampled_from([math.nan, math.inf, -math.inf])
    | st.floats(min_value=2.0**53, allow_nan=False)
    | st.floats(max_value=-(2.0**53), allow_nan=False)
)
def test_non_finite_or_unsafe_floats_are_refused(value: float) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_bytes([value])
