"""PostgreSQL goes away mid-stream for 30 s and comes back, behind a TCP proxy.

The machine's PostgreSQL keeps running (other tests use it): the gateway
subprocess and an API instance reach this test's database through ``TcpProxy``,
which is cut (new connections refused, established ones reset) for ``OUTAGE_S``
seconds and then restored. Devices stream all along through this test's own
Mosquitto. Nothing is restarted.
"""

from __future__ import annotations

import copy
import random
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.faults.streams import (
    Streamer,
    check_stored_exactly_once,
    drive,
    settle,
    stored_count,
)
from tests.support.brokers import Mosquitto, unique_name
from tests.support.fault_devices import open_devices
from tests.support.faults import broker_log_lines, gateway_process
from tests.support.reliability import Recorder
from tests.support.tcp_proxy import TcpProxy
from tests.support.telemetry import minutes_ago, wait_for
from tests.support.world import World, build_world
from waste.api import create_app
from waste.client import ClientError
from waste.config import Settings
from waste.db import make_engine
from waste.ledger.envelope import make_body, sign_body
from waste.problems import PROBLEM_JSON

pytestmark = [pytest.mark.faults, pytest.mark.broker, pytest.mark.postgres]

SEED = 20261103
OUTAGE_S = 30.0
UNAVAILABLE = "https://waste-custody.org/problems/unavailable"
RETRY = re.compile(r"; retry (\d+) in ([0-9.]+)s")


@pytest.fixture
def proxy(engine: Engine) -> Iterator[TcpProxy]:
    """A TCP proxy in front of this test's PostgreSQL server."""
    with TcpProxy.for_database(engine.url.render_as_string(hide_password=False)) as p:
        yield p


def _gets(world: World, manifest_id: str, number: str) -> dict[str, tuple[str, dict[str, str]]]:
    """GET endpoints that read the database, with the headers they need."""
    producer = {"Authorization": world.producer._headers["Authorization"]}
    return {
        "manifest": (f"/v1/manifests/{manifest_id}", producer),
        "events": (f"/v1/manifests/{manifest_id}/events", producer),
        "list": ("/v1/manifests", producer),
        "whoami": ("/v1/whoami", producer),
        "public": (f"/v1/public/manifests/{number}", {}),
        "checkpoint": ("/v1/log/checkpoint", {}),
        "readyz": ("/readyz", {}),
    }


def _is_unavailable(resp: Any) -> bool:
    """A 503 problem body that says the service is unavailable, with Retry-After."""
    if resp.status_code != 503 or not resp.headers["content-type"].startswith(PROBLEM_JSON):
        return False
    body = resp.json()
    return body["type"] == UNAVAILABLE and body["status"] == 503 and bool(body["detail"])


def test_database_outage_gateway_backs_off_and_api_answers_503(
    mosquitto: Mosquitto,
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    settings: Settings,
    proxy: TcpProxy,
    tmp_path: Path,
    reliability: Recorder,
) -> None:
    """The database is cut off for 30 s while three vehicles stream. The gateway stops
    acknowledging (the broker's log shows no PUBACK from it during the outage, though
    it keeps receiving), retries its batch with exponential backoff (capped, logged),
    reports `/healthz` 503 and resumes by itself when the database is back: every
    message is then stored exactly once. Meanwhile an API instance on the same
    proxy answers every database-backed GET and POST (filing, appending a signed
    event) with a 503 `application/problem+json` body of type `unavailable` and a
    `Retry-After` header; a refused POST changed nothing, and the same API, not
    restarted, serves and accepts the very same requests once the database is back."""
    rng = random.Random(SEED)
    world = build_world(client, admin_headers, haulers=3, sites=1)
    db_url = engine.url.render_as_string(hide_password=False)
    filed = world.producer.file(world.filing())
    manifest_id, number = str(filed["manifest_id"]), str(filed["number"])
    api_engine = make_engine(proxy.url(db_url))
    api_settings = settings.model_copy(update={"database_url": proxy.url(db_url)})
    client_id = unique_name("gw")
    gateway = gateway_process(
        tmp_path, database_url=proxy.url(db_url), mqtt_url=mosquitto.url, client_id=client_id
    )
    devices = open_devices(world.haulers, mosquitto.url, tmp_path)
    fixes = int((OUTAGE_S + 6) / 0.1)  # the stream outlasts the outage
    tracks = {d.device_id: drive(rng, minutes_ago(60), fixes) for d in devices}
    streamer = Streamer(devices, tracks, rng, tick_s=0.1, per_tick=(1, 1))
    with TestClient(create_app(api_settings, engine=api_engine)) as api:
        producer = copy.copy(world.producer)
        producer.http = api
        hauler = copy.copy(world.haulers[0].client)
        hauler.http = api
        gets = _gets(world, manifest_id, number)
        before = {name: api.get(path, headers=h).status_code for name, (path, h) in gets.items()}
        assert before == dict.fromkeys(gets, 200)
        seq, prev = hauler.head(manifest_id)
        pickup = sign_body(
            make_body(
                manifest_id=manifest_id,
                seq=seq,
                prev_hash=prev,
                type="picked_up",
                actor=hauler.party_id,
                at=minutes_ago(0),
                data=world.pickup(),
            ),
            [hauler.key, world.producer.key],
        )
        late_filing_id = str(uuid.uuid4())
        try:
            gateway.start()
            for device in devices:
                device.client.start_background()
            streamer.start()
            wait_for(lambda: stored_count(engine, devices) > 0, timeout=20)

            reset = proxy.cut()
            cut_at = time.monotonic()
            wait_for(lambda: gateway.status() == 503, timeout=15)
            wait_for(lambda: gateway.metric("waste_gateway_db_errors_total") > 0, timeout=15)
            time.sleep(0.5)  # PUBACKs of the last batch committed before the cut are out
            _, offset = broker_log_lines(mosquitto.log)
            stored_at_cut = stored_count(engine, devices)

            down = {name: api.get(path, headers=h) for name, (path, h) in gets.items()}
            with pytest.raises(ClientError) as filing_refused:
                producer.file(world.filing(), manifest_id=late_filing_id)
            append_refused = api.post(
                f"/v1/manifests/{manifest_id}/events", json=pickup, headers=hauler._headers
            )
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
            stored_at_end = stored_count(engine, devices)
            lines, _ = broker_log_lines(mosquitto.log, offset)
            proxy.restore()
            outage_s = time.monotonic() - cut_at

            wait_for(gateway.healthy, timeout=30)
            back = {name: api.get(path, headers=h) for name, (path, h) in gets.items()}
            missing = api.get(f"/v1/manifests/{late_filing_id}", headers=gets["manifest"][1])
            append_ok = api.post(
                f"/v1/manifests/{manifest_id}/events", json=pickup, headers=hauler._headers
            )
            filing_ok = producer.file(world.filing(), manifest_id=late_filing_id)
            streamer.finish()
            for device in devices:
                assert device.client.wait_delivered(30), f"{device.device_id} has a backlog"
            settle(engine, devices)
            check = check_stored_exactly_once(engine, devices)
            log = gateway.tail(1_000_000)
            duplicates = gateway.metric("waste_gateway_messages_duplicate_total")
        finally:
            for device in devices:
                device.client.close()
            code = gateway.stop()
            api_engine.dispose()
    pubacks = [ln for ln in lines if f"Received PUBACK from {client_id}" in ln]
    deliveries = [ln for ln in lines if f"Sending PUBLISH to {client_id}" in ln]
    retries = [(int(n), float(s)) for n, s in RETRY.findall(log)]
    refused_gets = sorted(name for name, resp in down.items() if _is_unavailable(resp))
    reliability(
        **check.figures(),
        duplicates_suppressed=int(duplicates),
        outage_s=round(outage_s, 1),
        connections_reset_at_cut=reset,
        stored_during_outage=stored_at_end - stored_at_cut,
        pubacks_from_gateway_during_outage=len(pubacks),
        deliveries_to_gateway_during_outage=len(deliveries),
        gateway_retries=len(retries),
        longest_backoff_s=max((s for _, s in retries), default=0.0),
        api_gets_503=f"{len(refused_gets)}/{len(gets)}",
        api_posts_503=[filing_refused.value.status, append_refused.status_code].count(503),
        seed=SEED,
    )
    assert not check.problems, check.problems
    assert stored_at_end == stored_at_cut
    assert not pubacks, pubacks[:3]
    assert deliveries, "the gateway received nothing during the outage"
    assert len(retries) >= 3
    assert max(s for _, s in retries) > min(s for _, s in retries) * 4  # backing off
    assert refused_gets == sorted(gets), {n: (r.status_code, r.text[:200]) for n, r in down.items()}
    assert filing_refused.value.status == 503
    assert filing_refused.value.problem["type"] == UNAVAILABLE
    assert _is_unavailable(append_refused), append_refused.text
    assert [n for n, r in down.items() if "retry-after" not in r.headers] == []
    assert {name: resp.status_code for name, resp in back.items()} == dict.fromkeys(gets, 200)
    assert missing.status_code == 404  # the refused filing left nothing behind
    assert append_ok.status_code == 201, append_ok.text  # the same signed event, now accepted
    assert filing_ok["manifest_id"] == late_filing_id
    assert code == 0
