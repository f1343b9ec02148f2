"""The fleet runner: many simulated trucks at once, in real time or faster.

Every truck of the scenarios gets a ``DeviceClient`` (its own state directory, its
key, a link to the broker). One scheduler thread walks the merged timeline of all
scenarios in simulated time and, when the simulated clock reaches each item,
records a fix or e-lock event on its truck's client, takes a device off the air or
puts it back (the client then sends its backlog in batches), or hands a custody
step to ``post_custody``. One pump thread runs every client.

Time compression (``speed``) changes only how long the scheduler sleeps: the
simulated clock is ``sim_start + (wall elapsed) * speed``, every fix keeps the
``t`` the simulator gave it (spaced as generated), and the clients stamp their
status messages with the simulated clock. The server rejects fixes more than
5 minutes in its future, so a compressed run should lie in the past: generate
the scenarios to end by the time the run starts (``ending_now``).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devices.client import DeviceClient
from devices.link import FakeLink, Link, PahoLink
from devices.scenario_model import CustodyStep, Scenario
from devices.world import County, Truck
from gateway.broker import BrokerConfig
from gateway.payloads import Fix, LockEvent
from waste.clock import utcnow

__all__ = ["Fleet", "FleetReport", "SimClock", "ending_now", "fake_links", "records_of"]

log = logging.getLogger(__name__)

PostCustody = Callable[[Scenario, CustodyStep], Any]


def ending_now(span: timedelta, *, margin: timedelta = timedelta(minutes=1)) -> datetime:
    """A start time for scenarios that must all lie in the past when a run starts now."""
    return (utcnow() - span - margin).replace(microsecond=0)


class SimClock:
    """Simulated time: ``sim_start`` when started, advancing ``speed`` times faster than wall."""

    def __init__(
        self,
        sim_start: datetime,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.sim_start = sim_start
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def __call__(self) -> datetime:
        """The simulated time now (millisecond precision)."""
        t = self.sim_start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)
        return t.replace(microsecond=t.microsecond - t.microsecond % 1000)

    def wall_seconds_until(self, moment: datetime) -> float:
        """Wall seconds until the simulated clock reaches ``moment`` (negative: passed)."""
        return (moment - self()).total_seconds() / self.speed


@dataclass
class FleetReport:
    """What a run did."""

    records: Counter[str] = field(default_factory=Counter)
    custody_posted: int = 0
    custody_failed: list[tuple[str, str, str]] = field(default_factory=list)
    undelivered: dict[str, tuple[int, int]] = field(default_factory=dict)
    sim_end: datetime | None = None
    wall_s: float = 0.0


class Fleet:
    """Plays scenarios through real device clients (see the module docstring)."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        county: County,
        state_dir: Path | str,
        *,
        speed: float = 1.0,
        broker: BrokerConfig | None = None,
        link_factory: Callable[[Truck], Link] | None = None,
        post_custody: PostCustody | None = None,
        sim_start: datetime | None = None,
        durable: bool = False,
        on_progress: Callable[[str, datetime], None] | None = None,
    ) -> None:
        if broker is None and link_factory is None:
            raise ValueError("give a broker or a link_factory")
        self.scenarios = list(scenarios)
        self.county = county
        self.state_dir = Path(state_dir)
        self.speed = speed
        self.post_custody = post_custody
        self._link_factory = link_factory or (lambda truck: _paho(broker, truck))  # type: ignore[arg-type]
        start = min(s.start for s in self.scenarios) if sim_start is None else sim_start
        self.clock = SimClock(start, speed)
        self.durable = durable
        self.on_progress = on_progress
        """Called with (kind, simulated time) after each item is done: ``record`` (a fix or
        e-lock event handed to its device), ``custody`` (a step posted or refused),
        ``down``/``up`` (a link cut or restored); from the scheduler's thread."""
        self.clients: dict[str, DeviceClient] = {}
        self.report = FleetReport()
        self._stop = threading.Event()
        self._pump: threading.Thread | None = None

    # -- set-up -------------------------------------------------------------------

    def _timeline(self) -> list[tuple[datetime, int, str, Any]]:
        items: list[tuple[datetime, int, str, Any]] = []
        n = 0
        for scenario in self.scenarios:
            for step in scenario.custody:
                items.append((step.post_at, n, "custody", (scenario, step)))
                n += 1
            for device_id, a, b in scenario.offline:
                items.append((a, n, "down", device_id))
                items.append((b, n + 1, "up", device_id))
                n += 2
            for m in scenario.transmissions:
                for record in (*m.fixes, *((m.lock,) if m.lock is not None else ())):
                    items.append((record.t, n, "record", (m.device_id, record)))
                    n += 1
        heapq.heapify(items)
        return items

    def _client(self, device_id: str) -> DeviceClient:
        client = self.clients.get(device_id)
        if client is None:
            truck = next(t for t in self.county.trucks if t.device_id == device_id)
            client = DeviceClient(
                device_id,
                truck.private_key(),
                self.state_dir / device_id,
                self._link_factory(truck),
                clock=self.clock,
                durable=self.durable,
            )
            client.start()
            self.clients[device_id] = client
        return client

    # -- running ------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to stop soon."""
        self._stop.set()

    def run(self, *, drain_timeout: float = 30.0) -> FleetReport:
        """Play every scenario to the end (or until ``stop``); then deliver what is left."""
        began = time.monotonic()
        timeline = self._timeline()
        trucks = {m.device_id for s in self.scenarios for m in s.transmissions}
        for device_id in sorted(trucks):
            self._client(device_id)
        self._pump = threading.Thread(target=self._pump_all, name="fleet-pump", daemon=True)
        self._pump.start()
        try:
            while timeline and not self._stop.is_set():
                at, _, kind, item = timeline[0]
                wait = self.clock.wall_seconds_until(at)
                if wait > 0:
                    self._stop.wait(min(wait, 0.25))
                    continue
                heapq.heappop(timeline)
                self._do(kind, item)
                if self.on_progress is not None:
                    self.on_progress(kind, at)
            self._drain(drain_timeout)
        finally:
            self._stop.set()
            if self._pump is not None:
                self._pump.join(5)
            for client in self.clients.values():
                client.close(timeout=2.0)
        self.report.sim_end = self.clock()
        self.report.wall_s = time.monotonic() - began
        return self.report

    def _do(self, kind: str, item: Any) -> None:
        if kind == "record":
            device_id, record = item
            client = self._client(device_id)
            if isinstance(record, Fix):
                client.record_fix(record)
            else:
                assert isinstance(record, LockEvent)
                client.record_lock(record)
            self.report.records[device_id] += 1
        elif kind in ("down", "up"):
            link = self._client(item).link
            action = getattr(link, "suspend" if kind == "down" else "resume", None)
            if action is None:  # a FakeLink
                action = getattr(link, "down" if kind == "down" else "up")
            action()
        elif kind == "custody" and self.post_custody is not None:
            scenario, step = item
            try:
                self.post_custody(scenario, step)
                self.report.custody_posted += 1
            except Exception as exc:  # one refused step must not stop the fleet
                log.warning("%s: %s of %s refused: %s", scenario.key, step.type, step.manifest, exc)
                self.report.custody_failed.append((scenario.key, step.type, str(exc)[:300]))

    def _pump_all(self) -> None:
        while not self._stop.is_set():
            busy = 0
            for client in list(self.clients.values()):
                busy += client.pump(0)
            if not busy:
                time.sleep(0.01)

    def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(c.backlog == (0, 0) for c in self.clients.values()):
                break
            time.sleep(0.05)
        self.report.undelivered = {
            d: c.backlog for d, c in self.clients.items() if c.backlog != (0, 0)
        }


def _paho(broker: BrokerConfig, truck: Truck) -> Link:
    return PahoLink(broker, client_id=truck.device_id, reconnect_delay=(0.2, 5.0))


def fake_links() -> tuple[Callable[[Truck], Link], dict[str, FakeLink]]:
    """A ``link_factory`` making ``FakeLink`` values (acknowledged at once) for tests."""
    links: dict[str, FakeLink] = {}

    def make(truck: Truck) -> Link:
        links[truck.device_id] = link = FakeLink(auto_ack=True)
        return link

    return make, links


def records_of(scenarios: Iterable[Scenario]) -> Counter[str]:
    """Fixes and e-lock events per device over ``scenarios``."""
    count: Counter[str] = Counter()
    for s in scenarios:
        for m in s.transmissions:
            count[m.device_id] += len(m.fixes) + (m.lock is not None)
    return count
