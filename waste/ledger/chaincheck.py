"""Per-manifest chain checks of ``verify_log``, run in worker processes (pure: no database).

The orchestrator (``waste.ledger.verify_log``) streams ``custody_events`` rows in
``(manifest_id, seq)`` order, each joined with the stored leaf hash of its log
entry, and hands whole manifests to ``check_chains``. For each event row it
checks the chain (seq from 0 without gaps, ``prev_hash`` = the previous
``event_hash``, ``event_hash`` = SHA-256(JCS(body)) of the stored envelope), that
the row's columns agree with its envelope, that the log entry rebuilt from the row
(``{"kind": "custody_event", "accepted_at", "payload": envelope}``) hashes to the
leaf stored at its ``leaf_index`` — which the tree pass has already tied to the
entry bytes and the signed checkpoints — the signatures with the registered keys
valid at ``accepted_at``, and the transition by replaying the state machine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from waste.clock import format_utc, parse_utc
from waste.errors import Invalid, ProofError
from waste.ledger import exactjson
from waste.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from waste.ledger.envelope import EVENT_TYPES, GENESIS_PREV_HASH
from waste.ledger.keys import KEY_ID_RE, SIGNATURE_SIZE, KeyRecord
from waste.manifests.domain import apply_event

ENTRY_KIND = "custody_event"

# One custody_events row joined with its log entry, as the orchestrator ships it:
# (manifest_id, seq, event_hash, prev_hash, type, actor, at, accepted_at,
#  envelope JSON text, signers JSON text, leaf_index, leaf_hash | None, kind | None,
#  subject | None)
ChainRow = tuple[
    str, int, str, str, str, str, datetime, datetime, str, str, int, bytes | None, Any, Any
]
CheckpointRow = tuple[int, bytes, str]
"""(size, root_hash column, note) of a stored checkpoint."""

_BODY_MEMBERS = frozenset({"manifest_id", "seq", "prev_hash", "type", "actor", "at", "data"})
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE_B64 = 88  # len(base64 of 64 bytes)
_ENTRY_HEAD = b'{"accepted_at":'
_ENTRY_MIDDLE = b',"kind":"custody_event","payload":{"body":'


@dataclass(frozen=True)
class Finding:
    """One problem, and exactly where: ``leaf 17``, ``node (2, 5)``, ``manifest <id> seq 3``."""

    where: str
    what: str

    def render(self) -> str:
        """``where: what``."""
        return f"{self.where}: {self.what}"


@dataclass
class ChainResult:
    """What one batch of manifests showed."""

    manifests: int = 0
    events: int = 0
    signatures: int = 0
    findings: list[Finding] = field(default_factory=list)
    mismatches: list[tuple[str, int, bytes]] = field(default_factory=list)
    """(where, leaf index, entry rebuilt from the row) for rows whose leaf differs."""


class ChainChecker:
    """Checks manifests' chains against the registered keys (one per worker process)."""

    def __init__(self, keys: list[KeyRecord], log_vkey: str) -> None:
        self._keys = {k.key_id: k for k in keys}
        self._public: dict[str, Ed25519PublicKey | None] = {}
        self._verifier = NoteVerifier.from_vkey(log_vkey)

    def check_chains(self, manifests: list[list[ChainRow]]) -> ChainResult:
        """Check whole manifests (each its rows in seq order)."""
        result = ChainResult()
        for rows in manifests:
            try:
                self._manifest(rows, result)
            except Exception as exc:  # whatever the rows hold, report it and go on
                where = f"manifest {rows[0][0]}"
                result.findings.append(Finding(where, f"could not be checked: {exc!r}"))
        return result

    def check_checkpoints(self, rows: list[CheckpointRow]) -> list[Finding]:
        """Verify each stored checkpoint's note with the log key, and that it says its row."""
        findings = []
        for size, root, note in rows:
            try:
                signed = open_checkpoint(note, self._verifier)
            except (Invalid, ProofError) as exc:
                findings.append(Finding(f"checkpoint {size}", f"forged or damaged: {exc.detail}"))
                continue
            if signed.size != size or signed.root_hash != bytes(root):
                findings.append(
                    Finding(f"checkpoint {size}", "the stored size or root differs from its note")
                )
        return findings

    def _manifest(self, rows: list[ChainRow], result: ChainResult) -> None:
        result.manifests += 1
        manifest_id = rows[0][0]
        expected_seq, previous_hash, previous_leaf = 0, GENESIS_PREV_HASH, -1
        custody: Any = None
        follow = True  # replay only while every earlier event checked out
        for row in rows:
            seq, leaf_index = row[1], row[10]
            where = f"manifest {manifest_id} seq {seq}"
            problems: list[str] = []
            linked = seq == expected_seq
            if seq > expected_seq:
                gap = f"the chain jumps from seq {expected_seq - 1} to seq {seq}"
                if expected_seq == 0:
                    gap = f"the chain starts at seq {seq}"
                missing = f"manifest {manifest_id} seq {expected_seq}"
                if seq > expected_seq + 1:
                    missing += f"–{seq - 1}"
                result.findings.append(Finding(missing, f"missing from custody_events ({gap})"))
            result.events += 1
            checked = self._event(row, previous_hash if linked else None, problems, result)
            if leaf_index <= previous_leaf:
                problems.append(f"log leaf {leaf_index} is not after the previous event's leaf")
            if checked is None:
                follow = False
            else:
                at, body, signers = checked
                if follow and linked and signers is not None and not problems:
                    try:
                        custody = apply_event(
                            custody,
                            event_type=body["type"],
                            actor=body["actor"],
                            at=at,
                            data=body["data"],
                            signers=signers,
                            manifest_id=manifest_id,
                        )
                    except Invalid as exc:
                        problems.append(f"transition refused by the state machine: {exc.detail}")
                        follow = False
                    except Exception as exc:  # data the state machine never expected
                        problems.append(f"the state machine failed on this event: {exc!r}")
                        follow = False
                else:
                    follow = False
            if problems:
                result.findings.append(Finding(where, "; ".join(problems)))
            # The next event links to this row's event_hash; whether that is the hash of
            # this row's envelope is this row's own check.
            expected_seq, previous_hash, previous_leaf = seq + 1, row[2], leaf_index

    def _event(
        self, row: ChainRow, previous_hash: str | None, problems: list[str], result: ChainResult
    ) -> tuple[datetime, dict[str, Any], dict[str, str] | None] | None:
        """Check one row; (at, body, signers or None if one failed), None if unreadable."""
        (manifest_id, seq, hash_column, prev_column, type_column, actor_column, at_column) = row[:7]
        accepted_at, envelope_text, signers_text, leaf_index, stored_leaf, kind, subject = row[7:]
        at_column, accepted_at = _aware(at_column), _aware(accepted_at)
        try:
            envelope, fast = exactjson.parse(envelope_text)
            body, at, signatures = _shape(envelope)
            body_bytes = exactjson.dumps(body, fast)
            signature_bytes = exactjson.dumps(envelope["signatures"], fast)
        except Invalid as exc:
            problems.append(f"the stored envelope is unreadable: {exc.detail}")
            return None
        event_hash = hashlib.sha256(body_bytes).hexdigest()

        if body["manifest_id"] != manifest_id:
            problems.append(f"its envelope belongs to manifest {body['manifest_id']}")
        if body["seq"] != seq:
            problems.append(f"stored as seq {seq}, but its envelope says seq {body['seq']}")
        if hash_column != event_hash:
            problems.append("its event_hash is not SHA-256(JCS(body)) of the stored envelope")
        if previous_hash is not None and body["prev_hash"] != previous_hash:
            problems.append(f"prev_hash is not the event_hash of seq {seq - 1}")
        columns = (
            ("prev_hash", prev_column, body["prev_hash"]),
            ("type", type_column, body["type"]),
            ("actor", actor_column, body["actor"]),
        )
        for name, column, value in columns:
            if column != value:
                problems.append(f"column {name} says {column!r}, the envelope {value!r}")
        if at_column != at:
            problems.append(f"column at says {format_utc(at_column)}, the envelope {body['at']}")

        # JCS(entry), assembled from JCS(body): the members are fixed and already sorted.
        stamp = b'"' + format_utc(accepted_at).encode() + b'"'  # ASCII: no escaping
        entry = b"".join(
            (
                _ENTRY_HEAD,
                stamp,
                _ENTRY_MIDDLE,
                body_bytes,
                b',"signatures":',
                signature_bytes,
                b"}}",
            )
        )
        if stored_leaf is None:
            problems.append(f"its log leaf {leaf_index} is missing")
        else:
            if kind != ENTRY_KIND or subject != manifest_id:
                problems.append(f"log leaf {leaf_index} is filed as {kind!r} about {subject!r}")
            if hashlib.sha256(b"\x00" + entry).digest() != bytes(stored_leaf):
                problems.append(f"the event row differs from log leaf {leaf_index}")
                result.mismatches.append((f"manifest {manifest_id} seq {seq}", leaf_index, entry))

        signers = self._signers(signatures, body_bytes, accepted_at, problems)
        result.signatures += len(signatures)
        try:
            stored_signers = json.loads(signers_text)
        except ValueError:
            stored_signers = None
        if signers is not None and stored_signers != signers:
            problems.append(f"column signers says {stored_signers}, the signatures {signers}")
        return at, body, signers

    def _signers(
        self, signatures: list[tuple[str, bytes]], message: bytes, at: datetime, problems: list[str]
    ) -> dict[str, str] | None:
        signers: dict[str, str] = {}
        ok = True
        for key_id, signature in signatures:
            record = self._keys.get(key_id)
            public = self._public_key(key_id)
            if record is None or public is None:
                problems.append(f"signature key {key_id} is not registered (or is malformed)")
                ok = False
                continue
            if not record.valid_at(at):
                problems.append(
                    f"key {key_id} of {record.party_id} was not valid at {format_utc(at)}"
                )
                ok = False
                continue
            try:
                public.verify(signature, message)
            except InvalidSignature:
                problems.append(f"the signature by key {key_id} does not verify over JCS(body)")
                ok = False
                continue
            signers[record.party_id] = str(record.party_kind)
        return signers if ok else None

    def _public_key(self, key_id: str) -> Ed25519PublicKey | None:
        if key_id not in self._public:
            record = self._keys.get(key_id)
            try:
                raw = record.raw_public_key() if record is not None else None
                loaded = Ed25519PublicKey.from_public_bytes(raw) if raw is not None else None
            except (Invalid, ValueError):
                loaded = None
            self._public[key_id] = loaded
        return self._public[key_id]


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC; PostgreSQL aware (in the session's zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _shape(envelope: Any) -> tuple[dict[str, Any], datetime, list[tuple[str, bytes]]]:
    """Body, its time and decoded signatures, after the structural checks of ``parse_envelope``."""
    if not isinstance(envelope, dict) or set(envelope) != {"body", "signatures"}:
        raise Invalid("the envelope must have exactly the members body and signatures")
    body = envelope["body"]
    if not isinstance(body, dict) or set(body) != _BODY_MEMBERS:
        raise Invalid(f"the body must have exactly the members {sorted(_BODY_MEMBERS)}")
    seq, prev_hash = body["seq"], body["prev_hash"]
    if not isinstance(body["manifest_id"], str) or not _UUID.match(body["manifest_id"]):
        raise Invalid("body.manifest_id is not a lowercase UUID")
    if type(seq) is not int or seq < 0:
        raise Invalid("body.seq is not an integer ≥ 0")
    if not isinstance(prev_hash, str) or not _HASH.match(prev_hash):
        raise Invalid("body.prev_hash is not 64 lowercase hex digits")
    if (seq == 0) != (prev_hash == GENESIS_PREV_HASH):
        raise Invalid("body.prev_hash must be 64 zeros exactly when seq is 0")
    if body["type"] not in EVENT_TYPES:
        raise Invalid(f"body.type {body['type']!r} is not an event type")
    if not isinstance(body["actor"], str) or not body["actor"].strip():
        raise Invalid("body.actor is not a party id")
    at = parse_utc(body["at"], field="body.at")
    if not isinstance(body["data"], dict):
        raise Invalid("body.data is not an object")
    raw = envelope["signatures"]
    if not isinstance(raw, list) or not raw:
        raise Invalid("signatures must be a non-empty array")
    signatures: list[tuple[str, bytes]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"key_id", "sig"}:
            raise Invalid(f"signatures[{i}] must have exactly the members key_id and sig")
        key_id = item["key_id"]
        if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
            raise Invalid(f"signatures[{i}].key_id is not 16 lowercase hex digits")
        if any(key_id == seen for seen, _ in signatures):
            raise Invalid(f"key {key_id} signs twice")
        signature = _signature(item["sig"])
        if signature is None:
            raise Invalid(
                f"signatures[{i}].sig is not the base64 of a {SIGNATURE_SIZE}-byte signature"
            )
        signatures.append((key_id, signature))
    return body, at, signatures


def _signature(text: Any) -> bytes | None:
    """The 64 bytes of a signature in canonical padded base64 (as ``keys.b64decode`` wants)."""
    if not isinstance(text, str) or len(text) != _SIGNATURE_B64:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return raw if len(raw) == SIGNATURE_SIZE and base64.b64encode(raw).decode() == text else None


# -- worker process entry points (a ProcessPoolExecutor's initializer and tasks) --------

_checker: ChainChecker | None = None


def init_worker(keys: list[KeyRecord], log_vkey: str) -> None:
    """Set up this worker process's checker."""
    global _checker  # noqa: PLW0603 - one checker per worker process, set by the pool
    _checker = ChainChecker(keys, log_vkey)


def run_chains(manifests: list[list[ChainRow]]) -> ChainResult:
    """Task: check a batch of manifests in this worker."""
    assert _checker is not None, "init_worker was not run"
    return _checker.check_chains(manifests)


def run_checkpoints(rows: list[CheckpointRow]) -> list[Finding]:
    """Task: verify a batch of checkpoint notes in this worker."""
    assert _checker is not None, "init_worker was not run"
    return _checker.check_checkpoints(rows)


def note_root(note: str) -> tuple[int, bytes] | None:
    """``(size, root)`` as a note's text states them (unverified), or None if unreadable."""
    try:
        parsed = Checkpoint.parse(note[: note.rfind("\n\n") + 1])
    except ProofError:
        return None
    return parsed.size, parsed.root_hash
