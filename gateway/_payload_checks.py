"""Checks of device payloads: strict JSON, signatures, members and values (pure).

Each check returns the value it checked or raises ``RejectError`` with the reason;
``gateway.payloads.decode`` runs them in the order its docstring gives.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway._payload_types import (
    EARLIEST,
    FUTURE_TOLERANCE,
    MAX_FIXES,
    MAX_LOCK_ID_CHARS,
    MAX_SAFE_INT,
    MAX_SPEED_KMH,
    Fix,
    LockEvent,
    LockEventKind,
    RejectReason,
)
from waste.clock import format_utc, parse_utc
from waste.errors import Invalid
from waste.ledger.canonical import JSONFault, loads_strict

TELEMETRY_KEYS = frozenset({"device_id", "seq", "fixes", "sig"})
LOCK_KEYS = frozenset({"device_id", "seq", "lock", "sig"})
_FIX_KEYS = frozenset({"t", "lat", "lon", "speed_kmh", "heading", "hdop"})
_FIX_REQUIRED = frozenset({"t", "lat", "lon"})
_LOCK_EVENT_KEYS = frozenset({"t", "lock_id", "event", "lat", "lon"})
_LOCK_EVENT_REQUIRED = frozenset({"t", "lock_id", "event"})
STATUS_KEYS = frozenset({"online", "t"})
_EVENTS = frozenset(kind.value for kind in LockEventKind)


class RejectError(Exception):
    """A check failed: the reason and a short detail, caught by ``decode``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def fail(reason: RejectReason, detail: str) -> NoReturn:
    """Raise ``RejectError``."""
    raise RejectError(reason, detail)


def show(value: object) -> str:
    """A short repr of attacker-controlled input for a rejection detail."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- strict JSON (waste.ledger.canonical's reader, refusals sorted into reasons) ---------

_JSON_REASONS = {
    JSONFault.SYNTAX: RejectReason.NOT_JSON,
    JSONFault.DUPLICATE_KEY: RejectReason.MALFORMED,
    JSONFault.UNSAFE_INTEGER: RejectReason.MALFORMED,
    JSONFault.UNSAFE_NUMBER: RejectReason.IMPOSSIBLE_VALUE,
    JSONFault.UNREPRESENTABLE: RejectReason.MALFORMED,
}


def _refuse_json(fault: JSONFault, detail: str) -> NoReturn:
    fail(_JSON_REASONS[fault], detail[:200])


def parse_json(raw: bytes) -> object:
    """Parse strict JSON (UTF-8, no duplicate keys, no NaN, numbers within ±(2^53 - 1))."""
    return loads_strict(raw, on_fault=_refuse_json)


# --- canonical form and signatures --------------------------------------------


def signing_input(obj: Mapping[str, Any]) -> bytes:
    """The bytes a device signs: RFC 8785 JCS of ``obj`` without its ``sig`` member."""
    return rfc8785.dumps({k: v for k, v in obj.items() if k != "sig"})


def verify(obj: dict[str, Any], public_key: bytes) -> None:
    """Check ``obj["sig"]``: standard base64 of 64 bytes, Ed25519 over ``signing_input``."""
    sig_text = obj["sig"]
    try:
        sig = base64.b64decode(sig_text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        fail(RejectReason.BAD_SIGNATURE, "sig is not standard base64 with padding")
    if len(sig) != 64 or base64.b64encode(sig).decode("ascii") != sig_text:
        fail(RejectReason.BAD_SIGNATURE, "sig is not the base64 of 64 bytes")
    try:
        message = signing_input(obj)
    except rfc8785.CanonicalizationError as exc:
        fail(RejectReason.MALFORMED, f"not representable in RFC 8785: {exc}")
    except RecursionError:
        fail(RejectReason.MALFORMED, "JSON nested too deeply")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
    except InvalidSignature:
        fail(RejectReason.BAD_SIGNATURE, "signature does not verify with the device's key")


# --- shapes ------------------------------------------------------------------


def members(
    obj: object, allowed: frozenset[str], required: frozenset[str], where: str
) -> dict[str, Any]:
    """``obj`` if it is a JSON object with all of ``required`` and nothing beyond ``allowed``."""
    if not isinstance(obj, dict):
        fail(RejectReason.MALFORMED, f"{where} must be a JSON object")
    missing, extra = required - obj.keys(), obj.keys() - allowed
    if missing:
        fail(RejectReason.MALFORMED, f"{where} lacks {', '.join(sorted(missing))}")
    if extra:
        fail(RejectReason.MALFORMED, f"{where} has unknown member {show(min(extra))}")
    return obj


def seq_number(value: object) -> int:
    """A ``seq``: an integer in [0, 2^53 - 1] (``42.0`` counts as 42)."""
    # JSON has one number type: 42 and 42.0 are the same value, and the same in JCS.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INT:
        fail(RejectReason.MALFORMED, "seq must be an integer in [0, 2^53 - 1]")
    return value


def instant(value: object, where: str, now: datetime) -> datetime:
    """A protocol timestamp, not before ``EARLIEST`` nor beyond ``now + FUTURE_TOLERANCE``."""
    if not isinstance(value, str):
        fail(RejectReason.MALFORMED, f"{where} must be a string")
    try:
        t = parse_utc(value, field=where)
    except Invalid as exc:
        fail(RejectReason.BAD_TIMESTAMP, exc.detail)
    if t < EARLIEST:
        fail(RejectReason.ANCIENT_TIMESTAMP, f"{where} {value} is before {format_utc(EARLIEST)}")
    if t > now + FUTURE_TOLERANCE:
        fail(RejectReason.FUTURE_TIMESTAMP, f"{where} {value} is > 5 min after {format_utc(now)}")
    return t


def number(value: object, low: float, high: float, where: str, *, open_high: bool = False) -> float:
    """``value`` as a float if it is a number in [low, high] (or [low, high))."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        fail(RejectReason.MALFORMED, f"{where} must be a number")
    if not (low <= value < high if open_high else low <= value <= high):
        span = f"[{low:g}, {high:g}{')' if open_high else ']'}"
        fail(RejectReason.IMPOSSIBLE_VALUE, f"{where} = {value!r} is outside {span}")
    return float(value)


def optional(
    value: object, low: float, high: float, where: str, *, open_high: bool = False
) -> float | None:
    """``number`` of an optional member; None when absent or null."""
    return None if value is None else number(value, low, high, where, open_high=open_high)


def one_fix(obj: object, where: str, now: datetime) -> Fix:
    """One fix object of a telemetry payload."""
    fix = members(obj, _FIX_KEYS, _FIX_REQUIRED, where)
    return Fix(
        t=instant(fix["t"], f"{where}.t", now),
        lat=number(fix["lat"], -90, 90, f"{where}.lat"),
        lon=number(fix["lon"], -180, 180, f"{where}.lon"),
        speed_kmh=optional(fix.get("speed_kmh"), 0, MAX_SPEED_KMH, f"{where}.speed_kmh"),
        heading=optional(fix.get("heading"), 0, 360, f"{where}.heading", open_high=True),
        hdop=optional(fix.get("hdop"), 0, math.inf, f"{where}.hdop"),
    )


def fixes(value: object, now: datetime) -> tuple[Fix, ...]:
    """The ``fixes`` member: 1 to ``MAX_FIXES`` fix objects."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_FIXES:
        fail(RejectReason.MALFORMED, f"fixes must be a list of 1-{MAX_FIXES} fixes")
    return tuple(one_fix(f, f"fixes[{i}]", now) for i, f in enumerate(value))


def lock_event(obj: object, now: datetime) -> LockEvent:
    """The ``lock`` member of an e-lock payload."""
    lock = members(obj, _LOCK_EVENT_KEYS, _LOCK_EVENT_REQUIRED, "lock")
    lock_id, event = lock["lock_id"], lock["event"]
    if not isinstance(lock_id, str) or not 0 < len(lock_id) <= MAX_LOCK_ID_CHARS:
        fail(RejectReason.MALFORMED, f"lock.lock_id must be 1-{MAX_LOCK_ID_CHARS} characters")
    if not lock_id.isprintable():
        fail(RejectReason.MALFORMED, "lock.lock_id has non-printable characters")
    if not isinstance(event, str) or event not in _EVENTS:
        fail(RejectReason.MALFORMED, f"lock.event must be one of {', '.join(LockEventKind)}")
    if (lock.get("lat") is None) != (lock.get("lon") is None):
        fail(RejectReason.MALFORMED, "lock.lat and lock.lon come together or not at all")
    return LockEvent(
        t=instant(lock["t"], "lock.t", now),
        lock_id=lock_id,
        event=LockEventKind(event),
        lat=optional(lock.get("lat"), -90, 90, "lock.lat"),
        lon=optional(lock.get("lon"), -180, 180, "lock.lon"),
    )
