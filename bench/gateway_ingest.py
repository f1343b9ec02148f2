"""Gateway storage throughput: prints fixes/s of ``store_batch``, asserts nothing.

    python bench/gateway_ingest.py                     # a temporary SQLite file
    WASTE_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python bench/gateway_ingest.py                 # a scratch database on that server

100 devices send 20 messages of 50 fixes each (100,000 fixes), stored in batches of
1,000 fixes, one transaction each, as the ingest loop does; then the same batches
again (all duplicates), and decoding (signature checks) alone for comparison.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devices.signing import encode_telemetry, public_key_bytes
from gateway.payloads import DeviceKey, Fix, TelemetryMessage, decode
from gateway.topics import telemetry_topic
from waste.clock import utcnow
from waste.db import make_engine, make_session_factory
from waste.migrate import upgrade
from waste.telemetry.domain import Received
from waste.telemetry.service import store_batch
from waste.uow import UnitOfWork

DEVICES, MESSAGES, FIXES = 100, 20, 50


def _database() -> tuple[str, object]:
    url = os.environ.get("WASTE_BENCH_DATABASE_URL")
    if not url:
        path = os.path.join(tempfile.mkdtemp(), "bench.db")
        return f"sqlite:///{path}", lambda: os.unlink(path)
    name = f"waste_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))

    return make_url(url).set(database=name).render_as_string(False), drop


def main() -> None:
    url, drop = _database()
    engine = make_engine(url)
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        now = utcnow()
        keys = {f"DEV-{i:04d}": Ed25519PrivateKey.generate() for i in range(DEVICES)}
        registry = {d: DeviceKey(d, public_key_bytes(k), f"浙G{d[-4:]}") for d, k in keys.items()}
        raw = []
        for seq in range(MESSAGES):
            for device_id, key in keys.items():
                start = now - timedelta(hours=2) + timedelta(seconds=seq * FIXES)
                fixes = [
                    Fix(start + timedelta(seconds=i), 29.3 + i * 1e-4, 120.07, 40.0, 90.0, 0.8)
                    for i in range(FIXES)
                ]
                payload = encode_telemetry(device_id, seq, fixes, key)
                raw.append((telemetry_topic(device_id), payload))
        t0 = time.perf_counter()
        decoded = [decode(t, p, lookup_device=registry.get, now=now) for t, p in raw]
        decode_s = time.perf_counter() - t0
        received = [Received(m, now, "", b"") for m in decoded if isinstance(m, TelemetryMessage)]
        per_batch = 1000 // FIXES
        batches = [received[i : i + per_batch] for i in range(0, len(received), per_batch)]
        total = DEVICES * MESSAGES * FIXES
        for label in ("new", "duplicates"):
            t0 = time.perf_counter()
            for batch in batches:
                with UnitOfWork(factory) as uow:
                    store_batch(uow=uow, received=batch, now=now)
            elapsed = time.perf_counter() - t0
            per_batch_ms = elapsed / len(batches) * 1000
            print(
                f"{engine.dialect.name:10s} store {label:10s} {total:>7,} fixes in {elapsed:6.2f}s"
                f" = {total / elapsed:>9,.0f} fixes/s ({per_batch_ms:.1f} ms/batch)"
            )
        print(f"{'':10s} decode+verify {len(raw):,} messages = {total / decode_s:>9,.0f} fixes/s")
    finally:
        engine.dispose()
        drop()  # type: ignore[operator]


if __name__ == "__main__":
    main()
