"""The offline audit bundle of one manifest (PROTOCOL.md §3), and its verifier.

Bundle format (JSON, ``"format": "waste-custody-audit-bundle/v1"``)::

    {
      "format": "waste-custody-audit-bundle/v1",
      "manifest_id": "<uuid>",
      "log_vkey": "<the log's vkey: informational only, never trusted>",
      "checkpoint": "<signed tlog-checkpoint note, as served by /v1/log/checkpoint>",
      "entries": [                       # the manifest's events, in seq order
        {
          "leaf_index": 17,
          "entry": {"kind": "custody_event", "accepted_at": "<RFC 3339>",
                    "payload": <envelope>},
          "inclusion_proof": ["<b64 hash>", ...]   # RFC 9162, against the checkpoint
        }
      ],
      "keys": [<KeyRecord.to_json()>, ...]          # every signer's key and window
    }

The leaf of an entry is ``SHA-256(0x00 || JCS(entry))``. ``verify_bundle``
needs nothing but the bundle and the log's verifier key, obtained separately
(the bundle's own ``log_vkey`` is ignored). It checks, and reports by event
``seq`` and leaf index: ``checkpoint`` (signature and format), ``entry``
(shape), ``inclusion`` (each proof against the checkpoint), ``signature``
(each envelope against the bundle's keys valid at the entry's ``accepted_at``,
not the body's ``at``), ``chain`` (one manifest, seq 0..n-1 without gaps,
``prev_hash`` = previous ``event_hash``, leaf indices increasing) and
``transition`` (the manifest state machine accepts each event with its signers).

A bundle proves that its events are in the log; it cannot prove that no later
event of the manifest exists (compare with ``GET /v1/manifests/{id}/events``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from waste.clock import format_utc, parse_utc
from waste.errors import Invalid, ProofError, WasteError
from waste.ledger.canonical import canonical_bytes
from waste.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from waste.ledger.envelope import (
    Envelope,
    check_signatures,
    parse_envelope,
)
from waste.ledger.keys import KeyRecord, b64decode, b64encode
from waste.ledger.merkle import leaf_hash, verify_inclusion

BUNDLE_FORMAT = "waste-custody-audit-bundle/v1"
ENTRY_KIND = "custody_event"

_BUNDLE_MEMBERS = frozenset({"format", "manifest_id", "log_vkey", "checkpoint", "entries", "keys"})
_ITEM_MEMBERS = frozenset({"leaf_index", "entry", "inclusion_proof"})
_ENTRY_MEMBERS = frozenset({"kind", "accepted_at", "payload"})


@dataclass(frozen=True)
class Check:
    """One check of a bundle: its name, outcome, and the event it is about (if any)."""

    name: str
    ok: bool
    detail: str = ""
    seq: int | None = None
    leaf_index: int | None = None

    def render(self) -> str:
        """``event seq 3 (leaf 17): signature: …`` or ``checkpoint: …``."""
        where = ""
        if self.seq is not None:
            where = f"event seq {self.seq}"
        elif self.leaf_index is not None:
            where = "entry"
        if self.leaf_index is not None:
            where = f"{where} (leaf {self.leaf_index})"
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.name}: {self.detail}" if self.detail else f"{prefix}{self.name}"


@dataclass(frozen=True)
class AuditReport:
    """The verdict on a bundle: every check made, and what it verified."""

    ok: bool
    checks: list[Check]
    manifest_id: str | None = None
    events: int = 0
    checkpoint_size: int | None = None
    final_state: str | None = None

    @property
    def failures(self) -> list[Check]:
        """The checks that failed, in the order they were made."""
        return [c for c in self.checks if not c.ok]

    def render(self) -> str:
        """A human verdict: ``VERIFIED: …`` or ``FAILED: <first failure>`` and the rest."""
        if self.ok:
            state = f" (state {self.final_state})" if self.final_state else ""
            return (
                f"VERIFIED: manifest {self.manifest_id}: {self.events} events{state}, "
                f"checkpoint size {self.checkpoint_size}"
            )
        if not self.failures:
            return "FAILED: nothing was verified"
        first, *rest = self.failures
        lines = [f"FAILED: {first.render()}"]
        lines += [f"  also: {c.render()}" for c in rest]
        return "\n".join(lines)


def assemble_bundle(
    *,
    manifest_id: str,
    entries: Sequence[tuple[int, dict[str, Any]]],
    proofs: Sequence[Sequence[bytes]],
    keys: Sequence[KeyRecord],
    checkpoint_note: str,
    log_vkey: str,
) -> dict[str, Any]:
    """The audit bundle of one manifest: entries (seq order) with proofs, keys, checkpoint."""
    if len(entries) != len(proofs):
        raise ValueError("one inclusion proof per entry")
    unique = {k.key_id: k for k in keys}
    return {
        "format": BUNDLE_FORMAT,
        "manifest_id": manifest_id,
        "log_vkey": log_vkey,
        "checkpoint": checkpoint_note,
        "entries": [
            {
                "leaf_index": index,
                "entry": entry,
                "inclusion_proof": [b64encode(h) for h in proof],
            }
            for (index, entry), proof in zip(entries, proofs, strict=True)
        ],
        "keys": [unique[k].to_json() for k in sorted(unique)],
    }


def verify_bundle(bundle: Any, log_vkey: str) -> AuditReport:
    """Verify a bundle offline against the trusted log key; never raises on a bad bundle."""
    return _Audit(log_vkey).run(bundle)


@dataclass(frozen=True)
class _Event:
    """A bundle entry that parsed: where it sits in the log and what it says."""

    leaf_index: int
    entry: dict[str, Any]
    proof: list[bytes]
    envelope: Envelope
    accepted_at: datetime

    @property
    def seq(self) -> int:
        return self.envelope.body.seq


class _Audit:
    """One run of the verifier, collecting checks in the order they are made."""

    def __init__(self, log_vkey: str) -> None:
        self.log_vkey = log_vkey
        self.checks: list[Check] = []

    def record(
        self, name: str, ok: bool, detail: str, *, seq: int | None = None, leaf: int | None = None
    ) -> None:
        self.checks.append(Check(name, ok, detail, seq, leaf))

    def on(self, event: _Event, name: str, ok: bool, detail: str) -> None:
        self.record(name, ok, detail, seq=event.seq, leaf=event.leaf_index)

    def run(self, bundle: Any) -> AuditReport:
        try:
            manifest_id, note, raw_items, raw_keys = _bundle_parts(bundle)
        except Invalid as exc:
            self.record("format", False, exc.detail)
            return AuditReport(ok=False, checks=self.checks)

        checkpoint = self.check_checkpoint(note)
        keys = self.load_keys(raw_keys)
        events = [self.load_event(i, raw) for i, raw in enumerate(raw_items)]
        if not events:
            self.record("chain", False, "the bundle holds no events")

        custody: Any = None
        # The state after a failed event is unknown, so transitions are checked
        # only up to the first event that fails to parse, verify or apply.
        follow_state = True
        previous: _Event | None = None
        for position, event in enumerate(events):
            if event is None:
                follow_state = False
                previous = None
                continue
            if checkpoint is not None:
                self.check_inclusion(event, checkpoint)
            signers = self.check_signers(event, keys)
            self.check_chain(event, previous, manifest_id, first=position == 0)
            previous = event
            if follow_state and signers is not None:
                custody = self.check_transition(event, custody, signers)
            follow_state = follow_state and signers is not None and custody is not None
        ok = bool(self.checks) and all(c.ok for c in self.checks)
        return AuditReport(
            ok=ok,
            checks=self.checks,
            manifest_id=manifest_id,
            events=len(events),
            checkpoint_size=checkpoint.size if checkpoint else None,
            final_state=str(custody.state) if follow_state and custody is not None else None,
        )

    def check_checkpoint(self, note: str) -> Checkpoint | None:
        try:
            verifier = NoteVerifier.from_vkey(self.log_vkey)
            checkpoint = open_checkpoint(note, verifier)
        except (Invalid, ProofError) as exc:
            self.record("checkpoint", False, exc.detail)
            return None
        self.record("checkpoint", True, f"size {checkpoint.size}, signed by {verifier.name}")
        return checkpoint

    def load_keys(self, raw_keys: list[Any]) -> dict[str, KeyRecord]:
        keys: dict[str, KeyRecord] = {}
        for i, raw in enumerate(raw_keys):
            try:
                record = KeyRecord.from_json(raw, field=f"keys[{i}]")
            except Invalid as exc:
                self.record("keys", False, exc.detail)
                continue
            if record.key_id in keys:
                self.record("keys", False, f"key {record.key_id} is listed twice")
                continue
            keys[record.key_id] = record
        return keys

    def load_event(self, position: int, raw: Any) -> _Event | None:
        where = f"entries[{position}]"
        leaf: int | None = None
        try:
            if not isinstance(raw, dict) or set(raw) != _ITEM_MEMBERS:
                raise Invalid(f"{where} must have exactly the members {sorted(_ITEM_MEMBERS)}")
            index = raw["leaf_index"]
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise Invalid(f"{where}.leaf_index must be an integer ≥ 0")
            leaf = index
            hashes = raw["inclusion_proof"]
            if not isinstance(hashes, list):
                raise Invalid(f"{where}.inclusion_proof must be an array")
            proof = [b64decode(h, field=f"{where}.inclusion_proof") for h in hashes]
            entry = raw["entry"]
            if not isinstance(entry, dict) or set(entry) != _ENTRY_MEMBERS:
                raise Invalid(
                    f"{where}.entry must have exactly the members {sorted(_ENTRY_MEMBERS)}"
                )
            if entry["kind"] != ENTRY_KIND:
                raise Invalid(f"{where}.entry.kind must be {ENTRY_KIND!r}")
            accepted_at = parse_utc(entry["accepted_at"], field=f"{where}.entry.accepted_at")
            envelope = parse_envelope(entry["payload"])
        except WasteError as exc:
            field = f" ({exc.field})" if exc.field and exc.field not in exc.detail else ""
            self.record("entry", False, f"{exc.detail}{field}", leaf=leaf)
            return None
        return _Event(leaf, entry, proof, envelope, accepted_at)

    def check_inclusion(self, event: _Event, checkpoint: Checkpoint) -> None:
        size = checkpoint.size
        try:
            leaf = leaf_hash(canonical_bytes(event.entry))
        except Invalid as exc:
            self.on(event, "inclusion", False, exc.detail)
            return
        if event.leaf_index >= size:
            self.on(event, "inclusion", False, f"leaf is beyond the checkpoint's size {size}")
        elif not verify_inclusion(leaf, event.leaf_index, size, event.proof, checkpoint.root_hash):
            self.on(event, "inclusion", False, f"proof does not lead to the root of size {size}")
        else:
            self.on(event, "inclusion", True, f"in the tree of size {size}")

    def check_signers(self, event: _Event, keys: dict[str, KeyRecord]) -> dict[str, str] | None:
        try:
            signers = check_signatures(event.envelope, keys.get, event.accepted_at)
        except Invalid as exc:
            self.on(event, "signature", False, exc.detail)
            return None
        at = format_utc(event.accepted_at)
        self.on(event, "signature", True, f"by {', '.join(sorted(signers))}, keys valid at {at}")
        return signers

    def check_chain(
        self, event: _Event, previous: _Event | None, manifest_id: str, *, first: bool
    ) -> None:
        body = event.envelope.body
        problems: list[str] = []
        if body.manifest_id != manifest_id:
            problems.append(f"belongs to manifest {body.manifest_id}, not {manifest_id}")
        if first:
            if body.seq != 0:
                problems.append("the first event must have seq 0")
        elif previous is not None:  # None: the entry before did not parse
            if body.seq != previous.seq + 1:
                problems.append(f"seq {previous.seq + 1} was due after seq {previous.seq}")
            if body.prev_hash != previous.envelope.event_hash():
                problems.append(f"prev_hash is not the event_hash of seq {previous.seq}")
            if event.leaf_index <= previous.leaf_index:
                problems.append(f"leaf index is not after seq {previous.seq}'s")
        if problems:
            self.on(event, "chain", False, "; ".join(problems))
        else:
            self.on(event, "chain", True, f"event_hash {event.envelope.event_hash()}")

    def check_transition(self, event: _Event, custody: Any, signers: dict[str, str]) -> Any:
        from waste.manifests.domain import apply_event  # the manifests package imports the ledger

        body = event.envelope.body
        try:
            after = apply_event(
                custody,
                event_type=body.type,
                actor=body.actor,
                at=body.at,
                data=body.data,
                signers=signers,
                manifest_id=body.manifest_id,
            )
        except Invalid as exc:
            field = f" ({exc.field})" if exc.field and exc.field not in exc.detail else ""
            self.on(event, "transition", False, f"{body.type}: {exc.detail}{field}")
            return None
        self.on(event, "transition", True, f"{body.type} → {after.state}")
        return after


def _bundle_parts(bundle: Any) -> tuple[str, str, list[Any], list[Any]]:
    if not isinstance(bundle, dict):
        raise Invalid("the bundle must be a JSON object")
    if bundle.get("format") != BUNDLE_FORMAT:
        raise Invalid(f"the bundle format must be {BUNDLE_FORMAT!r}")
    unknown = sorted(set(bundle) - _BUNDLE_MEMBERS)
    if unknown:
        raise Invalid(f"unknown bundle member {unknown[0]!r}")
    manifest_id, note = bundle.get("manifest_id"), bundle.get("checkpoint")
    entries, keys = bundle.get("entries"), bundle.get("keys")
    if not isinstance(manifest_id, str) or not isinstance(note, str):
        raise Invalid("manifest_id and checkpoint must be strings")
    if not isinstance(entries, list) or not isinstance(keys, list):
        raise Invalid("entries and keys must be arrays")
    return manifest_id, note, entries, keys
