"""Pure telemetry rules: binding, leg changes, re-binding spans, leaves and roots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.signing import encode_telemetry
from gateway.payloads import Fix, LockEvent, LockEventKind, StatusMessage
from waste.ledger import merkle
from waste.ledger.canonical import canonical_bytes
from waste.telemetry.domain import (
    MAX_DEAD_LETTER_BYTES,
    DeadLetterIn,
    LegWindow,
    PresenceIn,
    StoredFix,
    StoredLock,
    bind,
    digest_track,
    group_tracks,
    leaf,
    leg_changes,
    rebind_spans,
    seal_entry,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _leg(
    index: int = 0,
    opened: float = 0,
    closed: float | None = None,
    vehicle: str = "浙G00001",
    manifest: str = "m-1",
) -> LegWindow:
    return LegWindow(
        manifest_id=manifest,
        leg_index=index,
        vehicle=vehicle,
        device_id="DEV-1",
        seal_id="SEAL-1",
        opened_at=_m(opened),
        closed_at=None if closed is None else _m(closed),
        destination="site",
        route=None,
        corridor_m=50.0,
    )


def test_binding_is_half_open_and_prefers_the_latest_opened_leg() -> None:
    first, second = _leg(0, 0, 30), _leg(1, 30, None)
    assert bind([first, second], _m(-1)) is None
    assert bind([first, second], _m(0)) == first
    assert bind([first, second], _m(30)) == second  # the handover instant belongs to the new leg
    other = _leg(0, 10, None, manifest="m-2")  # another load on the same vehicle
    assert bind([first, other], _m(20)) == other
    assert bind([first, other], _m(5)) == first


def test_leg_changes_name_new_and_changed_legs_only() -> None:
    open_leg = _leg(0, 0, None)
    closed = _leg(0, 0, 30)
    assert leg_changes({}, [open_leg]) == [(None, open_leg)]
    assert leg_changes({0: open_leg}, [open_leg]) == []
    nxt = _leg(1, 30, None, vehicle="浙G00002")
    assert leg_changes({0: open_leg}, [closed, nxt]) == [(open_leg, closed), (None, nxt)]


def test_rebind_spans_cover_where_binding_may_change() -> None:
    open_leg, closed = _leg(0, 0, None), _leg(0, 0, 30)
    nxt = _leg(1, 30, None, vehicle="浙G00002")
    spans = rebind_spans([(open_leg, closed), (None, nxt)])
    assert spans == {"浙G00001": [(_m(30), None)], "浙G00002": [(_m(30), None)]}
    assert rebind_spans([(None, closed)]) == {"浙G00001": [(_m(0), _m(30))]}
    # overlapping and touching spans of one vehicle merge
    a, b = _leg(0, 0, 10, manifest="a"), _leg(0, 10, 20, manifest="b")
    assert rebind_spans([(None, a), (None, b)]) == {"浙G00001": [(_m(0), _m(20))]}


def test_leaf_is_the_fix_exactly_as_the_device_signed_it() -> None:
    key = Ed25519PrivateKey.generate()
    fix = Fix(_m(0), 29.3061, 120.0752, 41.5, 87.0, 0.9)
    payload = encode_telemetry("DEV-1", 1, [fix], key)
    signed_fix = json.loads(payload)["fixes"][0]
    assert leaf(fix) == canonical_bytes(signed_fix)
    assert leaf(fix) in payload
    lock = LockEvent(_m(1), "SEAL-1", LockEventKind.SEALED)
    assert json.loads(leaf(lock)) == {
        "t": "2026-11-23T08:01:00Z",
        "lock_id": "SEAL-1",
        "event": "sealed",
    }


def test_digest_orders_by_time_then_message_key() -> None:
    a = Fix(_m(2), 1.0, 2.0)
    b = Fix(_m(1), 1.5, 2.5)
    c = LockEvent(_m(1), "SEAL-1", LockEventKind.UNSEALED)
    records = [
        ((a.t, "DEV-1", 5, 0), a),
        ((b.t, "DEV-1", 7, 0), b),
        ((c.t, "DEV-1", 6, 0), c),
    ]
    digest = digest_track(records)
    expected = merkle.root_of([merkle.leaf_hash(leaf(r)) for r in (c, b, a)])
    assert digest.root == expected.hex()
    assert (digest.count, digest.first_t, digest.last_t) == (3, _m(1), _m(2))
    assert digest_track(list(reversed(records))) == digest
    empty = digest_track([])
    assert (empty.count, empty.first_t, empty.root) == (0, None, merkle.EMPTY_ROOT.hex())


def test_seal_entry_shape() -> None:
    digest = digest_track([((_m(1), "DEV-1", 1, 0), Fix(_m(1), 1.0, 2.0))])
    entry = seal_entry(leg=_leg(0, 0, 30), digest=digest, version=2, accepted_at=_m(40))
    assert entry["kind"] == "leg_telemetry"
    assert entry["accepted_at"] == "2026-11-23T08:40:00Z"
    assert entry["payload"] == {
        "manifest_id": "m-1",
        "leg_index": 0,
        "device_id": "DEV-1",
        "vehicle": "浙G00001",
        "count": 1,
        "first_t": "2026-11-23T08:01:00Z",
        "last_t": "2026-11-23T08:01:00Z",
        "root": digest.root,
        "version": 2,
    }
    canonical_bytes(entry)  # representable in the log


def test_group_tracks_sorts_each_group_by_time() -> None:
    late = StoredFix("DEV-1", 3, 0, "V", Fix(_m(5), 1, 1), _m(60))
    early = StoredFix("DEV-1", 3, 1, "V", Fix(_m(1), 1, 1), _m(60))
    bound = StoredFix("DEV-1", 9, 0, "V", Fix(_m(50), 1, 1), _m(60), "m-1", 0)
    lock = StoredLock("DEV-1", 4, "V", LockEvent(_m(2), "S", LockEventKind.TAMPER), _m(60))
    updates = group_tracks([bound, late, early], [lock])
    assert [(u.manifest_id, u.first_t) for u in updates] == [(None, _m(1)), ("m-1", _m(50))]
    assert [f.fix.t for f in updates[0].fixes] == [_m(1), _m(5)]
    assert updates[0].locks == (lock,)


def test_dead_letter_keeps_a_capped_payload_and_a_printable_topic() -> None:
    big = DeadLetterIn(
        "waste/v1/devices/x/\x00", b"x" * (MAX_DEAD_LETTER_BYTES + 5), "r", "d", None, T0
    )
    assert len(big.kept_payload) == MAX_DEAD_LETTER_BYTES
    assert "\x00" not in big.shown_topic
    same = DeadLetterIn(big.topic, big.payload, "other", "d", None, _m(1))
    assert same.digest == big.digest


def test_presence_source() -> None:
    assert PresenceIn(StatusMessage("D", True), True, T0).source == "retained"
    assert PresenceIn(StatusMessage("D", False), False, T0).source == "will"
    assert PresenceIn(StatusMessage("D", False, T0), False, T0).source == "device"
