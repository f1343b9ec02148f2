"""Pure token handling: format, hashing and constant-time comparison.

A token reads ``wst_<id>_<secret>``: the 16-hex id finds the row, and only
SHA-256 of the secret is stored. The secret has 256 bits of entropy, so a fast
hash is enough (no password stretching needed) and a leaked table reveals no
usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from waste.registry.domain import Role

_TOKEN = re.compile(r"^wst_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
UNKNOWN_SECRET_SHA256 = "0" * 64
"""Compared against when a token's id is unknown; no secret hashes to it."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role, the party it acts for, and regulators' region scopes."""

    role: Role
    party_id: str | None = None
    regions: tuple[str, ...] = ()
    token_id: str | None = None
    party_region: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly minted token: the secret is shown once and never stored."""

    token_id: str
    secret_sha256: str
    plaintext: str


def mint() -> NewToken:
    """Make a new random token."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, hash_secret(secret), f"wst_{token_id}_{secret}")


def hash_secret(secret: str) -> str:
    """The stored form of a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, or None."""
    m = _TOKEN.match(token)
    return (m.group(1), m.group(2)) if m else None


def secret_matches(secret: str, stored_sha256: str) -> bool:
    """Compare a presented secret with the stored hash in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_sha256)


def admin_matches(presented: str, configured: str) -> bool:
    """Compare a presented bootstrap admin token with the configured one in constant time.

    Both are hashed first, so that not even the configured token's length shows.
    """
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(configured.encode()).digest()
    )
