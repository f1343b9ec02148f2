"""Presence with several gateways: statuses are subscribed unshared, so every gateway gets
every status (and a new subscription the retained one); one row per change of state."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine

from gateway.payloads import StatusMessage
from tests.support.telemetry import Rig, Vehicle, make_rig, minutes_ago
from waste.db import make_session_factory
from waste.telemetry.domain import PresenceIn
from waste.telemetry.models import DevicePresence
from waste.telemetry.service import _store_presence
from waste.uow import UnitOfWork


def _states(rig: Rig, truck: Vehicle) -> list[tuple[bool, object, str]]:
    rows = rig.rows(DevicePresence, DevicePresence.id, device_id=truck.device_id)
    return [(r.online, r.t, r.source) for r in rows]


def test_every_gateway_gets_each_status_and_one_row_is_kept(
    engine: Engine, rig: Rig, truck: Vehicle
) -> None:
    other = make_rig(engine)  # a second gateway process on the same database
    online_at = minutes_ago(3)
    for gateway in (rig, other):
        gateway.send(truck.status(True, online_at))
        gateway.pump()
    for gateway in (rig, other):
        gateway.send(truck.status(False))  # the will, to both
        gateway.pump()
    late = make_rig(engine)  # a gateway subscribing now is sent the retained will
    late.send(truck.status(False), retain=True)
    late.pump()
    assert _states(rig, truck) == [(True, online_at, "device"), (False, None, "will")]
    assert [len(g.transport.acked) for g in (rig, other, late)] == [2, 2, 1]


def test_the_same_status_stored_at_once_by_two_gateways_is_one_row(
    engine: Engine, rig: Rig, truck: Vehicle
) -> None:
    factory = make_session_factory(engine)
    status = PresenceIn(StatusMessage(truck.device_id, True, minutes_ago(1)), False, minutes_ago(0))
    stored: list[int] = []

    def second_gateway() -> None:
        with UnitOfWork(factory) as uow:
            stored.append(_store_presence(uow.session, [status]))
            uow.commit()

    with UnitOfWork(factory) as first:
        assert _store_presence(first.session, [status]) == 1  # inserted, not yet committed
        racer = threading.Thread(target=second_gateway)
        racer.start()
        time.sleep(0.3)  # let it reach the device's lock (or, without one, race past it)
        first.commit()
    racer.join(10)
    assert not racer.is_alive()
    assert stored == [0]
    assert rig.count(DevicePresence, device_id=truck.device_id) == 1
