"""Pure rules of the party registry: credit codes, region codes, roles and key windows."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from waste.errors import Invalid

# GB 32100-2015: the unified social credit code alphabet (no I, O, Z, S, V) and weights.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")

# GB/T 2260: province-level prefixes of administrative region codes.
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37}
    | {41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
)


class PartyKind(StrEnum):
    """What a party is in the chain of custody."""

    PRODUCER = "producer"
    HAULER = "hauler"
    DISPOSAL_SITE = "disposal_site"
    REGULATOR = "regulator"


class Role(StrEnum):
    """What an API token may act as."""

    PRODUCER = "producer"
    HAULER = "hauler"
    DISPOSAL_SITE = "disposal_site"
    REGULATOR = "regulator"
    ADMIN = "admin"


def role_for(kind: PartyKind) -> Role:
    """The token role of a party of ``kind``."""
    return Role(kind.value)


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a credit code."""
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: object, *, field: str = "uscc") -> str:
    """Return ``code`` if it is a well-formed unified social credit code with the right check."""
    if not isinstance(code, str) or not _USCC_SHAPE.match(code):
        raise Invalid(
            "a unified social credit code is 18 characters of 0-9 and A-Y without I, O, Z, S, V, "
            "with a 6-digit region code in positions 3-8",
            field=field,
        )
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise Invalid(
            f"credit code check character is {code[17]!r}, expected {expected!r}", field=field
        )
    return code


def validate_region_code(code: object, *, field: str = "region_code") -> str:
    """Return ``code`` if it is a 6-digit administrative region code of a real province."""
    if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code):
        raise Invalid("a region code is 6 digits, e.g. 330110", field=field)
    if int(code[:2]) not in _PROVINCES:
        raise Invalid(f"{code[:2]} is not a province-level region prefix", field=field)
    return code


def region_prefix(code: str) -> str:
    """The prefix a region code covers: 330000 → 33, 330100 → 3301, 330110 → 330110."""
    prefix = code
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


def region_covers(scope: str, region: str) -> bool:
    """Whether the regulator scope ``scope`` (a region code) covers ``region``."""
    return region.startswith(region_prefix(scope))


def key_window_valid(valid_from: datetime, valid_until: datetime | None, at: datetime) -> bool:
    """Whether a key with this window is valid at ``at`` (from inclusive, until exclusive)."""
    return valid_from <= at and (valid_until is None or at < valid_until)
