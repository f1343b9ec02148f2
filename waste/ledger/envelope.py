"""Custody event envelopes (PROTOCOL.md §2): strict parsing, hashing, signatures, linkage.

An envelope is ``{"body": {...}, "signatures": [{"key_id", "sig"}, ...]}``.
Every signature is over ``JCS(body)``; ``event_hash = hex(SHA-256(JCS(body)))``.
The body's JSON object is kept exactly as received (``Envelope.body_json``):
hashes and signatures are computed over it, never over a re-serialised model.

Which parties *may* sign an event type is the manifest state machine's
question (``waste.manifests.domain``); this module answers only which parties
*did* sign, with keys valid at the time that counts.
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from waste.clock import ensure_utc, format_utc, parse_utc
from waste.errors import (
    CanonicalJSONError,
    ChainConflict,
    Invalid,
    KeyNotValid,
    SignatureError,
    UnknownKey,
)
from waste.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes
from waste.ledger.keys import (
    KEY_ID_RE,
    SIGNATURE_SIZE,
    KeyRecord,
    b64decode,
    public_key_b64,
    sign,
    verify,
)

GENESIS_PREV_HASH = "0" * 64
"""The ``prev_hash`` of every manifest's first event (``seq`` 0)."""

EVENT_TYPES = frozenset(
    {"filed", "cancelled", "picked_up", "handed_over", "received", "rejected", "disposed"}
)
"""The custody event types of the wire contract."""

_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_ENVELOPE_MEMBERS = frozenset({"body", "signatures"})
_BODY_MEMBERS = ("manifest_id", "seq", "prev_hash", "type", "actor", "at", "data")
_SIGNATURE_MEMBERS = frozenset({"key_id", "sig"})

KeyLookup = Callable[[str], KeyRecord | None]


@dataclass(frozen=True)
class EventBody:
    """The signed part of a custody event."""

    manifest_id: str
    seq: int
    prev_hash: str
    type: str
    actor: str
    at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Signature:
    """One party's signature over ``JCS(body)``."""

    key_id: str
    sig: str


@dataclass(frozen=True)
class Envelope:
    """A parsed custody event: the typed body, its signatures, and the body as received."""

    body: EventBody
    signatures: tuple[Signature, ...]
    body_json: Mapping[str, Any]
    body_bytes: bytes = field(default=b"", repr=False, compare=False)
    """``JCS(body)``, computed once by ``parse_envelope`` (empty: compute when needed)."""

    def event_hash(self) -> str:
        """``hex(SHA-256(JCS(body)))`` of this envelope's body."""
        return hashlib.sha256(signed_bytes(self)).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The envelope as a JSON object, body exactly as received."""
        return {
            "body": copy.deepcopy(dict(self.body_json)),
            "signatures": [{"key_id": s.key_id, "sig": s.sig} for s in self.signatures],
        }


def event_hash(body_json: Mapping[str, Any]) -> str:
    """``hex(SHA-256(JCS(body)))`` of a body's JSON object."""
    return hashlib.sha256(canonical_bytes(body_json)).hexdigest()


def signed_bytes(envelope: Envelope) -> bytes:
    """The exact bytes every signature of ``envelope`` is over: ``JCS(body)``."""
    return envelope.body_bytes or canonical_bytes(envelope.body_json)


def parse_envelope(obj: Any) -> Envelope:
    """Validate an envelope strictly; ``Invalid`` (or ``CanonicalJSONError``) naming the field."""
    if not isinstance(obj, Mapping):
        raise Invalid("the envelope must be a JSON object", field="envelope")
    _no_unknown(obj, _ENVELOPE_MEMBERS, prefix="")
    if "body" not in obj:
        raise Invalid("body is required", field="body")
    if "signatures" not in obj:
        raise Invalid("signatures are required", field="signatures")
    body_json = obj["body"]
    body = _parse_body(body_json)
    # Refuse a body whose hash could not be computed the same way by every party.
    try:
        body_bytes = canonical_bytes(body_json)
    except CanonicalJSONError as exc:
        where = "body" if exc.field is None else f"body.{exc.field}"
        raise CanonicalJSONError(exc.detail.replace("$", "body", 1), field=where) from exc
    signatures = _parse_signatures(obj["signatures"])
    frozen = copy.deepcopy(dict(body_json))
    return Envelope(
        body=body, signatures=signatures, body_json=MappingProxyType(frozen), body_bytes=body_bytes
    )


def check_signatures(envelope: Envelope, lookup: KeyLookup, at: datetime) -> dict[str, str]:
    """Verify every signature with keys valid at ``at``; return ``{party_id: party_kind}``."""
    message = signed_bytes(envelope)
    signers: dict[str, str] = {}
    for i, signature in enumerate(envelope.signatures):
        field = f"signatures[{i}]"
        record = lookup(signature.key_id)
        if record is None or record.key_id != signature.key_id:
            raise UnknownKey(f"key {signature.key_id} is not registered", field=f"{field}.key_id")
        if not record.valid_at(at):
            raise KeyNotValid(
                f"key {signature.key_id} of {record.party_id} was not valid at "
                f"{format_utc(ensure_utc(at))}",
                field=f"{field}.key_id",
            )
        raw = record.raw_public_key()
        if not verify(raw, signature.sig, message):
            raise SignatureError(
                f"signature by key {signature.key_id} does not verify over JCS(body)",
                field=f"{field}.sig",
            )
        signers[record.party_id] = str(record.party_kind)
    return signers


def check_link(body: EventBody, expected_seq: int, expected_prev_hash: str) -> None:
    """Raise ``ChainConflict`` unless ``body`` extends the chain head given."""
    if body.seq != expected_seq or body.prev_hash != expected_prev_hash:
        raise ChainConflict(
            f"manifest {body.manifest_id}: the next event must have seq {expected_seq} and "
            f"prev_hash {expected_prev_hash}, not seq {body.seq} and prev_hash {body.prev_hash}",
            field="body.seq" if body.seq != expected_seq else "body.prev_hash",
            expected_seq=expected_seq,
            expected_prev_hash=expected_prev_hash,
        )


def make_body(
    *,
    manifest_id: str,
    seq: int,
    prev_hash: str,
    type: str,
    actor: str,
    at: datetime,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """A body JSON object as a client builds it (timestamps as protocol strings)."""
    return {
        "manifest_id": manifest_id,
        "seq": seq,
        "prev_hash": prev_hash,
        "type": type,
        "actor": actor,
        "at": format_utc(at),
        "data": dict(data),
    }


def sign_body(
    body_json: Mapping[str, Any], private_keys: Iterable[Ed25519PrivateKey]
) -> dict[str, Any]:
    """An envelope JSON object: ``body_json`` signed by each key over ``JCS(body)``."""
    message = canonical_bytes(body_json)
    return {
        "body": dict(body_json),
        "signatures": [
            {"key_id": public_key_b64(key)[1], "sig": sign(key, message)} for key in private_keys
        ],
    }


def _parse_body(body: Any) -> EventBody:
    if not isinstance(body, Mapping):
        raise Invalid("body must be a JSON object", field="body")
    _no_unknown(body, frozenset(_BODY_MEMBERS), prefix="body.")
    for name in _BODY_MEMBERS:
        if name not in body:
            raise Invalid(f"body.{name} is required", field=f"body.{name}")

    manifest_id = body["manifest_id"]
    if not isinstance(manifest_id, str) or not _is_canonical_uuid(manifest_id):
        raise Invalid(
            "body.manifest_id must be a UUID in canonical lowercase form "
            "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
            field="body.manifest_id",
        )

    seq = body["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SAFE_INTEGER:
        raise Invalid("body.seq must be an integer ≥ 0", field="body.seq")

    prev_hash = body["prev_hash"]
    if not isinstance(prev_hash, str) or _HASH_RE.fullmatch(prev_hash) is None:
        raise Invalid("body.prev_hash must be 64 lowercase hex digits", field="body.prev_hash")
    if seq == 0 and prev_hash != GENESIS_PREV_HASH:
        raise Invalid("body.prev_hash must be 64 zeros when seq is 0", field="body.prev_hash")
    if seq != 0 and prev_hash == GENESIS_PREV_HASH:
        raise Invalid("body.prev_hash may be 64 zeros only when seq is 0", field="body.prev_hash")

    event_type = body["type"]
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise Invalid(
            f"body.type must be one of {', '.join(sorted(EVENT_TYPES))}", field="body.type"
        )

    actor = body["actor"]
    if not isinstance(actor, str) or not actor.strip():
        raise Invalid("body.actor must be a non-empty party id", field="body.actor")

    at = parse_utc(body["at"], field="body.at")

    data = body["data"]
    if not isinstance(data, Mapping):
        raise Invalid("body.data must be a JSON object", field="body.data")

    return EventBody(
        manifest_id=manifest_id,
        seq=seq,
        prev_hash=prev_hash,
        type=event_type,
        actor=actor,
        at=at,
        data=MappingProxyType(copy.deepcopy(dict(data))),
    )


def _parse_signatures(value: Any) -> tuple[Signature, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid("signatures must be a non-empty array", field="signatures")
    seen: set[str] = set()
    out: list[Signature] = []
    for i, item in enumerate(value):
        field = f"signatures[{i}]"
        if not isinstance(item, Mapping):
            raise Invalid(f"{field} must be an object", field=field)
        _no_unknown(item, _SIGNATURE_MEMBERS, prefix=f"{field}.")
        kid = item.get("key_id")
        if not isinstance(kid, str) or KEY_ID_RE.fullmatch(kid) is None:
            raise Invalid(
                f"{field}.key_id must be 16 lowercase hex digits", field=f"{field}.key_id"
            )
        if kid in seen:
            raise Invalid(f"key {kid} signs twice", field=f"{field}.key_id")
        seen.add(kid)
        sig = item.get("sig")
        if not isinstance(sig, str) or len(b64decode(sig, field=f"{field}.sig")) != SIGNATURE_SIZE:
            raise Invalid(
                f"{field}.sig must be the base64 of a {SIGNATURE_SIZE}-byte Ed25519 signature",
                field=f"{field}.sig",
            )
        out.append(Signature(key_id=kid, sig=sig))
    return tuple(out)


def _no_unknown(obj: Mapping[str, Any], allowed: frozenset[str], *, prefix: str) -> None:
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise Invalid(f"unknown member {prefix}{unknown[0]}", field=f"{prefix}{unknown[0]}")


def _is_canonical_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
