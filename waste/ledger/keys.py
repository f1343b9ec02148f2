"""Ed25519 keys as the wire contract fixes them (PROTOCOL.md §1).

A public key travels as ``b64(raw 32 bytes)``; its key id is
``hex(SHA-256(raw))[:16]``. Base64 is the standard alphabet with padding, and
only the canonical encoding of each byte string is accepted, so one key or
signature has exactly one spelling.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from waste.clock import ensure_utc, format_utc, parse_utc
from waste.errors import Invalid

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")

_B64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def key_id(raw_public: bytes) -> str:
    """The key id of a raw public key: ``hex(SHA-256(raw))[:16]``."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, field: str = "value") -> bytes:
    """Decode canonical standard padded base64; ``Invalid`` naming ``field`` on anything else."""
    if not isinstance(text, str):
        raise Invalid(f"{field} must be a base64 string", field=field)
    if _B64_RE.fullmatch(text) is None:
        raise Invalid(f"{field} is not standard padded base64", field=field)
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the pattern already excludes these
        raise Invalid(f"{field} is not valid base64: {exc}", field=field) from exc
    # Non-zero padding bits decode to the same bytes; refuse the second spelling.
    if b64encode(data) != text:
        raise Invalid(f"{field} is not canonical base64 (non-zero padding bits)", field=field)
    return data


def decode_public_key(b64: object, *, field: str = "public_key") -> bytes:
    """The 32 raw bytes of a base64 Ed25519 public key, checked loadable; ``Invalid`` otherwise."""
    raw = b64decode(b64, field=field)
    if len(raw) != PUBLIC_KEY_SIZE:
        raise Invalid(f"{field} must encode {PUBLIC_KEY_SIZE} bytes, not {len(raw)}", field=field)
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise Invalid(f"{field} is not an Ed25519 public key", field=field) from exc
    if has_small_order(raw):
        raise Invalid(f"{field} is a small-order point, not a usable public key", field=field)
    return raw


# Encodings of the points of small order (and their non-canonical spellings), with the
# x-sign bit cleared, as libsodium's crypto_core_ed25519_is_valid_point blocklist has them.
# A key on this list lets a forger produce signatures that verify for many messages.
_SMALL_ORDER = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def has_small_order(raw_public: bytes) -> bool:
    """Whether a 32-byte Ed25519 public key encodes a point of small order."""
    return raw_public[:31] + bytes([raw_public[31] & 0x7F]) in _SMALL_ORDER


def generate_private_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def raw_public_key(private_key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of a private key's public half."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def public_key_b64(private_key: Ed25519PrivateKey) -> tuple[str, str]:
    """``(b64 public key, key id)`` of a private key, as they are registered."""
    raw = raw_public_key(private_key)
    return b64encode(raw), key_id(raw)


def sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    """The base64 Ed25519 signature of ``message``."""
    return b64encode(private_key.sign(message))


def verify(raw_public: bytes, sig_b64: str, message: bytes) -> bool:
    """Whether ``sig_b64`` is a valid signature of ``message``; never raises on bad input."""
    try:
        signature = b64decode(sig_b64, field="sig")
        if len(signature) != SIGNATURE_SIZE or len(raw_public) != PUBLIC_KEY_SIZE:
            return False
        Ed25519PublicKey.from_public_bytes(bytes(raw_public)).verify(signature, message)
    except (Invalid, InvalidSignature, ValueError, TypeError):
        return False
    return True


def private_key_to_pem(private_key: Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_bytes(data: bytes) -> Ed25519PrivateKey:
    """A private key from PKCS#8 PEM or a raw 32-byte seed; ``Invalid`` otherwise."""
    if len(data) == PUBLIC_KEY_SIZE and not data.lstrip().startswith(b"-----BEGIN"):
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise Invalid(
            "not an unencrypted PEM or raw 32-byte private key", field="private_key"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise Invalid("the private key is not an Ed25519 key", field="private_key")
    return key


def save_private_key(private_key: Ed25519PrivateKey, path: Path | str) -> None:
    """Write a private key as PEM, readable by its owner only (mode 600)."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        out.write(private_key_to_pem(private_key))


def load_private_key(path: Path | str) -> Ed25519PrivateKey:
    """Read a private key file written by ``save_private_key`` (or a raw 32-byte seed)."""
    return private_key_from_bytes(Path(path).read_bytes())


@dataclass(frozen=True)
class KeyRecord:
    """A registered public key, its party, and the window in which it may sign."""

    key_id: str
    party_id: str
    party_kind: str
    public_key: str
    valid_from: datetime
    valid_until: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        """Whether the key may sign at ``moment``: ``valid_from ≤ moment < valid_until``."""
        moment = ensure_utc(moment)
        if moment < ensure_utc(self.valid_from):
            return False
        return self.valid_until is None or moment < ensure_utc(self.valid_until)

    def raw_public_key(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return decode_public_key(self.public_key)

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (timestamps as protocol strings)."""
        return {
            "key_id": self.key_id,
            "party_id": self.party_id,
            "party_kind": str(self.party_kind),
            "public_key": self.public_key,
            "valid_from": format_utc(ensure_utc(self.valid_from)),
            "valid_until": (
                None if self.valid_until is None else format_utc(ensure_utc(self.valid_until))
            ),
        }

    @classmethod
    def from_json(cls, obj: object, *, field: str = "key") -> KeyRecord:
        """Parse ``to_json`` output strictly; the key id must be the public key's own."""
        if not isinstance(obj, dict):
            raise Invalid(f"{field} must be an object", field=field)
        expected = {"key_id", "party_id", "party_kind", "public_key", "valid_from", "valid_until"}
        unknown = sorted(set(obj) - expected)
        if unknown:
            raise Invalid(
                f"{field} has unknown member {unknown[0]!r}", field=f"{field}.{unknown[0]}"
            )
        for name in ("key_id", "party_id", "party_kind"):
            if not isinstance(obj.get(name), str) or not obj[name]:
                raise Invalid(f"{field}.{name} must be a non-empty string", field=f"{field}.{name}")
        raw = decode_public_key(obj.get("public_key"), field=f"{field}.public_key")
        if obj["key_id"] != key_id(raw):
            raise Invalid(
                f"{field}.key_id {obj['key_id']!r} is not the key id of its public key",
                field=f"{field}.key_id",
            )
        valid_from = parse_utc(obj.get("valid_from"), field=f"{field}.valid_from")
        until = obj.get("valid_until")
        valid_until = None if until is None else parse_utc(until, field=f"{field}.valid_until")
        if valid_until is not None and valid_until <= valid_from:
            raise Invalid(
                f"{field}.valid_until must be after valid_from", field=f"{field}.valid_until"
            )
        return cls(
            key_id=obj["key_id"],
            party_id=obj["party_id"],
            party_kind=obj["party_kind"],
            public_key=obj["public_key"],
            valid_from=valid_from,
            valid_until=valid_until,
        )
