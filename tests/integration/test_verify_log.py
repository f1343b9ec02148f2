"""verify-log over a real database: a clean log verifies; each kind of tampering is named."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from tests.support.tamper import Logged, findings, logged_fixture, manual_checkpoints  # noqa: F401 (fixtures)
from waste.ledger import merkle
from waste.ledger.checkpoint import Checkpoint as CheckpointBody
from waste.ledger.checkpoint import NoteSigner, sign_note
from waste.ledger.keys import generate_private_key
from waste.ledger.models import Checkpoint, CustodyEvent, LogEntry, LogHead, LogNode
from waste.ledger.store import LogStore


def _append(conn: Connection, entry: dict[str, Any]) -> None:
    with Session(bind=conn) as session:
        LogStore(session).append(kind=entry["kind"], subject=None, entry=entry)
        session.flush()


def test_a_clean_log_verifies_in_worker_processes(logged: Logged) -> None:
    with logged.engine.begin() as conn:  # an entry of another kind is hashed in like any leaf
        _append(conn, {"kind": "alert_closed", "alert": "A-1", "at": "2026-11-23T08:00:00Z"})
    report = logged.verify(workers=2)
    assert report.ok, report.render()
    assert report.size == report.leaves == 9
    assert report.kinds == {"custody_event": 8, "alert_closed": 1}
    assert (report.manifests, report.events, report.signatures) == (3, 8, 10)
    assert report.checkpoints >= 2
    assert report.render().startswith("VERIFIED: log of 9 leaves")


def test_a_mass_changed_in_an_event_row_is_named(logged: Logged) -> None:
    with logged.engine.begin() as conn:
        envelope = conn.scalar(
            select(CustodyEvent.envelope).where(
                CustodyEvent.manifest_id == logged.full, CustodyEvent.seq == 2
            )
        )
        envelope["body"]["data"]["mass_kg"] = 900.0
        conn.execute(
            update(CustodyEvent)
            .where(CustodyEvent.manifest_id == logged.full, CustodyEvent.seq == 2)
            .values(envelope=envelope)
        )
    places = findings(logged.verify())
    where = f"manifest {logged.full} seq 2"
    assert list(places) == [where]
    leaf = logged.leaf_of(logged.full, 2)
    assert f"differs from log leaf {leaf}" in places[where]
    assert "at payload.body.data.mass_kg: the log has 794, the row 900" in places[where]
    assert "does not verify" in places[where]


def test_changed_entry_bytes_are_named_by_leaf(logged: Logged) -> None:
    leaf = logged.leaf_of(logged.full, 2)
    with logged.engine.begin() as conn:
        entry = conn.scalar(select(LogEntry.entry).where(LogEntry.leaf_index == leaf))
        assert b'"mass_kg":794' in entry
        conn.execute(
            update(LogEntry)
            .where(LogEntry.leaf_index == leaf)
            .values(entry=entry.replace(b'"mass_kg":794', b'"mass_kg":700'))
        )
    places = findings(logged.verify())
    assert places[f"leaf {leaf}"].startswith("entry bytes changed")
    assert set(places) == {f"leaf {leaf}", "checkpoint 8"}  # the leaf is after checkpoint 4


def test_a_deleted_event_row_is_named_with_its_leaf(logged: Logged) -> None:
    leaf = logged.leaf_of(logged.full, 1)
    with logged.engine.begin() as conn:
        conn.execute(
            delete(CustodyEvent).where(
                CustodyEvent.manifest_id == logged.full, CustodyEvent.seq.in_([1, 3])
            )
        )
    places = findings(logged.verify())
    first, last = f"manifest {logged.full} seq 1", f"manifest {logged.full} seq 3"
    assert set(places) == {first, last}
    assert places[first].startswith(f"event row deleted (log leaf {leaf} has it)")
    assert "the chain jumps from seq 0 to seq 2" in places[first]
    assert places[last].startswith("event row deleted (log leaf")


def test_swapped_seqs_are_named(logged: Logged) -> None:
    where = (CustodyEvent.manifest_id == logged.full,)
    with logged.engine.begin() as conn:
        conn.execute(update(CustodyEvent).where(*where, CustodyEvent.seq == 1).values(seq=99))
        conn.execute(update(CustodyEvent).where(*where, CustodyEvent.seq == 2).values(seq=1))
        conn.execute(update(CustodyEvent).where(*where, CustodyEvent.seq == 99).values(seq=2))
    places = findings(logged.verify())
    first, second, third = (f"manifest {logged.full} seq {n}" for n in (1, 2, 3))
    assert set(places) == {first, second, third}
    assert "stored as seq 1, but its envelope says seq 2" in places[first]
    assert "stored as seq 2, but its envelope says seq 1" in places[second]
    assert "is not after the previous event's leaf" in places[second]
    assert places[third] == "prev_hash is not the event_hash of seq 2"


def test_a_rewritten_leaf_with_consistent_nodes_is_caught_by_the_checkpoint(
    logged: Logged,
) -> None:
    leaf = logged.leaf_of(logged.full, 2)
    with logged.engine.begin() as conn:
        entry = conn.scalar(select(LogEntry.entry).where(LogEntry.leaf_index == leaf))
        forged = entry.replace(b'"mass_kg":794', b'"mass_kg":700')
        conn.execute(
            update(LogEntry)
            .where(LogEntry.leaf_index == leaf)
            .values(entry=forged, leaf_hash=merkle.leaf_hash(forged))
        )
        leaves = list(conn.scalars(select(LogEntry.leaf_hash).order_by(LogEntry.leaf_index)))
        nodes: dict[tuple[int, int], bytes] = {}
        for index, digest in enumerate(leaves):
            for level, idx, value in merkle.nodes_completed_by_append(
                index, digest, lambda lv, i: nodes[(lv, i)]
            ):
                nodes[(level, idx)] = value
        for (level, idx), value in nodes.items():
            conn.execute(
                update(LogNode).where(LogNode.level == level, LogNode.idx == idx).values(hash=value)
            )
    places = findings(logged.verify())
    assert places["checkpoint 8"] == "root does not match the recomputed tree"
    assert "checkpoint 4" not in places  # the leaf came after it
    assert not any(p.startswith(("leaf", "node")) for p in places)
    row = places[f"manifest {logged.full} seq 2"]
    assert f"the event row differs from log leaf {leaf}" in row
    assert "mass_kg: the log has 700, the row 794" in row


def test_a_truncated_log_is_named(logged: Logged) -> None:
    with logged.engine.begin() as conn:
        conn.execute(delete(LogEntry).where(LogEntry.leaf_index >= 6))
        conn.execute(update(LogHead).values(size=6))
    places = findings(logged.verify())
    assert "checkpoint 8 was signed, the log has 6 leaves" in places["log truncated"]
    assert "stored nodes lie beyond size 6" in places["log truncated"]
    assert any("its log leaf 7 is missing" in what for what in places.values())


def test_leaves_missing_below_the_head_are_named(logged: Logged) -> None:
    with logged.engine.begin() as conn:
        conn.execute(delete(LogEntry).where(LogEntry.leaf_index >= 6))
    places = findings(logged.verify())
    assert places["log truncated"] == "head says 8, 6 leaves present"


def test_a_forged_checkpoint_note_is_named(logged: Logged) -> None:
    with logged.engine.begin() as conn:
        row = conn.execute(
            select(Checkpoint.size, Checkpoint.root_hash).where(Checkpoint.size == 8)
        ).one()
        forger = NoteSigner(logged.vkey.split("+")[0], generate_private_key())
        note = sign_note(CheckpointBody(forger.name, 8, bytes(row.root_hash)).body(), forger)
        conn.execute(update(Checkpoint).where(Checkpoint.size == 8).values(note=note))
    places = findings(logged.verify())
    assert list(places) == ["checkpoint 8"]
    assert places["checkpoint 8"].startswith("forged or damaged: the note is not signed by")


def test_a_checkpoint_held_outside_catches_a_consistent_rewrite_of_the_tail(
    logged: Logged,
) -> None:
    with logged.engine.connect() as conn:
        kept = conn.scalar(select(Checkpoint.note).where(Checkpoint.size == 8))
    with logged.engine.begin() as conn:  # the operator removes every trace of leaves 6-7
        conn.execute(delete(CustodyEvent).where(CustodyEvent.leaf_index >= 6))
        conn.execute(delete(LogEntry).where(LogEntry.leaf_index >= 6))
        for level, idx in conn.execute(select(LogNode.level, LogNode.idx)).all():
            if (idx + 1) << level > 6:
                conn.execute(delete(LogNode).where(LogNode.level == level, LogNode.idx == idx))
        conn.execute(delete(Checkpoint).where(Checkpoint.size > 6))
        conn.execute(update(LogHead).values(size=6))
    assert logged.verify().ok
    report = logged.verify(checkpoints=[kept])
    held = findings(report)["log truncated"]
    assert held == "checkpoint 8 (held outside) was signed, the log has 6 leaves"
