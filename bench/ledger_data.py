"""Fast generation of a large, valid log in a fresh PostgreSQL database (for bench/ledger.py).

Manifests run filed → picked_up (hauler and producer sign) → received → disposed,
signed by registered keys, in groups whose events interleave in the log as real
traffic does. Bodies are hashed and signed over their RFC 8785 bytes (checked
against ``canonical_bytes`` for one manifest per chunk), leaves and perfect nodes
come from ``waste.ledger.merkle`` (``leaf_hash``, ``nodes_completed_by_append``),
signed checkpoints from ``waste.ledger.checkpoint``, and the rows go in with COPY.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from waste.clock import format_utc
from waste.ledger import exactjson, merkle
from waste.ledger.canonical import canonical_bytes
from waste.ledger.checkpoint import Checkpoint as CheckpointBody
from waste.ledger.checkpoint import NoteSigner, sign_note
from waste.ledger.keys import b64encode, public_key_b64
from waste.ledger.models import Checkpoint, LogHead
from waste.registry.models import Party, PartyKey

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
PARTIES = 16  # of each kind
GROUP = 500  # manifests whose events interleave
ROUTE = {
    "type": "LineString",
    "coordinates": [[120.0752, 29.3061], [120.15, 29.3], [120.19, 29.25]],
}


def party_key(kind: str, n: int) -> Ed25519PrivateKey:
    """A deterministic key per party."""
    seed = hashlib.sha256(f"bench {kind} {n}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def party_id(kind: str, n: int) -> str:
    """A deterministic party id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{kind}/{n}"))


def register_parties(engine: Engine) -> None:
    """Producers, haulers and sites with one key each, valid from before T0."""
    with Session(engine) as session:
        for kind in ("producer", "hauler", "disposal_site"):
            for n in range(PARTIES):
                pid = party_id(kind, n)
                session.add(
                    Party(
                        id=pid,
                        kind=kind,
                        name=f"{kind} {n}",
                        uscc=f"BENCH{kind[:2]}{n:011d}",
                        region_code="330702",
                        address=None,
                        site=None,
                        created_at=T0,
                    )
                )
                public, kid = public_key_b64(party_key(kind, n))
                session.add(
                    PartyKey(
                        key_id=kid,
                        party_id=pid,
                        public_key=public,
                        status="active",
                        valid_from=T0 - timedelta(days=1),
                        valid_until=None,
                        created_at=T0,
                    )
                )
        session.commit()


def _events(m: int) -> list[tuple[str, str, dict[str, Any], list[tuple[str, int]]]]:
    """(type, actor, data, signers) of manifest ``m``'s four events."""
    p, h, s = m % PARTIES, (m // PARTIES) % PARTIES, (m // 7) % PARTIES
    producer, hauler, site = (
        party_id("producer", p),
        party_id("hauler", h),
        party_id("disposal_site", s),
    )
    plate, mass = f"浙G{h:05d}", 100.0 + m % 900
    filing = {
        "producer": producer,
        "hauler": hauler,
        "vehicle": plate,
        "destination": site,
        "wastes": [
            {
                "code": "900-041-49",
                "name": "Oily rags",
                "hazards": ["T", "In"],
                "form": "solid",
                "packaging": "200 L drum",
                "containers": 4,
                "mass_kg": mass,
            }
        ],
        "route": ROUTE,
        "corridor_m": 50,
        "pickup_window": {"from": "2026-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
        "deliver_by": "2030-06-01T00:00:00Z",
    }
    pickup = {
        "hauler": hauler,
        "vehicle": plate,
        "device_id": f"DEV-{h:05d}",
        "seal_id": f"SEAL-{m}",
        "mass_kg": mass - 0.5,
    }
    receipt = {
        "mass_kg": mass - 1,
        "accepted_kg": mass - 1,
        "refused_kg": 0,
        "seal_id": f"SEAL-{m}",
        "seal_intact": True,
    }
    return [
        ("filed", producer, filing, [("producer", p)]),
        ("picked_up", hauler, pickup, [("hauler", h), ("producer", p)]),
        ("received", site, receipt, [("disposal_site", s)]),
        ("disposed", site, {"operation": "D10", "mass_kg": mass - 1}, [("disposal_site", s)]),
    ]


def make_group(first: int, count: int) -> list[list[tuple[Any, ...]]]:
    """Signed events of manifests [first, first + count): one list per seq, in log order."""
    keys: dict[tuple[str, int], tuple[Ed25519PrivateKey, str]] = {}
    by_seq: list[list[tuple[Any, ...]]] = [[], [], [], []]
    for m in range(first, first + count):
        mid = str(uuid.UUID(int=m + (7 << 76)))
        prev = "0" * 64
        for seq, (kind, actor, data, signers) in enumerate(_events(m)):
            at = T0 + timedelta(minutes=m, seconds=seq)
            body = {
                "manifest_id": mid,
                "seq": seq,
                "prev_hash": prev,
                "type": kind,
                "actor": actor,
                "at": format_utc(at),
                "data": data,
            }
            body_bytes = exactjson.dumps(exactjson.parse(json.dumps(body))[0], True)
            if m == first:  # the fast path must be RFC 8785 itself
                assert body_bytes == canonical_bytes(body)
            signatures, kinds = [], {}
            for who in signers:
                if who not in keys:
                    key = party_key(*who)
                    keys[who] = (key, public_key_b64(key)[1])
                key, kid = keys[who]
                signatures.append({"key_id": kid, "sig": b64encode(key.sign(body_bytes))})
                kinds[party_id(*who)] = who[0]
            event_hash = hashlib.sha256(body_bytes).hexdigest()
            envelope = {"body": body, "signatures": signatures}
            by_seq[seq].append(
                (
                    mid,
                    seq,
                    event_hash,
                    prev,
                    kind,
                    actor,
                    at,
                    json.dumps(envelope),
                    json.dumps(kinds),
                    body_bytes,
                    exactjson.dumps(signatures, True),
                )
            )
            prev = event_hash
    return by_seq


def generate(
    url: str,
    engine: Engine,
    signer: NoteSigner,
    events: int,
    *,
    checkpoint_every: int = 100_000,
    workers: int = 2,
) -> int:
    """Write ``events`` custody events (whole manifests) and their log; return the log size."""
    register_parties(engine)
    manifests = max(1, events // 4)
    groups = [(f, min(GROUP, manifests - f)) for f in range(0, manifests, GROUP)]
    frontier: dict[int, bytes] = {}
    size = 0
    raw_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw_url) as conn, ProcessPoolExecutor(workers) as pool:
        for by_seq in _bounded(pool, groups, 2 * workers):
            events_rows, entry_rows, node_rows, notes = [], [], [], []
            for rows in by_seq:
                for mid, seq, event_hash, prev, kind, actor, at, env, signers, body, sigs in rows:
                    accepted = T0 + timedelta(days=30, milliseconds=size * 7)
                    entry = (
                        b'{"accepted_at":'
                        + json.dumps(format_utc(accepted)).encode()
                        + b',"kind":"custody_event","payload":{"body":'
                        + body
                        + b',"signatures":'
                        + sigs
                        + b"}}"
                    )
                    if size % 100_003 == 0:
                        assert entry == canonical_bytes(
                            {
                                "kind": "custody_event",
                                "accepted_at": format_utc(accepted),
                                "payload": json.loads(env),
                            }
                        )
                    leaf = merkle.leaf_hash(entry)
                    for level, idx, digest in merkle.nodes_completed_by_append(
                        size, leaf, lambda lv, _i: frontier[lv]
                    ):
                        frontier[level] = digest
                        node_rows.append((level, idx, digest))
                    events_rows.append(
                        (mid, seq, event_hash, prev, kind, actor, at, accepted, env, signers, size)
                    )
                    entry_rows.append((size, "custody_event", mid, entry, leaf))
                    size += 1
                    if size % checkpoint_every == 0:
                        notes.append(_checkpoint(size, frontier, signer))
            _copy(conn, events_rows, entry_rows, node_rows)
            for note in notes:
                conn.execute(
                    "INSERT INTO checkpoints (size, root_hash, note, created_at) "
                    "VALUES (%s, %s, %s, now())",
                    note,
                )
            conn.commit()
        if size % checkpoint_every:
            conn.execute(
                "INSERT INTO checkpoints (size, root_hash, note, created_at) "
                "VALUES (%s, %s, %s, now())",
                _checkpoint(size, frontier, signer),
            )
        conn.commit()
    with Session(engine) as session:
        session.execute(update(LogHead).values(size=size))
        session.commit()
        assert session.get(Checkpoint, size) is not None
    return size


def _bounded(
    pool: ProcessPoolExecutor, groups: list[tuple[int, int]], ahead: int
) -> Iterator[list[list[tuple[Any, ...]]]]:
    """``make_group`` over ``groups`` in order, at most ``ahead`` in flight (bounded memory)."""
    pending: deque[Future[list[list[tuple[Any, ...]]]]] = deque()
    for first, count in groups:
        pending.append(pool.submit(make_group, first, count))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _checkpoint(
    size: int, frontier: dict[int, bytes], signer: NoteSigner
) -> tuple[int, bytes, str]:
    root = root_from_frontier(size, frontier)
    return size, root, sign_note(CheckpointBody(signer.name, size, root).body(), signer)


def root_from_frontier(size: int, frontier: dict[int, bytes]) -> bytes:
    """The root of the first ``size`` leaves from the last perfect node of each level."""
    levels = [lv for lv in range(size.bit_length()) if size >> lv & 1]
    root = frontier[levels[0]]
    for level in levels[1:]:
        root = merkle.node_hash(frontier[level], root)
    return root


def _copy(
    conn: psycopg.Connection[Any], events: list[Any], entries: list[Any], nodes: list[Any]
) -> None:
    with conn.cursor() as cur:
        for table, columns, rows in (
            (
                "custody_events",
                "manifest_id, seq, event_hash, prev_hash, type, actor, at, "
                "accepted_at, envelope, signers, leaf_index",
                events,
            ),
            ("log_entries", "leaf_index, kind, subject, entry, leaf_hash", entries),
            ("log_nodes", "level, idx, hash", nodes),
        ):
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
