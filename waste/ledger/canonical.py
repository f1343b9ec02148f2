"""Canonical JSON (RFC 8785, JCS) and a strict JSON reader.

Serialisation is delegated to the ``rfc8785`` package; this module only adds a
walk that names the offending member, so a client learns *which* value the
server refused.

Representable means exactly representable as an IEEE 754 double, the only
number type of JSON as RFC 8785 sees it:

- every number lies in the I-JSON safe range ``-(2^53 - 1) ≤ n ≤ 2^53 - 1``
  (RFC 7493 §2.2). ``2^53`` itself is refused: it is a double, but so is the
  distinct integer ``2^53 + 1`` rounded to it, so a reader cannot tell them
  apart (``rfc8785`` draws the same line). Floats are held to the same range,
  because JCS writes an integral float below 10^21 as an integer literal
  (``1e20`` → ``100000000000000000000``) that a strict reader must refuse;
- floats must be finite (no NaN, no ±infinity);
- strings must be valid Unicode (no lone surrogates), object keys strings.

Fractions such as ``0.1`` are accepted: JCS defines their canonical text
(ECMAScript's shortest round-trip form), and both sides hash that text. So
``canonical_bytes`` accepts exactly what ``loads_strict`` returns.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, NoReturn

import rfc8785

from waste.errors import CanonicalJSONError, Invalid, WasteError

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer accepted (I-JSON, RFC 7493 §2.2); its negation is the smallest."""

# Digits of MAX_SAFE_INTEGER: longer literals are refused before int() sees them.
_MAX_INT_DIGITS = len(str(MAX_SAFE_INTEGER))
# Where a lone surrogate can come from: a \uD800-\uDFFF escape, or (str input only)
# the character itself; text decoded from UTF-8 cannot hold one.
_SURROGATE = re.compile("\\\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def canonical_bytes(obj: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value; ``CanonicalJSONError`` if not exact."""
    try:
        return rfc8785.dumps(_check(obj, "$"))
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - _check catches these first
        raise CanonicalJSONError(f"not representable in RFC 8785: {exc}") from exc
    except RecursionError as exc:
        raise CanonicalJSONError("JSON value is nested too deeply") from exc


class JSONFault(StrEnum):
    """Why ``loads_strict`` refused a text, for callers that sort refusals (the gateway)."""

    SYNTAX = "syntax"
    """Not UTF-8, not JSON (NaN and Infinity literals are not), or nested too deeply."""
    DUPLICATE_KEY = "duplicate_key"
    UNSAFE_INTEGER = "unsafe_integer"
    """An integer beyond ±(2^53 - 1)."""
    UNSAFE_NUMBER = "unsafe_number"
    """A fraction or exponent number that is not finite or is beyond ±(2^53 - 1)."""
    UNREPRESENTABLE = "unrepresentable"
    """Parsed, but not representable in RFC 8785 (a string holding a lone surrogate)."""


class _Refused(Exception):
    """A refusal on its way out of ``json.loads``: why, and the error to raise for it."""

    def __init__(self, fault: JSONFault, error: WasteError) -> None:
        super().__init__(error.detail)
        self.fault = fault
        self.error = error


def loads_strict(
    raw: bytes | str, *, on_fault: Callable[[JSONFault, str], NoReturn] | None = None
) -> Any:
    """Parse JSON text, refusing duplicate keys, NaN/Infinity, unsafe integers and bad UTF-8.

    A refusal raises ``Invalid`` or ``CanonicalJSONError`` naming what is wrong, unless
    ``on_fault`` is given: it is called with the ``JSONFault`` and the detail instead,
    and must raise.
    """
    try:
        return _loads(raw)
    except _Refused as refused:
        if on_fault is not None:
            on_fault(refused.fault, refused.error.detail)
        raise refused.error from refused.__cause__


def _loads(raw: bytes | str) -> Any:
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            error = Invalid(f"JSON is not valid UTF-8 (byte {exc.start})")
            raise _Refused(JSONFault.SYNTAX, error) from exc
    elif isinstance(raw, str):
        text = raw
    else:
        raise TypeError(f"loads_strict takes bytes or str, not {type(raw).__name__}")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except json.JSONDecodeError as exc:
        error = Invalid(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        raise _Refused(JSONFault.SYNTAX, error) from exc
    except RecursionError as exc:
        error = CanonicalJSONError("JSON value is nested too deeply")
        raise _Refused(JSONFault.SYNTAX, error) from exc
    if _SURROGATE.search(text) is None:
        return value  # the hooks checked every number and key: nothing left to walk for
    try:
        return _check(value, "$")
    except CanonicalJSONError as exc:
        raise _Refused(JSONFault.UNREPRESENTABLE, exc) from None
    except RecursionError as exc:  # pragma: no cover - json.loads refuses such depth first
        error = CanonicalJSONError("JSON value is nested too deeply")
        raise _Refused(JSONFault.SYNTAX, error) from exc


def _check(value: Any, path: str) -> Any:
    """Validate one JSON value recursively; return it with mappings as dicts, tuples as lists."""
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            _check_text(value, path)
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJSONError(
                f"{path}: integer {value} is outside ±(2^53 - 1) and cannot be represented exactly",
                field=_field(path),
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalJSONError(f"{path}: {value} is not a finite number", field=_field(path))
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError(
                f"{path}: {value!r} is outside ±(2^53 - 1) and cannot be represented exactly",
                field=_field(path),
            )
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, member in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(
                    f"{path}: object keys must be strings, not {type(key).__name__}",
                    field=_field(path),
                )
            _check_text(key, path)
            out[key] = _check(member, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_check(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise CanonicalJSONError(
        f"{path}: {type(value).__name__} is not a JSON value", field=_field(path)
    )


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalJSONError(
            f"{path}: string holds a lone surrogate (U+{ord(text[exc.start]):04X})",
            field=_field(path),
        ) from exc


def _field(path: str) -> str | None:
    return path[2:] if path.startswith("$.") else (None if path == "$" else path[1:])


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            error = Invalid(f"duplicate object key {key!r}", field=key)
            raise _Refused(JSONFault.DUPLICATE_KEY, error)
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise _Refused(JSONFault.SYNTAX, CanonicalJSONError(f"{name} is not a JSON number"))


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) <= _MAX_INT_DIGITS:
        value = int(literal)
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
    shown = literal if len(literal) <= 24 else literal[:24] + "…"
    error = CanonicalJSONError(f"integer {shown} is outside ±(2^53 - 1)")
    raise _Refused(JSONFault.UNSAFE_INTEGER, error)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value) or abs(value) > MAX_SAFE_INTEGER:
        shown = literal if len(literal) <= 24 else literal[:24] + "…"
        error = CanonicalJSONError(f"number {shown} is outside ±(2^53 - 1)")
        raise _Refused(JSONFault.UNSAFE_NUMBER, error)
    return value
