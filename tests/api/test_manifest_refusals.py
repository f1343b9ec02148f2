"""Bad input for every rule: a 4xx naming the field, and nothing stored (chain, log, outbox)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.support.manifests import chain_length, handover, log_size, picked_up, receipt, ts
from tests.support.world import World, build_world
from waste.client import ClientError
from waste.clock import utcnow
from waste.webhooks.models import OutboxMessage


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers, haulers=3, sites=2)


def _outbox(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def _refused(world: World, engine: Engine, call: Callable[[], Any], field: str) -> None:
    before = (log_size(world), _outbox(engine))
    with pytest.raises(ClientError) as err:
        call()
    assert 400 <= err.value.status < 500, err.value.problem
    fields = [e["field"] for e in err.value.problem.get("errors", [])]
    assert fields[:1] == [field], (field, err.value.problem)
    assert (log_size(world), _outbox(engine)) == before


def _line(world: World, **over: Any) -> list[dict[str, Any]]:
    return [{**world.filing()["wastes"][0], **over}]


def test_every_filing_rule(world: World, engine: Engine) -> None:
    f, p = world.filing, world.producer
    now = utcnow()
    cases: dict[str, dict[str, Any]] = {
        "data.wastes": f(wastes=[]),
        "data.wastes[0].mass_kg": f(wastes=_line(world, mass_kg=-1)),
        "data.wastes[0].code": f(wastes=_line(world, code="999-999-99")),
        "data.wastes[0].hazards": f(wastes=_line(world, hazards=[])),
        "data.wastes[0].hazards[0]": f(wastes=_line(world, hazards=["X"])),
        "data.wastes[0].form": f(wastes=_line(world, form="plasma")),
        "data.wastes[0].containers": f(wastes=_line(world, containers=0)),
        "data.wastes[0].colour": f(wastes=_line(world, colour="red")),
        "data.pickup_window.to": f(
            pickup_window={"from": ts(now + timedelta(hours=2)), "to": ts(now + timedelta(hours=1))}
        ),
        "data.deliver_by": f(deliver_by=ts(now - timedelta(hours=2))),
        "data.corridor_m": f(corridor_m=5),
        "data.route.type": f(route={"type": "Point", "coordinates": [120.0, 29.0]}),
        "data.hauler": f(hauler=p.party_id),
        "data.destination": f(destination=world.haulers[0].client.party_id),
        "data.producer": f(producer=world.sites[1].party_id),
        "data.vehicle": f(vehicle=world.haulers[1].plate),
        "data.notes": f(notes=123),
    }
    for field, data in cases.items():
        _refused(world, engine, lambda d=data: p.file(d), field)  # type: ignore[misc]
    _refused(  # a site not licensed for the code
        world, engine, lambda: p.file(f(wastes=_line(world, code="336-064-17"))), "data.destination"
    )
    _refused(  # far from the producer's premises
        world,
        engine,
        lambda: p.file(
            f(route={"type": "LineString", "coordinates": [[121.0, 30.0], [120.19, 29.25]]})
        ),
        "data.route",
    )
    assert log_size(world) == 0


def test_every_event_rule(world: World, engine: Engine) -> None:
    p, h0, h1 = world.producer, world.haulers[0].client, world.haulers[1].client
    site, other_site = world.sites
    filed = p.file(world.filing())["manifest_id"]
    moving = picked_up(world, p)
    received = picked_up(world, p)
    site.receive(received, receipt(world))
    pickup = world.pickup

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("data.reason", lambda: p.append(filed, "cancelled", {})),
        ("data.reason", lambda: p.append(filed, "cancelled", {"reason": ""})),
        (
            "data.vehicle",
            lambda: h0.pick_up(filed, {**pickup(), "vehicle": "浙A00000"}, cosigners=[p.key]),
        ),
        ("data.mass_kg", lambda: h0.pick_up(filed, {**pickup(), "mass_kg": 0}, cosigners=[p.key])),
        (
            "data.mass_kg",
            lambda: h0.pick_up(filed, {**pickup(), "mass_kg": 99_999}, cosigners=[p.key]),
        ),
        (
            "data.device_id",
            lambda: h0.pick_up(
                filed, {**pickup(), "device_id": world.haulers[1].device_id}, cosigners=[p.key]
            ),
        ),
        ("signatures", lambda: h0.pick_up(filed, pickup())),  # the producer's signature missing
        ("type", lambda: site.receive(filed, receipt(world))),  # not in transit yet
        ("data.to_hauler", lambda: h0.hand_over(moving, handover(world, 0, 0))),
        (
            "data.from_hauler",
            lambda: h0.hand_over(
                moving,
                {**handover(world, 0, 1), "from_hauler": world.haulers[2].client.party_id},
                cosigners=[h1.key],
            ),
        ),
        (
            "data.accepted_kg",
            lambda: site.receive(moving, {**receipt(world), "accepted_kg": 700.0}),
        ),
        (
            "data.accepted_kg",
            lambda: site.receive(moving, receipt(world, mass=794.0, refused=794.0)),
        ),
        (
            "data.seal_intact",
            lambda: site.receive(moving, {**receipt(world), "seal_intact": "yes"}),
        ),
        ("data.next", lambda: site.reject(moving, {"reason": "x", "next": "burn"})),
        ("data.redirect_site", lambda: site.reject(moving, {"reason": "x", "next": "redirect"})),
        (
            "data.redirect_site",
            lambda: site.reject(
                moving, {"reason": "x", "next": "redirect", "redirect_site": p.party_id}
            ),
        ),
        (
            "data.route",
            lambda: site.reject(
                moving,
                {
                    "reason": "x",
                    "next": "return_to_producer",
                    "route": {"type": "LineString", "coordinates": [[120, 29], [121, 30]]},
                },
            ),
        ),
        (
            "signatures",
            lambda: site.receive(moving, receipt(world), cosigners=[other_site.key]),
        ),  # a stranger co-signs
        ("data.operation", lambda: site.dispose(received, {"operation": "Z9", "mass_kg": 10.0})),
        ("data.mass_kg", lambda: site.dispose(received, {"operation": "D10", "mass_kg": 900.0})),
        (
            "at",
            lambda: site.dispose(
                received, {"operation": "D10", "mass_kg": 10.0}, at=utcnow() - timedelta(days=1)
            ),
        ),
    ]
    lengths = {m: chain_length(world, m) for m in (filed, moving, received)}
    for field, call in cases:
        _refused(world, engine, call, field)
    assert {m: chain_length(world, m) for m in lengths} == lengths
