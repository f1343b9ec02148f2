"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure.

A message is sent with three headers: ``webhook-id`` (the message id, the same
on every retry), ``webhook-timestamp`` (integer seconds since the epoch, of
this attempt) and ``webhook-signature``: ``v1,<b64(HMAC-SHA256(key, "id.timestamp.body"))>``,
where ``key`` is the base64-decoded part of the subscription secret after
``whsec_``. Several space-separated signatures may appear (key rotation); a
receiver accepts the message if any ``v1`` one matches and the timestamp is
within its tolerance.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_BYTES = 32
DEFAULT_TOLERANCE_S = 300


class SignatureMismatch(Exception):
    """A webhook message whose signature or timestamp does not verify."""


def new_secret() -> str:
    """A fresh subscription secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one message: ``v1,<b64 HMAC-SHA256>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    msg_headers: dict[str, str],
    body: bytes,
    *,
    now: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise ``SignatureMismatch`` unless a receiver should accept this message."""
    lowered = {k.lower(): v for k, v in msg_headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        presented = lowered["webhook-signature"].split(" ")
    except (KeyError, ValueError) as exc:
        raise SignatureMismatch("missing or malformed webhook headers") from exc
    if abs(now - timestamp) > tolerance_s:
        raise SignatureMismatch("timestamp outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, p.encode()) for p in presented):
        raise SignatureMismatch("no signature matches")
