"""Console sessions: a signed, expiring cookie bound to the API token the user signed in with.

The cookie reads ``v1.<b64 claims>.<b64 mac>``. The claims name the token (its public
id, or ``admin`` for the bootstrap admin token), the expiry and a random nonce; the
MAC is HMAC-SHA-256 under the console key over the claims *and the token's stored
secret hash*, so the cookie never carries the token, cannot be forged without the
server key, and stops working when the token is revoked, expires or is re-issued.

The console key is derived from the transparency log's Ed25519 key (deterministic
signatures, RFC 8032: a fixed, domain-separated text signed by the log key is a
secret only the key holder can compute), so every worker process of one deployment
shares it with nothing new to configure. The per-session CSRF token is an HMAC of
the nonce under the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from waste.ledger.service import LogKey

COOKIE = "waste_console"
LOGIN_COOKIE = "waste_console_login"
SESSION_TTL = timedelta(hours=8)
ADMIN = "admin"
_VERSION = "v1"
_KEY_CONTEXT = "waste-custody console session key v1\n"


@dataclass(frozen=True, slots=True)
class Claims:
    """What a session cookie says: which token, until when, and its nonce."""

    token_id: str
    expires: int  # unix seconds
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def admin_token_hash(admin_token: str) -> str:
    """What a session binds to for the bootstrap admin token."""
    return hashlib.sha256(admin_token.encode()).hexdigest()


class SessionSigner:
    """Issues and opens session cookies and per-session CSRF tokens under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a console session key needs at least 32 bytes")
        self._key = key

    @classmethod
    def from_log_key(cls, log_key: LogKey) -> SessionSigner:
        """The signer whose key is derived from the log's signing key."""
        line = log_key.signer.signature_line(_KEY_CONTEXT)
        return cls(hashlib.sha256(b"console\x00" + line.encode()).digest())

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x00".join(parts).encode(), hashlib.sha256).digest()

    def issue(self, *, token_id: str, bound_to: str, now: datetime) -> str:
        """A fresh cookie value for ``token_id``, valid for ``SESSION_TTL`` from ``now``."""
        claims = Claims(token_id, int((now + SESSION_TTL).timestamp()), secrets.token_hex(16))
        body = _b64(
            json.dumps(
                {"t": claims.token_id, "e": claims.expires, "n": claims.nonce},
                separators=(",", ":"),
            ).encode()
        )
        return f"{_VERSION}.{body}.{_b64(self._mac(_VERSION, body, bound_to))}"

    def claims(self, cookie: str, *, now: datetime) -> Claims | None:
        """The unexpired claims of a well-formed cookie (its MAC is checked by ``verify``)."""
        parts = cookie.split(".")
        if len(parts) != 3 or parts[0] != _VERSION or len(cookie) > 512:
            return None
        try:
            raw = json.loads(_unb64(parts[1]))
            claims = Claims(str(raw["t"]), int(raw["e"]), str(raw["n"]))
        except (binascii.Error, ValueError, TypeError, KeyError):
            return None
        if claims.expires <= now.timestamp():
            return None
        return claims

    def verify(self, cookie: str, *, bound_to: str) -> bool:
        """Whether ``cookie``'s MAC holds for a token whose stored hash is ``bound_to``."""
        parts = cookie.split(".")
        if len(parts) != 3:
            return False
        # Compared as text: only the one canonical encoding of the MAC is accepted.
        expected = _b64(self._mac(parts[0], parts[1], bound_to))
        return hmac.compare_digest(parts[2].encode(), expected.encode())

    def csrf_token(self, nonce: str) -> str:
        """The CSRF token of the session (or login form) with this nonce."""
        return _b64(self._mac("csrf", nonce))

    def csrf_ok(self, nonce: str, presented: str) -> bool:
        """Whether ``presented`` is the CSRF token of ``nonce`` (constant time)."""
        return hmac.compare_digest(presented.encode(), self.csrf_token(nonce).encode())
