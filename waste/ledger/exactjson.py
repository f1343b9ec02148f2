"""Fast exact JSON for bulk verification: parse, RFC 8785 bytes, and the first difference.

``canonical_bytes`` (``waste.ledger.canonical``) is the reference; it walks every
value in Python and costs ~100 µs for a filing body. For a million events this
module takes a faster route that gives the same bytes: the standard library's C
encoder with sorted keys and compact separators writes exactly RFC 8785 when

- every integral number is an ``int`` (JCS writes ``795.0`` as ``795``; the parse
  hook below turns integral floats into ints, which is what JCS means anyway),
- every other float lies in ``[1e-4, 1e16)`` in magnitude, where Python's
  shortest round-trip ``repr`` and ECMAScript's ``Number.toString`` agree
  (``rfc8785`` itself formats from ``str(float)``),
- no key holds a character beyond U+FFFF (JCS sorts keys by UTF-16 code units,
  Python by code points; they agree within the Basic Multilingual Plane), and no
  string holds a lone surrogate.

Texts outside these bounds (rare: tiny floats, astral characters, surrogate
escapes) take the reference path. Numbers JCS cannot represent exactly are
refused on both paths.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from waste.errors import CanonicalJSONError
from waste.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes, loads_strict

# Astral characters, or escapes of surrogates (pairs or lone): the reference path decides.
_NEEDS_REFERENCE = re.compile(r"[\U00010000-\U0010FFFF]|\\u[dD][89abAB]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB]")
_MAX_INT_DIGITS = len(str(MAX_SAFE_INTEGER))
_SMALLEST_FIXED = 1e-4


class _Fallback(Exception):
    """The fast path cannot vouch for this text; use the reference path."""


def _float(literal: str) -> float | int:
    value = float(literal)
    if not math.isfinite(value):
        raise CanonicalJSONError(f"number {literal[:24]} is not finite")
    if value.is_integer():
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"number {literal[:24]} is outside ±(2^53 - 1)")
        return int(value)
    if abs(value) < _SMALLEST_FIXED:
        raise _Fallback
    return value


def _int(literal: str) -> int:
    if len(literal.lstrip("-")) > _MAX_INT_DIGITS or abs(value := int(literal)) > MAX_SAFE_INTEGER:
        raise CanonicalJSONError(f"integer {literal[:24]} is outside ±(2^53 - 1)")
    return value


def _constant(name: str) -> Any:
    raise CanonicalJSONError(f"{name} is not a JSON number")


def parse(text: str | bytes) -> tuple[Any, bool]:
    """Parse JSON text; return ``(value, fast)``: whether ``dumps_fast`` may serialise it.

    Raises ``Invalid`` (or ``CanonicalJSONError``) for text that is not JSON or
    holds numbers JCS cannot represent. On the fast path integral numbers come
    back as ints; on the reference path duplicate keys are refused too.
    """
    try:
        raw = text.decode("utf-8") if isinstance(text, bytes) else text
    except UnicodeDecodeError:
        return loads_strict(text), False  # raises, naming the byte
    if raw.isascii():  # the usual case: only escapes could spell a surrogate
        reference = "\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None
    else:
        reference = _NEEDS_REFERENCE.search(raw) is not None
    if not reference:
        try:
            return json.loads(
                raw, parse_float=_float, parse_int=_int, parse_constant=_constant
            ), True
        except _Fallback:
            pass
        except (json.JSONDecodeError, RecursionError):
            pass  # the reference reader words the error
    return loads_strict(text), False


def dumps(value: Any, fast: bool) -> bytes:
    """The RFC 8785 bytes of a value from ``parse`` (``fast`` as ``parse`` returned it)."""
    if not fast:
        return canonical_bytes(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def is_canonical(data: bytes) -> tuple[Any, bool]:
    """Parse JSON bytes; return ``(value, whether data is exactly its RFC 8785 form)``."""
    value, fast = parse(data)
    try:
        return value, dumps(value, fast) == data
    except (CanonicalJSONError, UnicodeEncodeError):
        return value, False


def first_difference(left: Any, right: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first place two JSON values differ: ``(dotted path, left part, right part)``."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        for key in sorted(set(left) | set(right)):
            where = f"{path}.{key}" if path else str(key)
            if key not in left or key not in right:
                return where, left.get(key, "(absent)"), right.get(key, "(absent)")
            found = first_difference(left[key], right[key], where)
            if found is not None:
                return found
        return None
    if isinstance(left, list) and isinstance(right, list):
        for i, (a, b) in enumerate(zip(left, right, strict=False)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        if len(left) != len(right):
            return f"{path} (length)", len(left), len(right)
        return None
    if type(left) is bool or type(right) is bool:
        same = type(left) is type(right) and left == right
    else:
        same = left == right
    return None if same else (path or "(whole value)", left, right)
