"""Pure registry rules: credit codes, region codes and scopes, the waste-code catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waste.errors import Invalid, WasteCodeError
from waste.registry.domain import (
    key_window_valid,
    region_covers,
    region_prefix,
    uscc_check_character,
    validate_region_code,
    validate_uscc,
)
from waste.registry.waste_codes import CATEGORIES, category_of, is_hazardous, validate_waste_code

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Credit codes published on real business licences (their check characters are right).
REAL_USCC = ["91350100M000100Y43", "91110000600037341L", "91440300708461136T"]


@pytest.mark.parametrize("code", REAL_USCC)
def test_real_credit_codes_validate(code: str) -> None:
    assert validate_uscc(code) == code


@given(
    st.text(alphabet=ALPHABET, min_size=2, max_size=2),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    st.text(alphabet=ALPHABET, min_size=9, max_size=9),
)
def test_any_code_with_its_check_character_validates(kind: str, region: str, org: str) -> None:
    body = kind + region + org
    code = body + uscc_check_character(body)
    assert validate_uscc(code) == code
    wrong = ALPHABET[(ALPHABET.index(code[17]) + 1) % 31]
    with pytest.raises(Invalid) as err:
        validate_uscc(code[:17] + wrong)
    assert err.value.field == "uscc"


@given(st.text(max_size=25))
def test_credit_code_validation_never_crashes(text: str) -> None:
    field = None
    try:
        validate_uscc(text)
    except Invalid as exc:
        field = exc.field
    assert field in (None, "uscc")


@pytest.mark.parametrize("bad", ["", "330702 ", "3307021", "000000", "990000", 330702, None])
def test_bad_region_codes(bad: object) -> None:
    with pytest.raises(Invalid):
        validate_region_code(bad)


def test_region_scopes() -> None:
    assert region_prefix("330000") == "33"
    assert region_prefix("330700") == "3307"
    assert region_prefix("330782") == "330782"
    assert region_covers("330000", "330782")
    assert region_covers("330700", "330782")
    assert not region_covers("330700", "330182")
    assert not region_covers("110000", "330782")


def test_key_window_is_half_open() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=1)
    assert key_window_valid(start, end, start)
    assert not key_window_valid(start, end, end)
    assert not key_window_valid(start, end, start - timedelta(microseconds=1))
    assert key_window_valid(start, None, start + timedelta(days=3650))


def test_catalogue_has_every_category() -> None:
    hw = [c for c in CATEGORIES if c.startswith("HW")]
    assert len(hw) == 50
    assert [c for c in hw if CATEGORIES[c].retired] == ["HW41", "HW42", "HW43", "HW44"]


@pytest.mark.parametrize(
    ("code", "category"),
    [("900-041-49", "HW49"), ("336-064-17", "HW17"), ("900-249-08", "HW08"), ("SW07", "SW07")],
)
def test_valid_waste_codes(code: str, category: str) -> None:
    assert validate_waste_code(code) == code
    assert category_of(code).code == category
    assert is_hazardous(code) == category.startswith("HW")


@pytest.mark.parametrize(
    "code", ["900-041-51", "900-041-00", "900-041-43", "90-041-49", "HW49", "SW08", "sw07", "", 49]
)
def test_bad_waste_codes(code: object) -> None:
    with pytest.raises(WasteCodeError) as err:
        validate_waste_code(code, field="wastes[0].code")
    assert err.value.field == "wastes[0].code"
