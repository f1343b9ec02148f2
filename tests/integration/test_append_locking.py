"""The append's lock order: per-manifest (and per-destination) locks first, the log's lock last.

Races run as threads calling the use case, each in its own unit of work, as
concurrent API requests do. On PostgreSQL they exercise the row and advisory
locks; on SQLite, ``BEGIN IMMEDIATE`` serialises them, and the outcome must be
the same.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from tests.support.parties import register
from tests.support.world import World, box, build_world, client_for
from waste.auth.tokens import Principal
from waste.clock import utcnow
from waste.db import make_session_factory
from waste.errors import ChainConflict, FilingRejected
from waste.ledger.envelope import GENESIS_PREV_HASH, event_hash, make_body, sign_body
from waste.ledger.models import CustodyEvent, LogEntry, LogHead
from waste.manifests import service
from waste.manifests.models import Manifest
from waste.registry.domain import Role
from waste.uow import UnitOfWork

ADMIN = Principal(role=Role.ADMIN)
RACERS = 4


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers, haulers=1, sites=1)


def _filed(world: World, mid: str, *, minute: int = 0, **over: Any) -> dict[str, Any]:
    body = make_body(
        manifest_id=mid,
        seq=0,
        prev_hash=GENESIS_PREV_HASH,
        type="filed",
        actor=world.producer.party_id,
        at=utcnow() + timedelta(minutes=minute),
        data=world.filing(**over),
    )
    return sign_body(body, [world.producer.key])


def _race(engine: Engine, calls: list[Callable[[UnitOfWork], Any]]) -> list[Any]:
    """Run every call at once, each in its own unit of work; return results or raised errors."""
    factory = make_session_factory(engine)
    start = threading.Barrier(len(calls))

    def run(call: Callable[[UnitOfWork], Any]) -> Any:
        start.wait()
        try:
            with UnitOfWork(factory) as uow:
                return call(uow)
        except Exception as exc:  # the outcome under test
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _file(envelope: dict[str, Any]) -> Callable[[UnitOfWork], Any]:
    return lambda uow: service.file_manifest(uow=uow, principal=ADMIN, envelope=envelope)


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def test_filings_racing_with_one_manifest_id_exactly_one_is_filed(
    world: World, engine: Engine
) -> None:
    mid = str(uuid.uuid4())
    envelopes = [_filed(world, mid, minute=i) for i in range(RACERS)]  # different hashes
    size_before = _count(engine, select(LogHead.size))

    outcomes = _race(engine, [_file(e) for e in envelopes])

    accepted = [o for o in outcomes if isinstance(o, service.Accepted)]
    refused = [o for o in outcomes if not isinstance(o, service.Accepted)]
    assert len(accepted) == 1, outcomes
    assert all(isinstance(o, ChainConflict) and "already filed" in o.detail for o in refused)
    assert _count(engine, select(LogHead.size)) == size_before + 1
    assert _count(engine, select(func.count()).select_from(LogEntry)) == size_before + 1
    where = CustodyEvent.manifest_id == mid
    assert _count(engine, select(func.count()).select_from(CustodyEvent).where(where)) == 1


def test_filings_racing_for_the_last_capacity_exactly_one_is_filed(
    world: World, client: TestClient, admin_headers: dict[str, str], engine: Engine
) -> None:
    end = world.filing()["route"]["coordinates"][-1]
    site = register(client, admin_headers, "disposal_site")
    permit = client.post(
        f"/v1/parties/{site.id}/permits",
        json={
            "number": f"PERMIT-{site.id[:8]}",
            "waste_codes": ["900-041-49"],
            "annual_capacity_kg": 1500,  # room for one 800 kg load, not two
            "valid_from": "2025-01-01",
            "valid_until": "2030-12-31",
            "area": box(end[0], end[1]),
        },
        headers=admin_headers,
    )
    assert permit.status_code == 201, permit.text
    destination = client_for(client, site).party_id
    envelopes = [
        _filed(world, str(uuid.uuid4()), destination=destination) for _ in range(RACERS)
    ]

    outcomes = _race(engine, [_file(e) for e in envelopes])

    accepted = [o for o in outcomes if isinstance(o, service.Accepted)]
    refused = [o for o in outcomes if not isinstance(o, service.Accepted)]
    assert len(accepted) == 1, outcomes
    assert all(isinstance(o, FilingRejected) and "capacity" in o.detail for o in refused)
    to_site = select(func.count()).select_from(Manifest).where(Manifest.destination_id == site.id)
    assert _count(engine, to_site) == 1


def test_an_append_waiting_for_its_manifest_holds_up_no_other_manifest(
    world: World, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite serialises whole write transactions instead")
    factory = make_session_factory(engine)
    heads = {}
    for name in ("held", "free"):
        mid = str(uuid.uuid4())
        envelope = _filed(world, mid)
        with UnitOfWork(factory) as uow:
            service.file_manifest(uow=uow, principal=ADMIN, envelope=envelope)
        heads[name] = (mid, event_hash(envelope["body"]))

    def cancel(name: str) -> dict[str, Any]:
        mid, prev = heads[name]
        body = make_body(
            manifest_id=mid,
            seq=1,
            prev_hash=prev,
            type="cancelled",
            actor=world.producer.party_id,
            at=utcnow(),
            data={"reason": "Plans changed"},
        )
        return sign_body(body, [world.producer.key])

    held_mid = heads["held"][0]
    outcome: list[Any] = []
    with engine.connect() as blocker:
        blocker.execute(
            text("SELECT id FROM manifests WHERE id = :id FOR UPDATE"), {"id": held_mid}
        )

        def append_held() -> None:
            with UnitOfWork(factory) as uow:
                outcome.append(
                    service.append_event(
                        uow=uow, principal=ADMIN, manifest_id=held_mid, envelope=cancel("held")
                    )
                )

        waiter = threading.Thread(target=append_held)
        waiter.start()
        _wait_until_blocked(engine)
        with UnitOfWork(factory) as uow:
            # Were the log lock taken before the manifest's, this would wait for the
            # blocked append (and time out) instead of going through.
            uow.session.execute(text("SET LOCAL lock_timeout = '20s'"))
            free = service.append_event(
                uow=uow, principal=ADMIN, manifest_id=heads["free"][0], envelope=cancel("free")
            )
        assert waiter.is_alive()  # still waiting for the manifest's row
        assert not outcome
        blocker.rollback()
        waiter.join()

    (held,) = outcome
    assert held.leaf_index == free.leaf_index + 1  # the log follows commit order
    assert (held.state, free.state) == ("cancelled", "cancelled")


def _wait_until_blocked(engine: Engine) -> None:
    """Return once a backend of this database waits for a lock (polls pg_stat_activity)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    blocked = threading.Event()
    for _ in range(600):
        with engine.connect() as conn:
            if conn.scalar(query):
                return
        blocked.wait(0.05)
    raise AssertionError("the append never waited for the manifest's row lock")
