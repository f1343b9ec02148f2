"""Trip legs: binding by fix time, a handover posted late, sealing into the log and re-checking."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError

from gateway.sealer import seal_due
from tests.support.telemetry import Rig, Vehicle
from tests.support.world import World
from waste.clock import utcnow
from waste.db import make_session_factory
from waste.ledger.canonical import loads_strict
from waste.ledger.store import LogStore
from waste.telemetry.models import LegSeal, TelemetryFix, TelemetryLockEvent, TripLeg
from waste.telemetry.sealing import verify_leg
from waste.uow import UnitOfWork

NO_GRACE = timedelta(0)


def _ago(now: datetime, minutes: float) -> datetime:
    return now - timedelta(minutes=minutes)


def _picked_up(world: World, now: datetime) -> str:
    """A manifest filed 50 min ago and picked up by hauler 0 forty minutes ago."""
    mid = world.producer.file(world.filing(), at=_ago(now, 50))["manifest_id"]
    world.haulers[0].client.pick_up(
        mid, world.pickup(), cosigners=[world.producer.key], at=_ago(now, 40)
    )
    return str(mid)


def _receive(world: World, mid: str, at: datetime, seal_of: Vehicle) -> None:
    data = {
        "mass_kg": 790.0,
        "accepted_kg": 790.0,
        "refused_kg": 0,
        "seal_id": f"SEAL-{seal_of.device_id}",
        "seal_intact": True,
    }
    world.sites[0].receive(mid, data, at=at)


def _bindings(rig: Rig, model: type[TelemetryFix] | type[TelemetryLockEvent]) -> list[tuple]:
    rows = rig.rows(model, model.device_id, model.t)
    return [(r.device_id, r.t, r.manifest_id, r.leg_index) for r in rows]


def test_records_bind_to_the_leg_holding_their_own_time(
    rig: Rig, world: World, truck: Vehicle
) -> None:
    now = utcnow()
    mid = _picked_up(world, now)
    rig.send(truck.telemetry(_ago(now, 45), _ago(now, 40), _ago(now, 20)))
    rig.send(truck.lock(_ago(now, 39), "sealed"))
    rig.pump()
    assert _bindings(rig, TelemetryFix) == [
        (truck.device_id, _ago(now, 45), None, None),  # before the pickup: outside any trip
        (truck.device_id, _ago(now, 40), mid, 0),  # the pickup instant opens the leg
        (truck.device_id, _ago(now, 20), mid, 0),
    ]
    assert _bindings(rig, TelemetryLockEvent) == [(truck.device_id, _ago(now, 39), mid, 0)]
    (update_for_leg,) = [u for u in rig.tracks if u.manifest_id == mid]
    assert [f.fix.t for f in update_for_leg.fixes] == [_ago(now, 40), _ago(now, 20)]


def test_a_handover_signed_offline_and_posted_late_rebinds_the_backlog(
    rig: Rig, world: World, truck: Vehicle, other_truck: Vehicle
) -> None:
    now = utcnow()
    mid = _picked_up(world, now)
    rig.send(truck.telemetry(_ago(now, 35), _ago(now, 25), _ago(now, 15)))
    rig.send(other_truck.telemetry(_ago(now, 25), _ago(now, 15)))
    rig.pump()
    assert [b[2:] for b in _bindings(rig, TelemetryFix)] == [(mid, 0)] * 3 + [(None, None)] * 2

    h0, h1 = world.haulers
    handover = {
        "from_hauler": h0.client.party_id,
        "to_hauler": h1.client.party_id,
        "vehicle": h1.plate,
        "device_id": h1.device_id,
        "seal_id": f"SEAL-{h1.device_id}",
        "mass_kg": 792.0,
    }
    h0.client.hand_over(mid, handover, cosigners=[h1.client.key], at=_ago(now, 30))
    assert _bindings(rig, TelemetryFix) == sorted(
        [
            (truck.device_id, _ago(now, 35), mid, 0),
            (truck.device_id, _ago(now, 25), None, None),  # truck 0 no longer carries it
            (truck.device_id, _ago(now, 15), None, None),
            (other_truck.device_id, _ago(now, 25), mid, 1),
            (other_truck.device_id, _ago(now, 15), mid, 1),
        ]
    )
    legs = {leg.leg_index: leg for leg in rig.rows(TripLeg, manifest_id=mid)}
    assert (legs[0].closed_at, legs[1].opened_at, legs[1].vehicle) == (
        _ago(now, 30),
        _ago(now, 30),
        other_truck.plate,
    )
    # a backlog of the new vehicle arriving after the late handover binds the same way
    rig.send(other_truck.telemetry(_ago(now, 29)))
    rig.pump()
    assert (other_truck.device_id, _ago(now, 29), mid, 1) in _bindings(rig, TelemetryFix)


def test_sealing_a_closed_leg_then_a_new_version_for_late_data(
    rig: Rig, world: World, truck: Vehicle, engine: Engine
) -> None:
    factory = make_session_factory(engine)
    now = utcnow()
    mid = _picked_up(world, now)
    rig.send(truck.lock(_ago(now, 39), "sealed"))
    rig.send(truck.telemetry(_ago(now, 35), _ago(now, 20), _ago(now, 10)))
    rig.send(truck.lock(_ago(now, 6), "unsealed"))
    rig.pump()
    _receive(world, mid, _ago(now, 5), truck)

    assert seal_due(factory, now=utcnow(), grace=timedelta(minutes=10)) == []  # grace first
    (seal,) = seal_due(factory, now=utcnow(), grace=NO_GRACE)
    assert (seal.version, seal.count, seal.first_t, seal.last_t) == (
        1,
        5,
        _ago(now, 39),
        _ago(now, 6),
    )
    with UnitOfWork(factory) as uow:
        entry = loads_strict(LogStore(uow.session).entry(seal.leaf_index).entry)
        check = verify_leg(uow=uow, manifest_id=mid, leg_index=0)
    assert entry["kind"] == "leg_telemetry"
    assert entry["payload"]["root"] == seal.root
    assert (entry["payload"]["count"], entry["payload"]["version"]) == (5, 1)
    assert check.ok
    assert seal_due(factory, now=utcnow(), grace=NO_GRACE) == []  # sealed: nothing more

    rig.send(truck.telemetry(_ago(now, 15)))  # late data after sealing
    rig.pump()
    with UnitOfWork(factory) as uow:
        assert not verify_leg(uow=uow, manifest_id=mid, leg_index=0).current
    (second,) = seal_due(factory, now=utcnow(), grace=NO_GRACE)
    assert (second.version, second.count) == (2, 6)
    assert second.root != seal.root
    with UnitOfWork(factory) as uow:
        assert verify_leg(uow=uow, manifest_id=mid, leg_index=0).ok

    with UnitOfWork(factory) as uow:  # someone edits a stored fix: the track no longer matches
        uow.session.execute(
            update(TelemetryFix).where(TelemetryFix.t == _ago(now, 20)).values(lat=29.4)
        )
        uow.commit()
    with UnitOfWork(factory) as uow:
        tampered = verify_leg(uow=uow, manifest_id=mid, leg_index=0)
    assert tampered.current
    assert not tampered.ok
    assert tampered.recomputed.count == 6


def test_concurrent_sealers_seal_each_version_once(
    rig: Rig, world: World, truck: Vehicle, engine: Engine
) -> None:
    factory = make_session_factory(engine)
    now = utcnow()
    mid = _picked_up(world, now)
    rig.send(truck.telemetry(_ago(now, 30), _ago(now, 20)))
    rig.pump()
    _receive(world, mid, _ago(now, 5), truck)
    results: list[int] = []
    errors: list[BaseException] = []

    def sealer() -> None:
        try:
            results.append(len(seal_due(factory, now=utcnow(), grace=NO_GRACE)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sealer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sum(results) == 1
    assert rig.count(LegSeal, manifest_id=mid) == 1

    (existing,) = rig.rows(LegSeal, manifest_id=mid)
    columns = {c.key: getattr(existing, c.key) for c in LegSeal.__table__.columns}
    with UnitOfWork(factory) as uow:  # the key behind it: one row per (leg, version)
        uow.session.add(LegSeal(**(columns | {"leaf_index": existing.leaf_index + 1000})))
        with pytest.raises(IntegrityError):
            uow.session.flush()
