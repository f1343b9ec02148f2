"""Vehicle devices that sign telemetry, and an ingest rig on a fake transport and a real DB."""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select

from devices.signing import encode_lock, encode_status, encode_telemetry
from gateway.directory import DeviceDirectory
from gateway.ingest import IngestConfig, Ingestor
from gateway.payloads import DeviceKey, Fix, LockEvent, LockEventKind
from gateway.topics import lock_topic, status_topic, telemetry_topic
from gateway.transport import FakeTransport, InboundMessage
from tests.support.world import Hauler
from waste.clock import utcnow
from waste.db import make_session_factory
from waste.telemetry.domain import TrackUpdate
from waste.uow import UnitOfWork

ORIGIN = (29.3061, 120.0752)


def minutes_ago(minutes: float, now: datetime | None = None) -> datetime:
    """A protocol-precision (millisecond) time ``minutes`` before now."""
    return (now or utcnow()) - timedelta(minutes=minutes)


@dataclass
class Vehicle:
    """A hauler's device: signs telemetry and e-lock messages with a running seq."""

    device_id: str
    plate: str
    key: Ed25519PrivateKey
    seqs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def of(cls, hauler: Hauler) -> Vehicle:
        """The device mounted on ``hauler``'s vehicle."""
        return cls(hauler.device_id, hauler.plate.upper(), hauler.device_key)

    def fixes(self, *times: datetime, lat: float = ORIGIN[0]) -> list[Fix]:
        """One fix per time, moving slightly east."""
        return [Fix(t, lat, ORIGIN[1] + i * 0.0001, 40.0, 90.0, 0.8) for i, t in enumerate(times)]

    def telemetry(self, *times: datetime, seq: int | None = None) -> tuple[str, bytes]:
        """``(topic, payload)`` of a signed telemetry message with one fix per time."""
        seq = next(self.seqs) if seq is None else seq
        return telemetry_topic(self.device_id), encode_telemetry(
            self.device_id, seq, self.fixes(*times), self.key
        )

    def lock(self, t: datetime, event: str = "sealed", seq: int | None = None) -> tuple[str, bytes]:
        """``(topic, payload)`` of a signed e-lock message."""
        seq = next(self.seqs) if seq is None else seq
        lock = LockEvent(t, f"SEAL-{self.device_id}", LockEventKind(event), *ORIGIN)
        return lock_topic(self.device_id), encode_lock(self.device_id, seq, lock, self.key)

    def status(self, online: bool, t: datetime | None = None) -> tuple[str, bytes]:
        """``(topic, payload)`` of a status (or will) message."""
        return status_topic(self.device_id), encode_status(online, t=t)


@dataclass
class Rig:
    """An ``Ingestor`` on a ``FakeTransport`` and this test's database."""

    engine: Engine
    transport: FakeTransport
    ingestor: Ingestor
    tracks: list[TrackUpdate]

    def send(self, message: tuple[str, bytes], **kw: Any) -> InboundMessage:
        """Deliver ``(topic, payload)`` as the broker would."""
        return self.transport.inject(*message, **kw)

    def pump(self, steps: int = 50) -> None:
        """Step the ingestor until it finds nothing more to do."""
        for _ in range(steps):
            if self.ingestor.step() == 0 and not self.ingestor._held:
                return
        raise AssertionError("ingestor still busy")

    def count(self, model: type[Any], **where: Any) -> int:
        """Rows of ``model`` matching ``where``."""
        with UnitOfWork(make_session_factory(self.engine)) as uow:
            query = select(func.count()).select_from(model).filter_by(**where)
            return int(uow.session.scalar(query) or 0)

    def rows(self, model: type[Any], *order: Any, **where: Any) -> list[Any]:
        """Rows of ``model`` matching ``where``, in ``order``."""
        with UnitOfWork(make_session_factory(self.engine)) as uow:
            rows = list(uow.session.scalars(select(model).filter_by(**where).order_by(*order)))
            uow.session.expunge_all()  # keep their loaded state past the rollback
            return rows


def make_rig(
    engine: Engine,
    *,
    lookup: Callable[[str], DeviceKey | None] | None = None,
    config: IngestConfig | None = None,
    consumers: Sequence[Callable[[Sequence[TrackUpdate]], None]] = (),
) -> Rig:
    """A started fake transport and an ingestor with a short batch interval."""
    factory = make_session_factory(engine)
    transport = FakeTransport()
    transport.start()
    tracks: list[TrackUpdate] = []
    ingestor = Ingestor(
        transport=transport,
        session_factory=factory,
        lookup_device=lookup or DeviceDirectory(factory).lookup,
        config=config
        or IngestConfig(batch_interval_s=0.01, backoff_base_s=0.001, lookup_retry_s=0.01),
        consumers=[tracks.extend, *consumers],
    )
    return Rig(engine, transport, ingestor, tracks)


def wait_for(what: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``what`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def http_get(port: int, path: str) -> tuple[int, str]:
    """Status and body of a GET on 127.0.0.1."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
