"""The downloadable evidence bundle of one alert, and its offline verifier.

Format (JSON, ``"format": "waste-custody-alert-evidence/v1"``)::

    {
      "format": "waste-custody-alert-evidence/v1",
      "generated_at": "<RFC 3339>",
      "alert": <GET /v1/alerts/{id}: the protocol object, handling, transitions>,
      "log_vkey": "<the log's vkey: informational only, never trusted>",
      "checkpoint": "<signed tlog-checkpoint note covering every transition>",
      "transitions": [                         # in seq order
        {"leaf_index": 42,
         "entry": {"kind": "alert_transition", "accepted_at": "…", "payload": {…}},
         "inclusion_proof": ["<b64 hash>", …]}  # RFC 9162, against the checkpoint
      ]
    }

``verify_evidence`` needs only the bundle and the log's verifier key obtained
separately. It checks the checkpoint's signature, each entry's inclusion
(leaf ``SHA-256(0x00 || JCS(entry))``), that every entry is about this alert,
that ``seq`` grows by one from step to step with each ``prev_leaf_index`` naming the previous
entry and each ``from_state`` the previous ``to_state``, and that the last
``to_state`` is the alert's state in the bundle. Like a manifest's audit bundle,
it proves the listed steps are in the log, not that no later step exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from waste.alerts.handling import ENTRY_KIND, transitions_of
from waste.alerts.listing import alert_detail
from waste.auth.tokens import Principal
from waste.clock import format_utc
from waste.errors import Invalid, ProofError
from waste.ledger.canonical import canonical_bytes
from waste.ledger.checkpoint import NoteVerifier, open_checkpoint
from waste.ledger.keys import b64decode, b64encode
from waste.ledger.merkle import leaf_hash, verify_inclusion
from waste.ledger.service import LogKey, publish_checkpoint
from waste.ledger.store import LogStore
from waste.uow import UnitOfWork

EVIDENCE_FORMAT = "waste-custody-alert-evidence/v1"


def build(
    *, uow: UnitOfWork, principal: Principal, alert_id: str, key: LogKey, now: datetime
) -> dict[str, Any]:
    """The alert with its evidence and every logged transition, proven against one checkpoint."""
    detail = alert_detail(uow=uow, principal=principal, alert_id=alert_id, now=now)
    steps = [t for t in transitions_of(uow=uow, alert_id=detail["id"]) if t.log_index is not None]
    needed = max((int(t.log_index or 0) for t in steps), default=-1) + 1
    checkpoint = publish_checkpoint(uow=uow, key=key, min_size=needed)
    store = LogStore(uow.session)
    items = []
    for step in steps:
        index = int(step.log_index or 0)
        items.append(
            {
                "leaf_index": index,
                "entry": json.loads(store.entry(index).entry),
                "inclusion_proof": [
                    b64encode(h) for h in store.inclusion_proof(index, checkpoint.size)
                ],
            }
        )
    return {
        "format": EVIDENCE_FORMAT,
        "generated_at": format_utc(now),
        "alert": detail,
        "log_vkey": key.vkey,
        "checkpoint": checkpoint.note,
        "transitions": items,
    }


@dataclass
class EvidenceReport:
    """The verdict on an evidence bundle: what failed (nothing if ``ok``)."""

    failures: list[str] = field(default_factory=list)
    transitions: int = 0
    checkpoint_size: int | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.failures


def verify_evidence(bundle: Any, log_vkey: str) -> EvidenceReport:
    """Verify an evidence bundle offline against the trusted log key; never raises."""
    report = EvidenceReport()
    try:
        _verify(bundle, log_vkey, report)
    except (Invalid, ProofError, KeyError, TypeError, ValueError) as exc:
        report.failures.append(f"format: {getattr(exc, 'detail', exc)}")
    return report


def _verify(bundle: Any, log_vkey: str, report: EvidenceReport) -> None:
    if not isinstance(bundle, dict) or bundle.get("format") != EVIDENCE_FORMAT:
        raise Invalid(f"not a {EVIDENCE_FORMAT} bundle")
    alert = bundle["alert"]
    checkpoint = open_checkpoint(bundle["checkpoint"], NoteVerifier.from_vkey(log_vkey))
    report.checkpoint_size = checkpoint.size
    previous: dict[str, Any] | None = None
    previous_index: int | None = None
    for position, item in enumerate(bundle["transitions"]):
        where = f"transitions[{position}]"
        index, entry = item["leaf_index"], item["entry"]
        proof = [b64decode(h, field=where) for h in item["inclusion_proof"]]
        leaf = leaf_hash(canonical_bytes(entry))
        if not verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root_hash):
            report.failures.append(f"{where}: leaf {index} is not in the checkpoint's tree")
        payload = entry["payload"]
        if entry["kind"] != ENTRY_KIND or payload["alert_id"] != alert["id"]:
            report.failures.append(f"{where}: not a transition of alert {alert['id']}")
        expected_seq = None if previous is None else previous["seq"] + 1
        if expected_seq is not None and payload["seq"] != expected_seq:
            report.failures.append(f"{where}: seq {payload['seq']}, expected {expected_seq}")
        if payload["prev_leaf_index"] != previous_index:
            report.failures.append(f"{where}: prev_leaf_index does not name the previous step")
        if previous is not None and payload["from_state"] != previous["to_state"]:
            report.failures.append(f"{where}: from_state is not the previous to_state")
        previous, previous_index = payload, index
        report.transitions += 1
    final = "open" if previous is None else previous["to_state"]
    if final != alert["state"]:
        report.failures.append(f"alert: state {alert['state']} but the log ends at {final}")
