"""A signed six-event manifest chain in an in-memory log, for the ledger tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from waste.clock import format_utc, parse_utc
from waste.ledger import merkle
from waste.ledger.canonical import canonical_bytes
from waste.ledger.checkpoint import Checkpoint, NoteSigner, sign_note
from waste.ledger.envelope import GENESIS_PREV_HASH, event_hash, make_body, sign_body
from waste.ledger.keys import KeyRecord, public_key_b64

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
KEYS_FROM = datetime(2026, 1, 1, tzinfo=UTC)
MANIFEST_ID = str(uuid.UUID("5b1c0a6e-2f43-4d7e-9a51-0c8e7f3d2b11"))
LOG_ORIGIN = "log.waste-custody.example/v1"


def seeded_key(n: int) -> Ed25519PrivateKey:
    """A deterministic private key (seed = n repeated)."""
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


@dataclass
class Party:
    """A party with one registered key."""

    party_id: str
    kind: str
    key: Ed25519PrivateKey

    def record(
        self, *, valid_from: datetime = KEYS_FROM, valid_until: datetime | None = None
    ) -> KeyRecord:
        """The party's key as the registry holds it."""
        public, kid = public_key_b64(self.key)
        return KeyRecord(kid, self.party_id, self.kind, public, valid_from, valid_until)


PRODUCER = Party("P-ZJ-0001", "producer", seeded_key(1))
HAULER_1 = Party("H-ZJ-0001", "hauler", seeded_key(2))
HAULER_2 = Party("H-ZJ-0002", "hauler", seeded_key(3))
HAULER_3 = Party("H-ZJ-0003", "hauler", seeded_key(4))
SITE = Party("S-ZJ-0001", "disposal_site", seeded_key(5))
PARTIES = (PRODUCER, HAULER_1, HAULER_2, HAULER_3, SITE)
LOG_KEY = seeded_key(9)


def filing_data() -> dict[str, Any]:
    """Valid ``filed`` data for the test manifest."""
    return {
        "producer": PRODUCER.party_id,
        "hauler": HAULER_1.party_id,
        "vehicle": "浙G12345",
        "destination": SITE.party_id,
        "wastes": [
            {
                "code": "900-041-49",
                "name": "contaminated packaging",
                "hazards": ["T"],
                "form": "solid",
                "packaging": "drums",
                "containers": 12,
                "mass_kg": 2400.5,
            }
        ],
        "route": {"type": "LineString", "coordinates": [[120.07, 29.30], [120.20, 29.35]]},
        "pickup_window": {
            "from": format_utc(T0 + timedelta(hours=1)),
            "to": format_utc(T0 + timedelta(hours=4)),
        },
        "deliver_by": format_utc(T0 + timedelta(hours=10)),
    }


def _handover(src: Party, dst: Party, n: int) -> dict[str, Any]:
    return {
        "from_hauler": src.party_id,
        "to_hauler": dst.party_id,
        "vehicle": f"浙G5432{n}",
        "device_id": f"DEV-000{n + 1}",
        "seal_id": f"SEAL-10{n + 1}",
        "mass_kg": 2400.0,
    }


# (type, actor, hours after T0, data, signers)
def event_plan() -> list[tuple[str, Party, float, dict[str, Any], tuple[Party, ...]]]:
    """The six events of the happy path: file, pick up, two handovers, receive, dispose."""
    return [
        ("filed", PRODUCER, 0, filing_data(), (PRODUCER,)),
        (
            "picked_up",
            HAULER_1,
            2,
            {"hauler": HAULER_1.party_id, "vehicle": "浙G12345", "device_id": "DEV-0001",
             "seal_id": "SEAL-101", "mass_kg": 2401.0},
            (HAULER_1, PRODUCER),
        ),
        ("handed_over", HAULER_1, 3, _handover(HAULER_1, HAULER_2, 1), (HAULER_1, HAULER_2)),
        ("handed_over", HAULER_2, 4, _handover(HAULER_2, HAULER_3, 2), (HAULER_2, HAULER_3)),
        (
            "received",
            SITE,
            6,
            {"mass_kg": 2399.0, "accepted_kg": 2399.0, "refused_kg": 0, "seal_id": "SEAL-103",
             "seal_intact": True},
            (SITE,),
        ),
        ("disposed", SITE, 8, {"operation": "D10", "mass_kg": 2399.0}, (SITE,)),
    ]  # fmt: skip


def build_envelopes() -> list[dict[str, Any]]:
    """The six signed envelopes, linked by prev_hash."""
    envelopes: list[dict[str, Any]] = []
    prev = GENESIS_PREV_HASH
    for seq, (kind, actor, hours, data, signers) in enumerate(event_plan()):
        body = make_body(
            manifest_id=MANIFEST_ID,
            seq=seq,
            prev_hash=prev,
            type=kind,
            actor=actor.party_id,
            at=T0 + timedelta(hours=hours),
            data=data,
        )
        envelopes.append(sign_body(body, [p.key for p in signers]))
        prev = event_hash(body)
    return envelopes


def relink(
    envelopes: list[dict[str, Any]], signers: list[tuple[Party, ...]]
) -> list[dict[str, Any]]:
    """Renumber, relink and re-sign bodies, as an honest client would have produced them."""
    out: list[dict[str, Any]] = []
    prev = GENESIS_PREV_HASH
    for seq, (envelope, parties) in enumerate(zip(envelopes, signers, strict=True)):
        body = {**envelope["body"], "seq": seq, "prev_hash": prev}
        out.append(sign_body(body, [p.key for p in parties]))
        prev = event_hash(body)
    return out


def signers_of(seq: int) -> tuple[Party, ...]:
    """The parties that sign event ``seq`` of the happy path."""
    return event_plan()[seq][4]


@dataclass
class MemoryLog:
    """The transparency log in memory, with the server's perfect-node storage."""

    leaves: list[bytes] = field(default_factory=list)
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def get_node(self, level: int, index: int) -> bytes:
        """A stored perfect subtree hash."""
        return self.nodes[(level, index)]

    def append(self, entry: dict[str, Any]) -> int:
        """Append an entry; return its leaf index."""
        index = len(self.leaves)
        leaf = merkle.leaf_hash(canonical_bytes(entry))
        for level, idx, digest in merkle.nodes_completed_by_append(index, leaf, self.get_node):
            self.nodes[(level, idx)] = digest
        self.leaves.append(leaf)
        self.entries.append(entry)
        return index

    def checkpoint_note(self, signer: NoteSigner, size: int | None = None) -> str:
        """A signed checkpoint of the first ``size`` leaves (default: all)."""
        size = len(self.leaves) if size is None else size
        checkpoint = Checkpoint(signer.name, size, merkle.root_hash(size, self.get_node))
        return sign_note(checkpoint.body(), signer)


@dataclass
class Scenario:
    """A log holding the manifest's events among unrelated entries, and its signer."""

    log: MemoryLog
    signer: NoteSigner
    envelopes: list[dict[str, Any]]
    placed: list[tuple[int, dict[str, Any]]]  # (leaf index, entry) of each event, in seq order
    keys: list[KeyRecord]


def build_scenario(
    *,
    envelopes: list[dict[str, Any]] | None = None,
    key_records: list[KeyRecord] | None = None,
    noise: int = 3,
) -> Scenario:
    """The envelopes (default: the six signed ones) in a log among ``noise`` other entries.

    Each is accepted one minute after its body's ``at``.
    """
    log = MemoryLog()
    placed: list[tuple[int, dict[str, Any]]] = []
    envelopes = build_envelopes() if envelopes is None else envelopes
    for n in range(noise):
        log.append({"kind": "alert_handled", "accepted_at": format_utc(T0), "payload": {"n": n}})
    for seq, envelope in enumerate(envelopes):
        at = parse_utc(envelope["body"]["at"]) + timedelta(minutes=1)
        entry = {"kind": "custody_event", "accepted_at": format_utc(at), "payload": envelope}
        placed.append((log.append(entry), entry))
        for n in range(seq % 3):
            log.append(
                {"kind": "trip_telemetry", "accepted_at": format_utc(at), "payload": {"n": n}}
            )
    keys = key_records if key_records is not None else [p.record() for p in PARTIES]
    return Scenario(log, NoteSigner(LOG_ORIGIN, LOG_KEY), envelopes, placed, keys)
