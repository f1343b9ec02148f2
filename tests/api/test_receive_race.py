"""Concurrent appends at the same chain position: exactly one wins, the rest change nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.support.manifests import chain_length, log_size, picked_up, receipt
from tests.support.world import World, build_world
from waste.clock import utcnow
from waste.ledger.envelope import make_body, sign_body
from waste.webhooks.models import OutboxMessage


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers, haulers=1, sites=2)


def _envelope(world: World, mid: str, site: int, event_type: str, data: dict[str, Any]) -> Any:
    seq, prev = world.producer.head(mid)
    actor = world.sites[site]
    body = make_body(
        manifest_id=mid,
        seq=seq,
        prev_hash=prev,
        type=event_type,
        actor=actor.party_id,
        at=utcnow(),
        data=data,
    )
    return sign_body(body, [actor.key]), actor._headers


def _race(client: TestClient, mid: str, attempts: list[Any]) -> list[int]:
    """Post every (envelope, headers) at once, each from its own thread and event loop."""
    barrier = threading.Barrier(len(attempts))
    statuses = [0] * len(attempts)

    def post(i: int, envelope: Any, headers: dict[str, str]) -> None:
        own = TestClient(client.app)  # not entered: each request runs on its own event loop
        barrier.wait()
        resp = own.post(f"/v1/manifests/{mid}/events", json=envelope, headers=headers)
        statuses[i] = resp.status_code

    threads = [
        threading.Thread(target=post, args=(i, env, hdrs)) for i, (env, hdrs) in enumerate(attempts)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return statuses


def test_sites_racing_to_receive_the_same_load_exactly_one_wins(
    world: World, client: TestClient, engine: Engine
) -> None:
    for _ in range(2):
        mid = picked_up(world, world.producer)
        attempts = [
            _envelope(world, mid, 0, "received", receipt(world, mass=m)) for m in (794, 793, 792)
        ]
        attempts.append(
            _envelope(
                world,
                mid,
                0,
                "rejected",
                {"reason": "Full", "next": "redirect", "redirect_site": world.sites[1].party_id},
            )
        )
        attempts += [_envelope(world, mid, 1, "received", receipt(world)) for _ in range(2)]
        log_before = log_size(world)
        statuses = _race(client, mid, attempts)
        assert statuses.count(201) == 1, statuses
        assert set(statuses) <= {201, 404, 409, 422}, statuses
        # the other site never wins (404 while it is not on the manifest: nothing disclosed)
        assert all(s in (404, 409, 422) for s in statuses[4:]), statuses
        assert chain_length(world, mid) == 3
        assert log_size(world) == log_before + 1
        winner = attempts[statuses.index(201)][0]
        chain = world.producer.events(mid)
        assert chain[-1] == winner
        with Session(engine) as session:
            topics = session.scalars(
                select(OutboxMessage.topic).where(OutboxMessage.subject == mid)
            ).all()
            count = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.subject == mid)
            )
        assert sorted(set(topics)) == sorted(
            {"manifest.filed", "manifest.picked_up", f"manifest.{winner['body']['type']}"}
        )
        assert count == len(topics)
