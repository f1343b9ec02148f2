"""The ingest loop on a fake transport and a real database (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

import gateway.ingest as ingest_module
from devices.signing import encode_telemetry, fix_to_wire, sign
from gateway.payloads import Fix
from gateway.topics import status_topic, telemetry_topic
from tests.support.telemetry import Rig, Vehicle, make_rig, minutes_ago
from waste.clock import utcnow
from waste.db import make_session_factory
from waste.telemetry.domain import MAX_DEAD_LETTER_BYTES, TrackUpdate
from waste.telemetry.models import (
    DeadLetter,
    DeviceMessage,
    DevicePresence,
    TelemetryFix,
    TelemetryLockEvent,
)
from waste.telemetry.queries import track
from waste.uow import UnitOfWork

Message = tuple[str, bytes]


def _sample(rig: Rig, name: str, labels: dict[str, str] | None = None) -> float:
    value = rig.ingestor.metrics.registry.get_sample_value(name, labels or {})
    return value or 0.0


def _signed(truck: Vehicle, **members: Any) -> bytes:
    obj: dict[str, Any] = {"device_id": truck.device_id, "seq": 999}
    obj.update(members)
    return sign(obj, truck.key)


def _wire(t: datetime, **over: Any) -> dict[str, Any]:
    return {**fix_to_wire(Fix(t, 29.3, 120.07)), **over}


def _bad_inputs(truck: Vehicle, other: Vehicle) -> dict[str, tuple[Message, str]]:
    now = utcnow()
    topic = telemetry_topic(truck.device_id)
    stranger = Ed25519PrivateKey.generate()
    pre_epoch = datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    return {
        "malformed_json": ((topic, b'{"device_id": "DEV'), "not_json"),
        "binary_garbage": ((topic, os.urandom(256) + b"\xff\xfe"), "not_json"),
        "nan": ((topic, b'{"device_id":"x","seq":1,"fixes":[{"lat":NaN}],"sig":"x"}'), "not_json"),
        "wrong_types": ((topic, _signed(truck, seq="7", fixes=[_wire(now)])), "malformed"),
        "missing_fields": ((topic, _signed(truck)), "malformed"),
        "huge_array": ((topic, _signed(truck, fixes=[_wire(now)] * 501)), "malformed"),
        "lat_out_of_range": (
            (topic, _signed(truck, fixes=[_wire(now, lat=91.0)])),
            "impossible_value",
        ),
        "lon_out_of_range": (
            (topic, _signed(truck, fixes=[_wire(now, lon=-181)])),
            "impossible_value",
        ),
        "future": (
            (topic, _signed(truck, fixes=[_wire(now + timedelta(hours=1))])),
            "future_timestamp",
        ),
        "pre_epoch": ((topic, _signed(truck, fixes=[_wire(pre_epoch)])), "ancient_timestamp"),
        "unknown_device": (
            (
                telemetry_topic("DEV-NOBODY"),
                encode_telemetry("DEV-NOBODY", 1, [Fix(now, 1, 1)], stranger),
            ),
            "unknown_device",
        ),
        "device_id_not_topic": ((topic, other.telemetry(now)[1]), "topic_mismatch"),
        "other_devices_key": (
            (topic, encode_telemetry(truck.device_id, 5, [Fix(now, 1, 1)], other.key)),
            "bad_signature",
        ),
        "one_mib": ((topic, b"{" + b" " * (1024 * 1024 - 2) + b"}"), "oversized"),
        "bad_topic": (("waste/v1/devices/DEV-1/unknown", b"{}"), "bad_topic"),
        "bad_status": ((status_topic(truck.device_id), b'{"online": "yes"}'), "malformed"),
    }


def test_valid_batch_is_stored_then_acked(rig: Rig, truck: Vehicle) -> None:
    t = [minutes_ago(m) for m in (3, 2, 1)]
    rig.send(truck.telemetry(*t))
    rig.send(truck.lock(t[1], "sealed"))
    rig.pump()
    assert rig.count(DeviceMessage) == 2
    fixes = rig.rows(TelemetryFix, TelemetryFix.t)
    assert [(f.t, f.vehicle, f.manifest_id) for f in fixes] == [(x, truck.plate, None) for x in t]
    assert rig.count(TelemetryLockEvent, event="sealed") == 1
    assert len(rig.transport.acked) == 2
    assert rig.transport.unacked == []
    assert [len(u.fixes) for u in rig.tracks] == [3]


def test_every_bad_input_is_dead_lettered_and_the_next_message_stored(
    rig: Rig, truck: Vehicle, other_truck: Vehicle
) -> None:
    cases = _bad_inputs(truck, other_truck)
    for n, (case, ((topic, payload), reason)) in enumerate(cases.items(), start=1):
        rig.send((topic, payload))
        rig.send(truck.telemetry(minutes_ago(1)))
        rig.pump()
        letter = rig.rows(DeadLetter, DeadLetter.id)[-1]
        assert (letter.reason, letter.topic, letter.payload, letter.size) == (
            reason,
            topic,
            payload,
            len(payload),
        ), case
        assert rig.count(DeadLetter) == n, case
        assert rig.count(TelemetryFix) == n, case  # the valid message right after: stored
        assert len(rig.transport.acked) == 2 * n, case
    for reason in {reason for _, reason in cases.values()}:
        expected = sum(1 for _, r in cases.values() if r == reason)
        labels = {"reason": reason}
        assert _sample(rig, "waste_gateway_messages_rejected_total", labels) == expected


def test_dead_letters_keep_one_mib_of_a_larger_payload_once(rig: Rig, truck: Vehicle) -> None:
    payload = b"\x00" * (MAX_DEAD_LETTER_BYTES + 100)
    rig.send((telemetry_topic(truck.device_id), payload))
    rig.send((telemetry_topic(truck.device_id), payload))  # the same garbage again: one row
    rig.pump()
    (letter,) = rig.rows(DeadLetter, DeadLetter.id)
    assert (len(letter.payload), letter.size, letter.deliveries) == (
        MAX_DEAD_LETTER_BYTES,
        len(payload),
        2,
    )
    assert _sample(rig, "waste_gateway_messages_rejected_total", {"reason": "oversized"}) == 2


def test_duplicates_are_acked_and_stored_once(rig: Rig, truck: Vehicle) -> None:
    message = truck.telemetry(minutes_ago(2), minutes_ago(1))
    rig.send(message)
    rig.send(message)  # in the same batch
    rig.pump()
    rig.send(message, dup=True)  # a replay, later
    reencoded = json.dumps(json.loads(message[1]), indent=1).encode()  # same content, other bytes
    rig.send((message[0], reencoded))
    rig.pump()
    assert rig.count(DeviceMessage) == 1
    assert rig.count(TelemetryFix) == 2
    assert len(rig.transport.acked) == 4
    assert _sample(rig, "waste_gateway_messages_duplicate_total") == 3
    assert rig.count(DeadLetter) == 0
    assert sum(len(u.fixes) for u in rig.tracks) == 2


def test_a_reused_seq_with_other_content_is_dead_lettered(rig: Rig, truck: Vehicle) -> None:
    rig.send(truck.telemetry(minutes_ago(2), seq=7))
    rig.pump()
    rig.send(truck.telemetry(minutes_ago(1), seq=7))
    rig.pump()
    assert rig.count(TelemetryFix) == 1
    (letter,) = rig.rows(DeadLetter, DeadLetter.id)
    assert (letter.reason, letter.device_id) == ("seq_reused", truck.device_id)
    assert len(rig.transport.acked) == 2


def test_killed_between_commit_and_ack_the_redelivery_is_a_duplicate(
    rig: Rig, truck: Vehicle
) -> None:
    rig.send(truck.telemetry(minutes_ago(1)))
    rig.transport.stop()  # the connection is gone by the time the ack is sent
    rig.pump()
    assert rig.transport.acked == []
    assert rig.count(TelemetryFix) == 1
    rig.transport.start()
    rig.transport.reconnect()  # the broker redelivers what was not acknowledged
    rig.pump()
    assert rig.count(TelemetryFix) == 1
    assert len(rig.transport.acked) == 1
    assert rig.transport.unacked == []


def test_database_failure_acks_nothing_then_retries_the_same_batch(
    rig: Rig, truck: Vehicle, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest_module.store_batch
    failures: list[int] = []

    def flaky(**kw: Any) -> Any:
        if len(failures) < 3:
            assert rig.transport.acked == []  # nothing acknowledged while failing
            failures.append(len(kw["received"]))
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(**kw)

    monkeypatch.setattr(ingest_module, "store_batch", flaky)
    rig.send(truck.telemetry(minutes_ago(2)))
    rig.send(truck.telemetry(minutes_ago(1)))
    rig.pump()
    assert failures == [2, 2, 2]
    assert rig.count(TelemetryFix) == 2
    assert len(rig.transport.acked) == 2
    assert _sample(rig, "waste_gateway_db_errors_total", {"kind": "OperationalError"}) == 3


def test_registry_lookup_failure_holds_the_message_then_stores_it(
    engine: Engine, truck: Vehicle
) -> None:
    from gateway.directory import DeviceDirectory

    directory = DeviceDirectory(make_session_factory(engine))
    calls: list[str] = []

    def lookup(device_id: str) -> Any:
        calls.append(device_id)
        if len(calls) < 3:
            raise OperationalError("SELECT", {}, Exception("registry down"))
        # held back meanwhile: not acknowledged, not dead-lettered
        assert rig.transport.unacked == [msg]
        assert rig.transport.acked == []
        return directory.lookup(device_id)

    rig = make_rig(engine, lookup=lookup)
    msg = rig.send(truck.telemetry(minutes_ago(1)))
    rig.pump()
    assert len(calls) == 3
    assert rig.count(TelemetryFix) == 1
    assert rig.count(DeadLetter) == 0
    assert rig.transport.acked == [msg]
    assert _sample(rig, "waste_gateway_lookup_retries_total") == 2


def test_a_message_the_database_refuses_is_split_out_and_dead_lettered(
    rig: Rig, truck: Vehicle, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest_module.store_batch
    poison = truck.telemetry(minutes_ago(3))

    def picky(**kw: Any) -> Any:
        if any(r.payload == poison[1] for r in kw["received"]):
            raise ValueError("this row upsets the database")
        return real(**kw)

    monkeypatch.setattr(ingest_module, "store_batch", picky)
    for m in (2, 1):
        rig.send(truck.telemetry(minutes_ago(m)))
    rig.send(poison)
    rig.send(truck.telemetry(minutes_ago(0)))
    rig.pump()
    assert rig.count(TelemetryFix) == 3
    (letter,) = rig.rows(DeadLetter, DeadLetter.id)
    assert (letter.reason, letter.payload) == ("store_failed", poison[1])
    assert len(rig.transport.acked) == 4


def test_late_batch_after_an_outage_reaches_consumers_in_fix_time_order(
    rig: Rig, truck: Vehicle, engine: Engine
) -> None:
    rig.send(truck.telemetry(minutes_ago(1)))
    rig.pump()
    backlog = [minutes_ago(m) for m in (20, 40, 30, 50)]  # store-and-forward, any order
    rig.send(truck.telemetry(*backlog, seq=1000))
    rig.pump()
    late = rig.tracks[-1]
    assert [f.fix.t for f in late.fixes] == sorted(backlog)
    assert late.device_id == truck.device_id
    with UnitOfWork(make_session_factory(engine)) as uow:
        times = [f.fix.t for f in track(uow=uow, device_id=truck.device_id)]
    assert times == sorted([*backlog, times[-1]])
    assert len(times) == 5


def test_status_and_will_are_recorded(rig: Rig, truck: Vehicle) -> None:
    online_at, offline_at = minutes_ago(5), minutes_ago(1)
    rig.send(truck.status(True, online_at), retain=True)
    rig.pump()
    rig.send(truck.status(True, online_at), retain=True)  # the same retained state again
    rig.send(truck.status(False))  # the will: no time of its own
    rig.send(truck.status(False, offline_at))
    rig.pump()
    rows = rig.rows(DevicePresence, DevicePresence.id, device_id=truck.device_id)
    assert [(r.online, r.t, r.source) for r in rows] == [
        (True, online_at, "retained"),
        (False, None, "will"),
        (False, offline_at, "device"),
    ]
    assert len(rig.transport.acked) == 4


def test_a_failing_consumer_does_not_stop_ingestion(engine: Engine, truck: Vehicle) -> None:
    def broken(_: Sequence[TrackUpdate]) -> None:
        raise RuntimeError("consumer bug")

    rig = make_rig(engine, consumers=[broken])
    rig.send(truck.telemetry(minutes_ago(2)))
    rig.pump()
    rig.send(truck.telemetry(minutes_ago(1)))
    rig.pump()
    assert rig.count(TelemetryFix) == 2
    assert _sample(rig, "waste_gateway_consumer_errors_total") == 2


def test_metrics_text_has_the_counters(rig: Rig, truck: Vehicle) -> None:
    rig.send(truck.telemetry(minutes_ago(2), minutes_ago(1)))
    rig.send(truck.lock(minutes_ago(1)))
    rig.send((telemetry_topic(truck.device_id), b"garbage"))
    rig.pump()
    text = rig.ingestor.metrics.render().decode()
    for line in (
        'waste_gateway_messages_received_total{channel="telemetry"} 2.0',
        'waste_gateway_messages_received_total{channel="lock"} 1.0',
        'waste_gateway_messages_accepted_total{channel="telemetry"} 1.0',
        'waste_gateway_messages_rejected_total{reason="not_json"} 1.0',
        "waste_gateway_messages_duplicate_total 0.0",
        "waste_gateway_fixes_stored_total 2.0",
        "waste_gateway_batch_messages_count 1.0",
        "waste_gateway_flush_seconds_count 1.0",
        "waste_gateway_fix_lag_seconds_count 2.0",
    ):
        assert line in text, line
