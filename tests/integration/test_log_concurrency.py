"""Two API workers (engines) appending at once: one gap-free log that verifies.

On PostgreSQL this exercises the ``SELECT … FOR UPDATE`` lock on ``log_head``;
on SQLite, ``BEGIN IMMEDIATE``. Checkpoints are signed concurrently too, as
``GET /v1/log/checkpoint`` and the background publisher do.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.world import World, build_world
from waste.auth.tokens import Principal
from waste.clock import utcnow
from waste.db import make_engine, make_session_factory
from waste.ledger.envelope import GENESIS_PREV_HASH, event_hash, make_body, sign_body
from waste.ledger.models import CustodyEvent, LogEntry, LogHead
from waste.ledger.service import LogKey, publish_checkpoint
from waste.ledger.verify_log import verify_log
from waste.manifests import service
from waste.registry.domain import Role
from waste.uow import UnitOfWork

ADMIN = Principal(role=Role.ADMIN)
THREADS_PER_WORKER = 3
MANIFESTS_PER_THREAD = 2


def _lifecycle(world: World, factory: sessionmaker[Session], key: LogKey, lane: int) -> list[int]:
    """File and carry MANIFESTS_PER_THREAD manifests to disposal; return the leaf indices."""
    hauler = world.haulers[lane % len(world.haulers)]
    site = world.sites[0]  # the declared route ends at site 0
    leaves: list[int] = []
    for _ in range(MANIFESTS_PER_THREAD):
        mid = str(uuid.uuid4())
        steps: list[tuple[str, str, dict[str, Any], list[Any]]] = [
            (
                "filed",
                world.producer.party_id,
                world.filing(
                    hauler=hauler.client.party_id, vehicle=hauler.plate, destination=site.party_id
                ),
                [world.producer.key],
            ),
            (
                "picked_up",
                hauler.client.party_id,
                {**world.pickup(lane % len(world.haulers)), "mass_kg": 790.0},
                [hauler.client.key, world.producer.key],
            ),
            (
                "received",
                site.party_id,
                {
                    "mass_kg": 789.5,
                    "accepted_kg": 789.5,
                    "refused_kg": 0,
                    "seal_id": f"SEAL-{hauler.device_id}",
                    "seal_intact": True,
                },
                [site.key],
            ),
            ("disposed", site.party_id, {"operation": "D10", "mass_kg": 789.5}, [site.key]),
        ]
        prev, at = GENESIS_PREV_HASH, utcnow()
        for seq, (kind, actor, data, keys) in enumerate(steps):
            at += timedelta(seconds=1)
            body = make_body(
                manifest_id=mid, seq=seq, prev_hash=prev, type=kind, actor=actor, at=at, data=data
            )
            envelope = sign_body(body, keys)
            with UnitOfWork(factory) as uow:
                if seq == 0:
                    accepted = service.file_manifest(uow=uow, principal=ADMIN, envelope=envelope)
                else:
                    accepted = service.append_event(
                        uow=uow, principal=ADMIN, manifest_id=mid, envelope=envelope
                    )
            leaves.append(accepted.leaf_index)
            prev = event_hash(body)
        with UnitOfWork(factory) as uow:  # two workers may sign the same size: one row wins
            publish_checkpoint(uow=uow, key=key)
    return leaves


def test_two_workers_appending_concurrently_leave_one_gapless_log(
    client: TestClient, admin_headers: dict[str, str], engine: Engine
) -> None:
    world = build_world(client, admin_headers, haulers=2, sites=1)
    key: LogKey = client.app.state.log_key  # type: ignore[attr-defined]
    second = make_engine(engine.url.render_as_string(hide_password=False))
    factories = [make_session_factory(engine), make_session_factory(second)]
    try:
        lanes = THREADS_PER_WORKER * len(factories)
        with ThreadPoolExecutor(max_workers=lanes) as pool:
            futures = [
                pool.submit(_lifecycle, world, factories[lane % 2], key, lane)
                for lane in range(lanes)
            ]
            leaves = sorted(leaf for f in futures for leaf in f.result())
    finally:
        second.dispose()

    accepted = lanes * MANIFESTS_PER_THREAD * 4
    assert leaves == list(range(accepted))
    with engine.connect() as conn:
        assert conn.scalar(select(LogHead.size)) == accepted
        indices = list(conn.scalars(select(LogEntry.leaf_index).order_by(LogEntry.leaf_index)))
        assert indices == list(range(accepted))
        assert conn.scalar(select(func.count()).select_from(CustodyEvent)) == accepted
    report = verify_log(engine, key.vkey, workers=2)
    assert report.ok, report.render()
    assert (report.size, report.events, report.manifests) == (accepted, accepted, lanes * 2)
    assert report.checkpoints >= 1
