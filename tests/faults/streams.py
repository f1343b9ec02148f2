"""Seeded vehicle tracks, and the checks that what devices sent is stored exactly once."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, select

from gateway.payloads import Fix
from tests.support.fault_devices import Device
from tests.support.telemetry import wait_for
from tests.support.world import ROUTE
from waste.db import make_session_factory
from waste.telemetry.models import DeadLetter, DeviceMessage, TelemetryFix
from waste.uow import UnitOfWork

SPEED_MS = 11.0  # 40 km/h
NOISE_DEG = 0.00002  # ≈ 2 m


@dataclass(frozen=True)
class Detour:
    """Fixes ``start`` … ``start + length - 1`` leave the road (``offset_deg`` north) or stop."""

    start: int
    length: int
    offset_deg: float = 0.0  # 0: a stop where the vehicle stands

    def holds(self, i: int) -> bool:
        """Whether fix ``i`` is part of it."""
        return self.start <= i < self.start + self.length


def _along(distance_m: float) -> tuple[float, float]:
    """(lat, lon) ``distance_m`` along ROUTE (flat-earth interpolation is close enough here)."""
    coords = cast(list[tuple[float, float]], ROUTE["coordinates"])
    left = distance_m
    for (lon0, lat0), (lon1, lat1) in itertools.pairwise(coords):
        dx = (lon1 - lon0) * 111_320 * math.cos(math.radians(lat0))
        dy = (lat1 - lat0) * 110_540
        seg = math.hypot(dx, dy)
        if left <= seg:
            f = left / seg
            return lat0 + f * (lat1 - lat0), lon0 + f * (lon1 - lon0)
        left -= seg
    lon, lat = coords[-1]
    return lat, lon


def drive(
    rng: random.Random,
    start: datetime,
    count: int,
    *,
    step_s: float = 1.0,
    speed_ms: float = SPEED_MS,
    detours: Sequence[Detour] = (),
) -> list[Fix]:
    """``count`` fixes ``step_s`` apart along ROUTE at ``speed_ms``, seeded noise, detours."""
    start = start.replace(microsecond=(start.microsecond // 1000) * 1000)
    fixes: list[Fix] = []
    travelled = 0.0
    for i in range(count):
        detour = next((d for d in detours if d.holds(i)), None)
        if detour is None or detour.offset_deg:
            travelled += speed_ms * step_s
        lat, lon = _along(travelled)
        if detour is not None:
            lat += detour.offset_deg
        t = start + timedelta(milliseconds=round(i * step_s * 1000))
        fixes.append(
            Fix(
                t,
                round(lat + rng.uniform(-NOISE_DEG, NOISE_DEG), 7),
                round(lon + rng.uniform(-NOISE_DEG, NOISE_DEG), 7),
                0.0 if detour is not None and not detour.offset_deg else 40.0,
                round(rng.uniform(80, 100), 1),
                round(rng.uniform(0.6, 1.2), 1),
            )
        )
    return fixes


@dataclass
class StoreCheck:
    """What a run sent and what the database holds; ``problems`` empty when all is well."""

    sent: int  # distinct (device_id, seq) handed to the broker
    stored: int  # device_messages rows of those devices
    fixes_recorded: int
    fixes_stored: int
    device_resends: int  # messages handed again after a reconnect or a restart
    lost: int
    extra: int
    problems: list[str]

    def figures(self) -> dict[str, int]:
        """The figures every fault test reports."""
        return {
            "messages_sent": self.sent,
            "messages_stored": self.stored,
            "device_resends": self.device_resends,
            "fixes_recorded": self.fixes_recorded,
            "fixes_stored": self.fixes_stored,
            "lost": self.lost,
            "stored_twice_or_unsent": self.extra,
        }


def _rows(engine: Engine, model: type[Any], device_ids: Iterable[str]) -> list[Any]:
    ids = list(device_ids)
    with UnitOfWork(make_session_factory(engine)) as uow:
        query = select(model).where(model.device_id.in_(ids))
        rows = list(uow.session.scalars(query))
        uow.session.expunge_all()
        return rows


def stored_count(engine: Engine, devices: Sequence[Device]) -> int:
    """How many messages of ``devices`` the database holds."""
    return len(_rows(engine, DeviceMessage, [d.device_id for d in devices]))


def sent_count(devices: Sequence[Device]) -> int:
    """How many distinct messages ``devices`` handed to the broker so far."""
    return sum(len(d.sent()) for d in devices)


def check_stored_exactly_once(engine: Engine, devices: Sequence[Device]) -> StoreCheck:
    """Every message sent is stored once, byte for byte, seqs without gaps, every fix once."""
    sent: dict[tuple[str, int], bytes] = {}
    for device in devices:
        sent |= device.sent()
    check = check_messages(engine, sent, {d.device_id: d.recorded for d in devices})
    check.device_resends = sum(d.resends for d in devices)
    return check


def check_messages(
    engine: Engine, sent: dict[tuple[str, int], bytes], recorded: dict[str, list[Fix]]
) -> StoreCheck:
    """``sent`` (by (device_id, seq)) is stored once, byte for byte, seqs without gaps, and
    the stored fixes of each device are exactly ``recorded``."""
    ids = list(recorded)
    messages = {(m.device_id, m.seq): m for m in _rows(engine, DeviceMessage, ids)}
    lost = sorted(set(sent) - set(messages))
    extra = sorted(set(messages) - set(sent))
    problems = []
    if lost:
        problems.append(f"{len(lost)} sent but not stored: {lost[:5]}")
    if extra:
        problems.append(f"{len(extra)} stored but never sent: {extra[:5]}")
    changed = [k for k, p in sent.items() if k in messages and messages[k].digest != _sha(p)]
    if changed:
        problems.append(f"stored with other bytes than sent: {changed[:5]}")
    for device_id in ids:
        seqs = sorted(seq for (dev, seq) in messages if dev == device_id)
        if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
            problems.append(f"a gap in the seqs of {device_id}")
    fixes = _rows(engine, TelemetryFix, ids)
    for device_id, its_fixes in recorded.items():
        stored = sorted((f.t, f.lat, f.lon) for f in fixes if f.device_id == device_id)
        wanted = sorted((f.t, f.lat, f.lon) for f in its_fixes)
        if stored != wanted:
            problems.append(
                f"{device_id}: {len(stored)} fixes stored, {len(wanted)} recorded,"
                f" {len(set(wanted) - set(stored))} missing"
            )
    payloads = set(sent.values())
    dead = [d for d in _rows(engine, DeadLetter, ids) if d.payload in payloads]
    if dead:
        problems.append(f"dead-lettered: {[(d.reason, d.detail) for d in dead][:5]}")
    return StoreCheck(
        sent=len(sent),
        stored=len(messages),
        fixes_recorded=sum(len(f) for f in recorded.values()),
        fixes_stored=len(fixes),
        device_resends=0,
        lost=len(lost),
        extra=len(extra),
        problems=problems,
    )


def _sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class Streamer(threading.Thread):
    """Feeds each device its track, a few fixes per device every ``tick_s``, in a thread."""

    def __init__(
        self,
        devices: Sequence[Device],
        tracks: dict[str, list[Fix]],
        rng: random.Random,
        *,
        tick_s: float = 0.02,
        per_tick: tuple[int, int] = (1, 3),
    ) -> None:
        super().__init__(name="streamer", daemon=True)
        self.devices = devices
        self.tracks = tracks
        self.rng = rng
        self.tick_s = tick_s
        self.per_tick = per_tick
        self.total = sum(len(t) for t in tracks.values())
        self.done = 0
        self.error: BaseException | None = None

    @property
    def progress(self) -> float:
        """The share of all fixes recorded so far."""
        return self.done / self.total

    def run(self) -> None:
        """Record every track, interleaved, at the set pace."""
        try:
            at = {d.device_id: 0 for d in self.devices}
            while any(at[d.device_id] < len(self.tracks[d.device_id]) for d in self.devices):
                for device in self.devices:
                    i = at[device.device_id]
                    batch = self.tracks[device.device_id][i : i + self.rng.randint(*self.per_tick)]
                    if batch:
                        device.record(batch)
                        at[device.device_id] = i + len(batch)
                        self.done += len(batch)
                time.sleep(self.tick_s)
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def wait_progress(self, share: float, timeout: float = 60.0) -> None:
        """Block until ``share`` of the fixes are recorded."""
        wait_for(lambda: self.progress >= share or not self.is_alive(), timeout=timeout)

    def finish(self, timeout: float = 60.0) -> None:
        """Wait for the end of the stream; re-raise what went wrong in it."""
        self.join(timeout)
        if self.error is not None:
            raise self.error
        assert not self.is_alive(), "the stream did not finish"


def settle(engine: Engine, devices: Sequence[Device], timeout: float = 30.0) -> None:
    """Wait until everything sent is stored (or ``timeout``: the check then names the loss),
    and a little longer, so that anything stored twice would show."""
    deadline = time.monotonic() + timeout
    while stored_count(engine, devices) < sent_count(devices) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
