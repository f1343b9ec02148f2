"""A simulated fleet driven as the demo drives it: a county registered through the API,
trucks on real device clients publishing to the embedded broker, the gateway storing and
binding their telemetry, custody events posted as the simulated clock reaches them, all
in time compressed some thousand-fold."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from devices.fleet import Fleet, fake_links, records_of
from devices.registrar import register_county
from devices.scenario_model import Corpus
from devices.scenarios import make_corpus
from devices.signing import public_key_bytes
from devices.world import make_county
from gateway.payloads import DeviceKey, TelemetryMessage, decode
from tests.support.brokers import free_port
from tests.support.brokers import unique_name as unique
from tests.support.gateways import RunningGateway
from tests.support.telemetry import make_rig, wait_for
from waste.clock import utcnow
from waste.config import Settings
from waste.telemetry.models import DeviceMessage, DevicePresence, TelemetryFix, TelemetryLockEvent

KINDS = ["offline_backlog", "dump_stop", "multi_leg"]


def _corpus(trucks_per_hauler: int = 1) -> Corpus:
    county = make_county(
        random.Random(4), haulers=2, trucks_per_hauler=trucks_per_hauler, producers=4
    )
    return make_corpus(
        3,
        seed=4,
        kinds=KINDS,
        incident_share=1.0,
        county=county,
        end=utcnow() - timedelta(minutes=1),
    )


@pytest.mark.broker
def test_a_compressed_fleet_reaches_the_gateway_bound_to_its_legs(
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
) -> None:
    corpus = _corpus()
    registry = register_county(client, admin_headers["Authorization"].split()[1], corpus.county)
    running = RunningGateway(
        settings, engine, f"embedded://127.0.0.1:{free_port()}?client_id={unique('gw')}"
    )
    span = (corpus.end - corpus.start).total_seconds()
    try:
        fleet = Fleet(
            corpus.scenarios,
            corpus.county,
            tmp_path / "fleet",
            speed=span / 8,  # the whole corpus in about 8 s
            broker=running.gateway.broker,
            post_custody=lambda _s, step: registry.post(step),
        )
        report = fleet.run(drain_timeout=30)
        assert report.custody_failed == []
        assert report.undelivered == {}
        expected = records_of(corpus.scenarios)
        assert dict(report.records) == dict(expected)
        rig = make_rig(engine)
        for device in expected:  # acknowledged by the broker: the gateway may still be at it
            want = sorted(f.t for s in corpus.scenarios for f in s.fixes(device))
            total = sum(len(s.locks(device)) for s in corpus.scenarios)
            wait_for(
                lambda d=device, n=len(want), k=total: (
                    rig.count(TelemetryFix, device_id=d) >= n
                    and rig.count(TelemetryLockEvent, device_id=d) >= k
                ),
                timeout=20,
            )
            rows = rig.rows(TelemetryFix, TelemetryFix.t, device_id=device)
            assert [r.t for r in rows] == want  # every fix once, with its own time
            locks = rig.rows(TelemetryLockEvent, TelemetryLockEvent.t, device_id=device)
            assert len(locks) == sum(len(s.locks(device)) for s in corpus.scenarios)
        for scenario in corpus.scenarios:
            for plan in scenario.manifests:
                manifest_id = registry.manifest_id(plan.key)
                events = client.get(
                    f"/v1/manifests/{manifest_id}/events", headers=admin_headers
                ).json()
                assert [e["body"]["type"] for e in events][-1] == "received"
                steps = {c.type: c for c in scenario.custody if c.manifest == plan.key}
                device = steps["picked_up"].data["device_id"]
                closes = steps.get("handed_over", steps["received"]).at
                leg = [
                    r
                    for r in rig.rows(TelemetryFix, TelemetryFix.t, device_id=device)
                    if steps["picked_up"].at <= r.t < closes
                ]
                assert leg
                assert {(r.manifest_id, r.leg_index) for r in leg} == {(manifest_id, 0)}
        (backlog,) = [s for s in corpus.scenarios if s.kind == "offline_backlog"]
        ((device, a, b),) = backlog.offline
        held = [f for f in backlog.fixes(device) if a <= f.t < b]
        messages = rig.rows(DeviceMessage, DeviceMessage.seq, device_id=device)
        assert (
            len(messages) < len(backlog.fixes(device)) - len(held) // 2
        )  # the backlog came batched
        presence = rig.rows(DevicePresence, DevicePresence.id, device_id=device)
        assert any(not p.online and p.source == "will" for p in presence)
    finally:
        running.close()


def test_a_fleet_on_fake_links_delivers_every_record_with_its_own_time(tmp_path: Path) -> None:
    corpus = _corpus()
    factory, links = fake_links()
    span = (corpus.end - corpus.start).total_seconds()
    posted: list[str] = []
    progress: list[tuple[str, datetime]] = []
    fleet = Fleet(
        corpus.scenarios,
        corpus.county,
        tmp_path,
        speed=span / 3,
        link_factory=factory,
        post_custody=lambda _s, step: posted.append(step.type),
        on_progress=lambda kind, at: progress.append((kind, at)),
    )
    report = fleet.run()
    assert report.undelivered == {}
    assert sorted(posted) == sorted(c.type for s in corpus.scenarios for c in s.custody)
    assert [at for _, at in progress] == sorted(at for _, at in progress)  # in simulated order
    records = sorted(
        r.t
        for s in corpus.scenarios
        for m in s.transmissions
        for r in (*m.fixes, *[m.lock][:1])
        if r is not None
    )
    assert [at for kind, at in progress if kind == "record"] == records
    custody = sorted(c.post_at for s in corpus.scenarios for c in s.custody)
    assert [at for kind, at in progress if kind == "custody"] == custody
    for truck in corpus.county.trucks:
        link = links.get(truck.device_id)
        if link is None:
            continue
        key = DeviceKey(truck.device_id, public_key_bytes(truck.private_key()), "v")
        times = []
        for sent in link.delivered:
            msg = decode(sent.topic, sent.payload, lookup_device=lambda _d, k=key: k, now=utcnow())
            if isinstance(msg, TelemetryMessage):
                times += [f.t for f in msg.fixes]
        want = sorted(f.t for s in corpus.scenarios for f in s.fixes(truck.device_id))
        assert sorted(times) == want
        assert times == sorted(times)  # sent in order, compressed or not
