"""A log of real custody events, a regulator who cosigns checkpoints, and an operator who
edits the database directly — with the log's own signing key in hand.

Test modules take the fixtures ``settings`` (no background checkpoints) and ``logged`` by
importing ``manual_checkpoints`` and ``logged_fixture``."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from tests.support.parties import Actor, register
from tests.support.world import World, build_world
from waste.config import Settings
from waste.db import make_session_factory
from waste.ledger import merkle
from waste.ledger.checkpoint import Checkpoint as CheckpointBody
from waste.ledger.checkpoint import (
    NoteVerifier,
    cosign,
    cosigner_vkey,
    open_checkpoint,
    sign_note,
)
from waste.ledger.models import Checkpoint, Cosignature, CustodyEvent, LogEntry, LogHead, LogNode
from waste.ledger.service import load_or_create_log_key, publish_checkpoint
from waste.ledger.store import LogStore
from waste.ledger.verify_log import LogReport, verify_log
from waste.uow import UnitOfWork


@dataclass
class Regulator:
    """A regulator running a witness: it cosigns checkpoints and keeps what it cosigned."""

    actor: Actor
    name: str
    key: Ed25519PrivateKey

    def cosign_latest(self, http: TestClient) -> str:
        """Cosign the server's current checkpoint through the API; return the note kept."""
        note = http.get("/v1/log/checkpoint").text
        body = note.split("\n\n", 1)[0] + "\n"
        line = cosign(body, self.name, self.key, datetime.now(UTC))
        resp = http.post(
            "/v1/log/cosignatures",
            json={"size": int(body.splitlines()[1]), "signature_line": line},
            headers=self.actor.headers,
        )
        assert resp.status_code == 201, resp.text
        return note.rstrip("\n") + "\n" + line.rstrip("\n") + "\n"


@dataclass
class Logged:
    """A log of 8 custody events over three manifests, and the means to tamper with it."""

    http: TestClient
    world: World
    engine: Engine
    settings: Settings
    vkey: str
    full: str  # filed, picked up, received, disposed
    picked: str  # filed, picked up
    cancelled: str  # filed, cancelled

    def verify(self, workers: int = 1, checkpoints: Sequence[str] = ()) -> LogReport:
        """Run verify-log over the database with the log's key (and notes held outside)."""
        return verify_log(self.engine, self.vkey, workers=workers, checkpoints=checkpoints)

    @property
    def verifier(self) -> NoteVerifier:
        """The log's verifier key, as every auditor pins it."""
        return NoteVerifier.from_vkey(self.vkey)

    def regulator(self, name: str, region: str = "330700") -> Regulator:
        """Register a regulator and its witness key with the log."""
        actor = register(self.http, self.world.admin, "regulator", regions=[region])
        key = Ed25519PrivateKey.generate()
        resp = self.http.post(
            "/v1/log/witnesses",
            json={"name": name, "vkey": cosigner_vkey(name, key)},
            headers=actor.headers,
        )
        assert resp.status_code == 201, resp.text
        return Regulator(actor, name, key)

    def size(self) -> int:
        """The log's size (its head row)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(LogHead.size)) or 0)

    def leaf_of(self, manifest_id: str, seq: int) -> int:
        """The leaf index of one custody event."""
        with self.engine.connect() as conn:
            leaf = conn.scalar(
                select(CustodyEvent.leaf_index).where(
                    CustodyEvent.manifest_id == manifest_id, CustodyEvent.seq == seq
                )
            )
        assert leaf is not None
        return int(leaf)

    # --- what an operator with database access and the log key can do -----------------

    def truncate(self, size: int) -> None:
        """Remove every trace of leaves ≥ size: rows, nodes, checkpoints and cosignatures."""
        with self.engine.begin() as conn:
            conn.execute(delete(CustodyEvent).where(CustodyEvent.leaf_index >= size))
            conn.execute(delete(LogEntry).where(LogEntry.leaf_index >= size))
            for level, idx in conn.execute(select(LogNode.level, LogNode.idx)).all():
                if (idx + 1) << level > size:
                    conn.execute(delete(LogNode).where(LogNode.level == level, LogNode.idx == idx))
            conn.execute(delete(Cosignature).where(Cosignature.checkpoint_size > size))
            conn.execute(delete(Checkpoint).where(Checkpoint.size > size))
            conn.execute(update(LogHead).values(size=size))

    def append_other(self, count: int, tag: str) -> None:
        """Append entries of a kind verify-log hashes but does not interpret."""
        with self.engine.begin() as conn, Session(bind=conn) as session:
            store = LogStore(session)
            for i in range(count):
                entry = {
                    "kind": "alert_closed",
                    "alert": f"{tag}-{i}",
                    "at": "2026-11-23T08:00:00Z",
                }
                store.append(kind="alert_closed", subject=None, entry=entry)
            session.flush()

    def resign(self) -> str:
        """Sign a checkpoint of the current size with the log's own key (the operator has it)."""
        key = load_or_create_log_key(self.settings.resolved_log_key_path, self.settings.log_origin)
        with UnitOfWork(make_session_factory(self.engine)) as uow:
            return publish_checkpoint(uow=uow, key=key).note

    def resign_at(self, size: int) -> str:
        """A note signed with the log key over the current tree's first ``size`` leaves."""
        key = load_or_create_log_key(self.settings.resolved_log_key_path, self.settings.log_origin)
        with UnitOfWork(make_session_factory(self.engine)) as uow:
            root = LogStore(uow.session).root(size)
        return sign_note(CheckpointBody(key.signer.name, size, root).body(), key.signer)

    def swap_leaves(self, a: int, b: int) -> None:
        """Exchange two leaves' entries and leaf hashes, leaving the stored nodes as they are."""
        with self.engine.begin() as conn:
            rows = {
                r.leaf_index: (bytes(r.entry), bytes(r.leaf_hash))
                for r in conn.execute(
                    select(LogEntry.leaf_index, LogEntry.entry, LogEntry.leaf_hash).where(
                        LogEntry.leaf_index.in_([a, b])
                    )
                )
            }
            for here, there in ((a, b), (b, a)):
                entry, leaf = rows[there]
                conn.execute(
                    update(LogEntry)
                    .where(LogEntry.leaf_index == here)
                    .values(entry=entry, leaf_hash=leaf)
                )


def build_log(
    http: TestClient, admin: dict[str, str], engine: Engine, settings: Settings
) -> Logged:
    """Three manifests driven through the API: 8 custody events, checkpoints at 4 and 8."""
    world = build_world(http, admin)
    producer, hauler, site = world.producer, world.haulers[0].client, world.sites[0]
    full = producer.file(world.filing())["manifest_id"]
    hauler.pick_up(full, world.pickup(), cosigners=[producer.key])
    picked = producer.file(world.filing())["manifest_id"]
    hauler.pick_up(picked, world.pickup(), cosigners=[producer.key])
    http.get("/v1/log/checkpoint")
    receipt = {
        "mass_kg": 794.0,
        "accepted_kg": 794.0,
        "refused_kg": 0,
        "seal_id": f"SEAL-{world.haulers[0].device_id}",
        "seal_intact": True,
    }
    site.receive(full, receipt)
    cancelled = producer.file(world.filing())["manifest_id"]
    site.dispose(full, {"operation": "D10", "mass_kg": 794.0})
    producer.cancel(cancelled, "plans changed")
    assert http.get("/v1/log/checkpoint").text.split("\n")[1] == "8"
    return Logged(http, world, engine, settings, producer.log_key(), full, picked, cancelled)


@pytest.fixture(name="settings")
def manual_checkpoints(settings: Settings) -> Settings:
    """No background checkpoints: only those the tests ask for."""
    settings.checkpoint_interval_s = 3600
    return settings


@pytest.fixture(name="logged")
def logged_fixture(
    client: TestClient, admin_headers: dict[str, str], engine: Engine, settings: Settings
) -> Logged:
    """Three manifests, 8 custody events, checkpoints at sizes 4 and 8."""
    return build_log(client, admin_headers, engine, settings)


def findings(report: LogReport) -> dict[str, str]:
    """What a failed report names, by place (the report is printed for a failing test)."""
    print(report.render())  # shown by pytest when an assertion fails
    assert not report.ok, report.render()
    return {f.where: f.what for f in report.findings}


def root_of(note: str, verifier: NoteVerifier) -> tuple[int, bytes]:
    """(size, root) of a note signed by the log key."""
    checkpoint = open_checkpoint(note, verifier)
    return checkpoint.size, checkpoint.root_hash


def b64(data: bytes) -> str:
    """Standard base64."""
    return base64.b64encode(data).decode()


def consistent(
    http: TestClient, old: tuple[int, bytes], new: tuple[int, bytes]
) -> tuple[bool, list[bytes]]:
    """Whether the server's consistency proof links tree ``old`` to tree ``new``."""
    resp = http.get("/v1/log/proof/consistency", params={"old": old[0], "new": new[0]})
    if resp.status_code != 200:
        return False, []
    proof = [base64.b64decode(h) for h in resp.json()["hashes"]]
    return merkle.verify_consistency(old[0], new[0], old[1], new[1], proof), proof


def body_of(note: str) -> str:
    """The checkpoint text of a signed note (what cosignatures sign)."""
    return note.split("\n\n", 1)[0] + "\n"


def parse_body(note: str) -> CheckpointBody:
    """The checkpoint in a note, unverified."""
    return CheckpointBody.parse(body_of(note))
