"""Legs for the fault tests: open them (backdated), close them, read their seals and alerts."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from gateway.payloads import Fix
from tests.support.manifests import backdated_filing, receipt
from tests.support.telemetry import wait_for
from tests.support.world import World
from waste.alerts.models import Alert, LegTrackerState
from waste.db import make_session_factory
from waste.telemetry.domain import digest_track
from waste.telemetry.models import LegSeal
from waste.telemetry.sealing import LegCheck, verify_leg
from waste.uow import UnitOfWork

AlertShape = tuple[Any, ...]

# The compressed tracks lie in the past: the sweep's signal_lost (no fix for signal_lost_s
# of wall-clock time, or a device gone offline will_grace_s after its last fix, which is
# at once when devices close after a backdated track) would fire whenever a sweep happens
# to run before the legs close, so both are pushed out of the way; a stop of 2 minutes on
# the road is alerted.
THRESHOLDS = '{"": {"signal_lost_s": 86400, "will_grace_s": 86400, "unscheduled_stop_s": 120}}'


def open_legs(world: World, haulers: Iterable[int], filed_at: datetime) -> list[str]:
    """One manifest per hauler, filed at ``filed_at`` and picked up 5 min later: legs open."""
    manifests = []
    for i in haulers:
        hauler = world.haulers[i]
        data = backdated_filing(world, world.producer, filed_at)
        data |= {"hauler": hauler.client.party_id, "vehicle": hauler.plate}
        mid = str(world.producer.file(data, at=filed_at)["manifest_id"])
        hauler.client.pick_up(
            mid,
            world.pickup(hauler=i),
            cosigners=[world.producer.key],
            at=filed_at + timedelta(minutes=5),
        )
        manifests.append(mid)
    return manifests


def close_legs(world: World, manifests: Sequence[str], haulers: Iterable[int]) -> None:
    """The site receives each load: the legs close (and the gateway seals them)."""
    for mid, i in zip(manifests, haulers, strict=True):
        world.sites[0].receive(mid, receipt(world, hauler=i))


def wait_sealed(engine: Engine, manifests: Sequence[str], timeout: float = 20.0) -> list[LegCheck]:
    """Wait until every leg is sealed; each one's seal checked against the stored rows."""
    factory = make_session_factory(engine)

    def sealed() -> set[str]:
        with UnitOfWork(factory) as uow:
            query = select(LegSeal.manifest_id).where(LegSeal.manifest_id.in_(manifests))
            return set(uow.session.scalars(query))

    wait_for(lambda: sealed() == set(manifests), timeout=timeout)
    with UnitOfWork(factory) as uow:
        return [verify_leg(uow=uow, manifest_id=m, leg_index=0) for m in manifests]


def close_and_read(
    world: World, manifests: Sequence[str], haulers: Iterable[int], engine: Engine
) -> tuple[list[LegCheck], list[AlertShape]]:
    """Close the legs (the site receives), wait for their seals; the seals and the alerts."""
    close_legs(world, manifests, haulers)
    legs = wait_sealed(engine, manifests)
    time.sleep(1.0)  # let alert detection of the last batch settle
    return legs, alert_shapes(engine, manifests)


def expected_root(device_id: str, fixes: Iterable[Fix]) -> str:
    """A leg's Merkle root as an undisturbed run seals it: every fix once, in fix-time order."""
    return digest_track(((f.t, device_id, 0, 0), f) for f in fixes).root


def alert_shapes(engine: Engine, manifests: Sequence[str]) -> list[AlertShape]:
    """The legs' alerts without their identities: manifest, device and plate become the
    leg's position in ``manifests``. (position, kind, dedupe key, at, ended_at, severity,
    retracted), sorted."""
    with UnitOfWork(make_session_factory(engine)) as uow:
        rows = uow.session.scalars(select(Alert).where(Alert.manifest_id.in_(manifests)))
        shapes = []
        for alert in rows:
            ordinal = manifests.index(alert.manifest_id) if alert.manifest_id else -1
            key = alert.dedupe_key
            for name in (alert.manifest_id, alert.device_id, alert.vehicle):
                if name:
                    key = key.replace(name, "<leg>")
            retracted = bool((alert.evidence or {}).get("retracted"))
            shapes.append(
                (ordinal, alert.kind, key, alert.at, alert.ended_at, alert.severity, retracted)
            )
        return sorted(shapes)


def raised_at(engine: Engine, manifest: str) -> list[tuple[str, datetime, datetime]]:
    """(kind, at, raised_at) of a leg's alerts."""
    with UnitOfWork(make_session_factory(engine)) as uow:
        rows = uow.session.execute(
            select(Alert.kind, Alert.at, Alert.raised_at).where(Alert.manifest_id == manifest)
        )
        return [(k, a, r) for k, a, r in rows]


def tracker_rebuilds(engine: Engine, manifest: str) -> int:
    """How many times alert detection replayed the leg from its stored track."""
    with UnitOfWork(make_session_factory(engine)) as uow:
        row = uow.session.get(LegTrackerState, (manifest, 0))
        return 0 if row is None else int(row.rebuilds)
