"""``loads_strict(on_fault=…)``: refusals sorted by kind, for callers such as the gateway."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waste.errors import CanonicalJSONError, Invalid
from waste.ledger.canonical import JSONFault, loads_strict


class Caught(Exception):
    """What the hook raised."""

    def __init__(self, fault: JSONFault, detail: str) -> None:
        super().__init__(detail)
        self.fault = fault


def _hook(fault: JSONFault, detail: str) -> NoReturn:
    raise Caught(fault, detail)


@pytest.mark.parametrize(
    ("text", "fault", "default"),
    [
        (b"\xff", JSONFault.SYNTAX, Invalid),
        (b"{", JSONFault.SYNTAX, Invalid),
        (b"[NaN]", JSONFault.SYNTAX, CanonicalJSONError),
        (b"[" * 30_000 + b"]" * 30_000, JSONFault.SYNTAX, CanonicalJSONError),
        (b'{"k": 1, "k": 2}', JSONFault.DUPLICATE_KEY, Invalid),
        (b"[9007199254740992]", JSONFault.UNSAFE_INTEGER, CanonicalJSONError),
        (b"[1e999]", JSONFault.UNSAFE_NUMBER, CanonicalJSONError),
        (b'["\\udc00"]', JSONFault.UNREPRESENTABLE, CanonicalJSONError),
    ],
)
def test_each_refusal_has_its_fault_and_its_usual_error(
    text: bytes, fault: JSONFault, default: type[Exception]
) -> None:
    with pytest.raises(Caught) as info:
        loads_strict(text, on_fault=_hook)
    assert info.value.fault is fault
    assert str(info.value)
    with pytest.raises(default):
        loads_strict(text)


def test_good_json_never_calls_the_hook() -> None:
    assert loads_strict(b'{"a": [1, 2.5]}', on_fault=_hook) == {"a": [1, 2.5]}


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_surrogate(v) for v in value)


texts = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=()), max_size=6)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@given(value=values, ascii_only=st.booleans())
def test_strings_are_refused_exactly_when_they_hold_a_lone_surrogate(
    value: Any, ascii_only: bool
) -> None:
    """Whether escaped (\\uD800) or raw in str input: the fast path skips no surrogate."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    if _has_surrogate(value):
        with pytest.raises(Caught) as info:
            loads_strict(text, on_fault=_hook)
        assert info.value.fault is JSONFault.UNREPRESENTABLE
    else:
        assert loads_strict(text) == value
        assert loads_strict(text.encode("utf-8")) == value
