"""The append routes run in the threadpool: an append stuck in the database stalls nothing else."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.world import World, build_world
from waste.manifests import service

SAFETY_S = 60.0  # only so that a regression fails instead of hanging the run


class _Stuck:
    """Wraps a use case so that it waits, inside the request, until released."""

    def __init__(self, use_case: Callable[..., Any]) -> None:
        self.use_case = use_case
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, **kwargs: Any) -> Any:
        self.entered.set()
        self.release.wait(SAFETY_S)
        return self.use_case(**kwargs)


@pytest.mark.parametrize("route", ["file", "append"])
def test_a_stuck_append_stalls_no_other_request(
    route: str,
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world: World = build_world(client, admin_headers, haulers=1, sites=1)
    producer = world.producer
    mid = producer.file(world.filing())["manifest_id"] if route == "append" else None
    stuck = _Stuck(service.append_event if route == "append" else service.file_manifest)
    monkeypatch.setattr(service, "append_event" if route == "append" else "file_manifest", stuck)

    answers: list[dict[str, Any]] = []

    def post() -> None:
        if mid is None:
            answers.append(producer.file(world.filing()))
        else:
            answers.append(producer.cancel(mid, "Plans changed"))

    poster = threading.Thread(target=post)
    poster.start()
    assert stuck.entered.wait(SAFETY_S)
    # With a blocking `async def` route the event loop would be stuck in the use
    # case, and these would be answered only once the append had finished.
    assert client.get("/healthz").status_code == 200
    chain = client.get(f"/v1/manifests/{mid}/events", headers=producer._headers)
    assert chain.status_code == (200 if mid else 404)
    assert not answers  # the append is still waiting
    stuck.release.set()
    poster.join()
    assert answers[0]["state"] in ("filed", "cancelled")
