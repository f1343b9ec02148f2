"""Gateway end to end through a real broker: prints rates and memory, asserts nothing.

    python bench/gateway_e2e.py                        # SQLite and PostgreSQL, 1 and 2 gateways
    python bench/gateway_e2e.py --soak-minutes 10      # plus a steady stream, RSS sampled

Against a Mosquitto of its own, started on a free port with the settings of
``docs/mosquitto/waste.conf`` that matter here (``max_queued_messages 100000``: a
stock Mosquitto queues only 1,000 QoS 1 messages per subscriber and drops the rest
while the gateway commits), or the broker at ``--mqtt-url``; and, for PostgreSQL, a
scratch database created on ``--pg-url`` and dropped after. Prints:

* the limit: how fast a paho-mqtt 2 subscriber receives QoS 1 messages with no work;
* the signature-check limit: ``decode()`` of 1-fix messages on one core;
* end to end (published → verified → committed, until the gateways' ``fixes_stored``
  counters reach the total) with 1 and 10 fixes per message and 1 and 2 ``waste
  gateway`` subprocesses (2 share a subscription group of this run's own);
* with ``--soak-minutes``: one gateway fed at ``--soak-rate`` messages/s, its RSS
  every 10 s, and the growth per million messages after the first sample.

Payloads are signed before the clock starts; a separate process publishes at QoS 1.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from devices.signing import encode_telemetry, public_key_bytes
from gateway._mosquitto import MosquittoProcess
from gateway.payloads import DeviceKey, Fix, decode
from gateway.topics import telemetry_topic
from waste.clock import utcnow
from waste.db import make_engine, make_session_factory
from waste.migrate import upgrade
from waste.registry.models import Device, Party, Vehicle
from waste.telemetry.models import TelemetryFix

Message = tuple[str, bytes]
RUN = uuid.uuid4().hex[:6]


@dataclass
class Fleet:
    """Devices with keys; ``messages`` signs a stream of them, round-robin."""

    ids: list[str]
    keys: dict[str, Ed25519PrivateKey]
    start: datetime

    @classmethod
    def make(cls, prefix: str, count: int) -> Fleet:
        """``count`` new devices named ``<prefix>-<n>``."""
        ids = [f"B{RUN}-{prefix}-{i:04d}" for i in range(count)]
        keys = {d: Ed25519PrivateKey.generate() for d in ids}
        return cls(ids, keys, utcnow() - timedelta(hours=24))

    def message(self, n: int, fixes: int) -> Message:
        """The ``n``-th message of the stream: ``fixes`` fixes, one second apart."""
        device = self.ids[n % len(self.ids)]
        seq = n // len(self.ids)
        t0 = self.start + timedelta(seconds=seq * fixes)
        batch = [
            Fix(t0 + timedelta(seconds=i), 29.3 + (seq % 100) * 1e-4, 120.07, 40.0, 90.0, 0.8)
            for i in range(fixes)
        ]
        return telemetry_topic(device), encode_telemetry(device, seq, batch, self.keys[device])

    def messages(self, count: int, fixes: int) -> list[Message]:
        """The first ``count`` messages."""
        return [self.message(n, fixes) for n in range(count)]

    def directory(self) -> dict[str, DeviceKey]:
        """What the gateway's device lookup would return."""
        return {d: DeviceKey(d, public_key_bytes(k), f"B{d[-8:]}") for d, k in self.keys.items()}


def _broker(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


def _client(url: str, name: str) -> mqtt.Client:
    host, port = _broker(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{RUN}-{name}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=30)
    return client


def _publish(url: str, messages: list[Message], rate: float) -> None:
    """Publish at QoS 1 (at ``rate`` messages/s if > 0) and wait for every PUBACK."""
    client = _client(url, f"pub-{uuid.uuid4().hex[:6]}")
    client.loop_start()
    infos = []
    t0 = time.perf_counter()
    for i, (topic, payload) in enumerate(messages):
        infos.append(client.publish(topic, payload, qos=1))
        if rate > 0 and (ahead := t0 + i / rate - time.perf_counter()) > 0:
            time.sleep(ahead)
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def _publisher_process(url: str, messages: list[Message], rate: float = 0.0) -> mp.Process:
    proc = mp.Process(target=_publish, args=(url, messages, rate), daemon=True)
    proc.start()
    return proc


def measure_limit(url: str, messages: list[Message]) -> float:
    """Messages/s a do-nothing QoS 1 subscriber receives (publishing from another process)."""
    topic = f"bench/{RUN}/limit/{uuid.uuid4().hex[:6]}"
    got = threading.Event()
    count = [0]

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        if count[0] == len(messages):
            got.set()

    sub = _client(url, "sub")
    sub.on_message = on_message
    sub.subscribe(topic, qos=1)
    sub.loop_start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    pub = _publisher_process(url, [(topic, p) for _, p in messages])
    got.wait(300)
    elapsed = time.perf_counter() - t0
    pub.join(60)
    sub.disconnect()
    sub.loop_stop()
    return count[0] / elapsed


def measure_decode(fleet: Fleet, messages: list[Message]) -> float:
    """Messages/s of ``decode()`` (parse and verify) on this one core."""
    directory = fleet.directory()
    now = utcnow()
    t0 = time.perf_counter()
    for topic, payload in messages:
        decode(topic, payload, lookup_device=directory.get, now=now)
    return len(messages) / (time.perf_counter() - t0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return int(r.status), r.read().decode()


class GatewayProcess:
    """One ``waste gateway`` subprocess with its metrics port."""

    def __init__(
        self, workdir: Path, db_url: str, mqtt_url: str, group: str, profile: Path | None = None
    ) -> None:
        name = f"gw-{uuid.uuid4().hex[:6]}"
        self.port = _free_port()
        self.log = workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WASTE_")}
        env |= {
            "WASTE_DATA_DIR": str(workdir / name),
            "WASTE_DATABASE_URL": db_url,
            "WASTE_MQTT_URL": f"{mqtt_url}?client_id=bench-{RUN}-{name}&session_expiry=0",
            "WASTE_GATEWAY_METRICS_PORT": str(self.port),
            "WASTE_GATEWAY_SHARE_GROUP": group,
            "WASTE_AUTO_MIGRATE": "false",
        }
        exe = Path(sys.executable).with_name("waste")
        fallback = [sys.executable, "-c", "from waste.cli import main; main()"]
        cmd = [str(exe)] if exe.exists() else fallback
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*cmd, "gateway"], env=env, stdout=out, stderr=out)
        self.spy: subprocess.Popen[bytes] | None = None
        if profile is not None:  # py-spy's collapsed stacks, one file per gateway
            spy = ["py-spy", "record", "--format", "raw", "-r", "250", "--pid",
                   str(self.proc.pid), "-o", str(profile / f"{name}.txt")]
            self.spy = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return _http(self.port, "/healthz")[0] == 200
        except OSError:
            return False

    def fixes_stored(self) -> float:
        """Its ``waste_gateway_fixes_stored_total``."""
        for line in _http(self.port, "/metrics")[1].splitlines():
            if line.startswith("waste_gateway_fixes_stored_total"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def counters(self) -> str:
        """Its ``waste_gateway_*_total`` lines (for a stall report)."""
        lines = _http(self.port, "/metrics")[1].splitlines()
        return "\n".join(x for x in lines if x.startswith("waste_gateway_") and "_total" in x)

    def log_tail(self) -> str:
        """The end of its log."""
        return self.log.read_text(errors="replace")[-3000:]

    def rss_kib(self) -> int:
        """Resident set size from /proc/PID/status."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.send_signal(signal.SIGTERM)
        if self.spy is not None:
            self.spy.wait(30)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def database(kind: str, pg_url: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database URL: a temp SQLite file or a scratch PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return
    name = f"waste_bench_e2e_{RUN}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def register(db_url: str, fleets: list[Fleet]) -> None:
    """Migrate and register one hauler, and a vehicle and device per fleet device."""
    engine = make_engine(db_url)
    upgrade(engine)
    now = utcnow()
    with make_session_factory(engine).begin() as session:
        hauler = str(uuid.uuid4())
        session.add(Party(id=hauler, kind="hauler", name="Bench", uscc=f"91330000{RUN}BCH"[:18],
                          region_code="330100", created_at=now))
        session.flush()
        for fleet in fleets:
            for device_id, key in fleet.keys.items():
                vehicle = str(uuid.uuid4())
                raw = public_key_bytes(key)
                session.add(Vehicle(id=vehicle, hauler_id=hauler, plate=f"B{device_id[-8:]}",
                                    capacity_kg=10_000.0, created_at=now))
                session.flush()
                session.add(Device(device_id=device_id, vehicle_id=vehicle,
                                   public_key=base64.b64encode(raw).decode(),
                                   key_id=raw.hex()[:16], active=True, registered_at=now))
    engine.dispose()


def count_fixes(db_url: str) -> int:
    """Rows in telemetry_fixes."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(TelemetryFix)).scalar_one())
    engine.dispose()
    return n


def end_to_end(
    db_url: str,
    mqtt_url: str,
    workdir: Path,
    messages: list[Message],
    fixes: int,
    procs: int,
    profile: Path | None = None,
) -> tuple[float, float]:
    """Messages/s and fixes/s from the first publish to the last fix committed."""
    group = f"bench-{RUN}-{uuid.uuid4().hex[:4]}" if procs > 1 else ""
    gateways = [GatewayProcess(workdir, db_url, mqtt_url, group, profile) for _ in range(procs)]
    try:
        base = sum(gw.fixes_stored() for gw in gateways)
        total = len(messages) * fixes
        t0 = time.perf_counter()
        pub = _publisher_process(mqtt_url, messages)
        stored, last_progress = 0.0, time.monotonic()
        while stored - base < total:
            now_stored = sum(gw.fixes_stored() for gw in gateways)
            if now_stored > stored:
                stored, last_progress = now_stored, time.monotonic()
            elif time.monotonic() - last_progress > 30:
                raise RuntimeError(
                    f"stalled at {stored - base:,.0f} of {total:,} fixes for 30 s; gateway "
                    f"counters:\n{gateways[0].counters()}\nlog:\n{gateways[0].log_tail()}"
                )
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        pub.join(60)
        return len(messages) / elapsed, total / elapsed
    finally:
        for gw in gateways:
            gw.stop()


def soak(db_url: str, mqtt_url: str, workdir: Path, fleet: Fleet, minutes: float, rate: float,
         fixes: int) -> None:
    """Stream at ``rate`` messages/s through one gateway; print RSS every 10 s."""
    count = int(minutes * 60 * rate)
    print(f"soak: signing {count:,} messages of {fixes} fixes ...", flush=True)
    messages = fleet.messages(count, fixes)
    gw = GatewayProcess(workdir, db_url, mqtt_url, "")
    try:
        base = gw.fixes_stored()
        pub = _publisher_process(mqtt_url, messages, rate)
        t0 = time.monotonic()
        samples: list[tuple[float, float, int]] = []
        while True:
            stored = (gw.fixes_stored() - base) / fixes
            samples.append((time.monotonic() - t0, stored, gw.rss_kib()))
            elapsed, msgs, rss = samples[-1]
            print(f"  t={elapsed:6.0f}s  messages stored {msgs:>10,.0f}  RSS {rss / 1024:7.1f} MiB",
                  flush=True)
            if msgs >= count:
                break
            time.sleep(10)
        pub.join(60)
        (_, m0, r0), (_, m1, r1) = samples[1] if len(samples) > 2 else samples[0], samples[-1]
        growth = (r1 - r0) / 1024 / max(m1 - m0, 1) * 1e6
        print(f"soak: RSS {r0 / 1024:.1f} → {r1 / 1024:.1f} MiB over {m1 - m0:,.0f} messages"
              f" (after the first 10 s) = {growth:+.1f} MiB per million messages")
    finally:
        gw.stop()


def main() -> None:
    """Parse arguments, run every measurement, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mqtt-url", default="", help="a broker of yours (default: our own)")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--processes", default="1,2")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--single-messages", type=int, default=20_000, help="1-fix messages a run")
    ap.add_argument("--batch-messages", type=int, default=10_000, help="10-fix messages a run")
    ap.add_argument("--soak-minutes", type=float, default=0.0)
    ap.add_argument("--soak-rate", type=float, default=500.0, help="messages/s, 10 fixes each")
    ap.add_argument("--profile", type=Path, help="record each gateway with py-spy into DIR")
    args = ap.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="waste-bench-e2e-"))
    broker = None
    if not args.mqtt_url:
        (workdir / "broker").mkdir()
        broker = MosquittoProcess(workdir / "broker", settings=["max_queued_messages 100000"])
        broker.start()
        args.mqtt_url = broker.url
        print(f"broker: our own Mosquitto on {broker.url} (max_queued_messages 100000)")
    kinds = [k for k in args.databases.split(",") if k]
    procs = [int(p) for p in args.processes.split(",") if p]
    try:
        plans = [(f, n, p) for f, n in ((1, args.single_messages), (10, args.batch_messages))
                 for p in procs]
        fleets = {(k, f, p): Fleet.make(f"{k[0]}{f}x{p}", args.devices)
                  for k in kinds for f, _, p in plans}
        soak_fleet = Fleet.make("soak", args.devices)
        print(f"signing payloads ({len(fleets)} runs) ...", flush=True)
        streams = {key: fleets[key].messages(n, key[1]) for key in fleets
                   for f, n, p in plans if (f, p) == key[1:]}
        any_fleet = next(iter(fleets.values()))
        singles = any_fleet.messages(args.single_messages, 1)
        tens = any_fleet.messages(args.batch_messages, 10)
        print(f"{'limit':12s} paho subscriber, QoS 1, no work: 1-fix messages "
              f"{measure_limit(args.mqtt_url, singles):>9,.0f} msg/s", flush=True)
        print(f"{'limit':12s} paho subscriber, QoS 1, no work: 10-fix messages "
              f"{measure_limit(args.mqtt_url, tens):>8,.0f} msg/s", flush=True)
        print(f"{'limit':12s} decode() one core, 1-fix messages "
              f"{measure_decode(any_fleet, singles):>22,.0f} msg/s", flush=True)
        for kind in kinds:
            with database(kind, args.pg_url, workdir) as url:
                register(url, [f for (k, _, _), f in fleets.items() if k == kind] + [soak_fleet])
                expected = 0
                for f, _, p in plans:
                    msgs = streams[(kind, f, p)]
                    rate, fix_rate = end_to_end(
                        url, args.mqtt_url, workdir, msgs, f, p, args.profile
                    )
                    expected += len(msgs) * f
                    print(f"{kind:12s} {p} gateway{'s' if p > 1 else ' '} {f:2d} fix/msg "
                          f"{len(msgs):>7,} msgs: {rate:>8,.0f} msg/s = {fix_rate:>8,.0f} fixes/s",
                          flush=True)
                print(f"{kind:12s} rows in telemetry_fixes {count_fixes(url):,}"
                      f" (expected {expected:,})", flush=True)
                if args.soak_minutes > 0 and kind == kinds[-1]:
                    soak(url, args.mqtt_url, workdir, soak_fleet, args.soak_minutes,
                         args.soak_rate, 10)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
