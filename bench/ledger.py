"""Ledger figures on this machine: raw crypto limits, signed appends over HTTP, verify-log, proofs.

    python bench/ledger.py                        # verify-log over 1,000,000 events (~10 min)
    python bench/ledger.py --events 100000        # a quicker run
    python bench/ledger.py --skip-log             # appends only (~5 min)

Prints figures, asserts nothing. Needs a local PostgreSQL (``--pg``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); creates its own
databases and drops them. Servers are real ``waste serve`` (uvicorn) processes
listening on 127.0.0.1 (several workers: uvicorn's ``--workers`` over the same
app); clients are threads with httpx. Each append figure also shows the CPU an
append cost (API processes, this database's PostgreSQL backends, clients) and,
in-process, how long the log's append lock was held (``bench/ledger_probe.py``).

- raw limits, one core: Ed25519 verifications/s and SHA-256 hashes/s (``cryptography``,
  ``hashlib``), and Ed25519 verifications/s of two processes;
- appends: pre-signed lifecycles (filed, picked up, received, disposed) posted by 1, 8
  and 32 concurrent clients, each client one manifest at a time, to one API process and
  to two (``--workers``); and the same envelopes through the use cases in-process
  (threads, no HTTP and no token check), to separate the HTTP stack's cost from the
  append's. Every figure is real: signatures verified, one committed transaction per
  event, on PostgreSQL with its default (durable) commit;
- verify-log over N generated events (``bench/ledger_data.py``), against the time the
  signature checks alone take at the raw rates, on one core and on two;
- inclusion proofs at size N: requests/s and latency percentiles, 1 and 8 clients.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import ledger_data  # noqa: E402
import ledger_http  # noqa: E402
import ledger_probe  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from waste.db import make_engine  # noqa: E402
from waste.ledger.checkpoint import NoteSigner  # noqa: E402
from waste.ledger.keys import generate_private_key, save_private_key  # noqa: E402
from waste.ledger.models import Checkpoint  # noqa: E402
from waste.ledger.store import LogStore  # noqa: E402
from waste.migrate import upgrade  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def verifications(seconds: float) -> int:
    """Ed25519 verifications of a 600-byte message done in ``seconds`` on this core."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public, message = key.public_key(), bytes(600)
    signature = key.sign(message)
    done, until = 0, time.perf_counter() + seconds
    while time.perf_counter() < until:
        for _ in range(100):
            public.verify(signature, message)
        done += 100
    return done


def hashes(size: int, seconds: float) -> float:
    """SHA-256 hashes/s of ``size``-byte inputs on this core."""
    data, done = bytes(size), 0
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        for _ in range(1000):
            hashlib.sha256(data).digest()
        done += 1000
    return done / seconds


def raw_limits(seconds: float) -> tuple[float, float]:
    """Print the raw limits; return (verifications/s on one core, on two processes)."""
    one = verifications(seconds) / seconds
    with ProcessPoolExecutor(2) as pool:
        two = sum(pool.map(verifications, [seconds, seconds])) / seconds
    print("raw limits (cryptography, one core unless said)")
    print(f"  Ed25519 verify            {one:>10,.0f} /s   two processes {two:,.0f} /s")
    print(f"  SHA-256, 1 KiB (a leaf)   {hashes(1025, seconds):>10,.0f} /s")
    print(f"  SHA-256, 65 B (a node)    {hashes(65, seconds):>10,.0f} /s")
    return one, two


CLIENTS = (1, 8, 32)


def appends(pg: str, per_level: int, one_core: float, workers: int) -> None:
    """Signed events appended over HTTP by 1, 8 and 32 clients."""
    print(f"\nappends through the HTTP API on PostgreSQL ({workers} uvicorn process(es))")
    with (
        ledger_http.fresh_database(pg, "http") as url,
        tempfile.TemporaryDirectory() as tmp,
        ledger_http.server(url, Path(tmp), workers) as api,
    ):
        world, http = ledger_http.connect_world(api.base, haulers=8)
        for clients in CLIENTS:
            chains = ledger_http.signed_chains(world, max(clients, per_level // 4))
            work = ledger_http.post_chains(chains, clients)
            with ledger_probe.cpu_used(url, lambda: ledger_http.tree_pids(api.pid), False) as cpu:
                load = ledger_http.run_clients(api.base, clients, work)
            _print_appends(clients, load, one_core)
            print(f"      {cpu.per_append_ms(len(load.latencies))}")
        http.close()


def service_appends(pg: str, per_level: int, one_core: float) -> None:
    """The same signed events through the use cases in this process: threads, no HTTP."""
    from fastapi.testclient import TestClient

    from tests.support.world import build_world
    from waste.api import create_app
    from waste.auth.service import authenticate
    from waste.config import Settings
    from waste.uow import UnitOfWork

    print("\nappends through the use cases on PostgreSQL (in-process threads, no HTTP)")
    with ledger_http.fresh_database(pg, "svc") as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), database_url=url, admin_token=ledger_http.ADMIN_TOKEN
        )
        app = create_app(settings)
        admin = {"Authorization": f"Bearer {ledger_http.ADMIN_TOKEN}"}
        with TestClient(app) as http:
            world = build_world(http, admin, haulers=8, sites=1)
            factory = app.state.session_factory
            timer = ledger_probe.LockTimer()
            timer.attach(app.state.engine, factory)
            for clients in CLIENTS:
                chains = ledger_http.signed_chains(world, max(clients, per_level // 4))
                principals = {}
                with UnitOfWork(factory) as uow:
                    for token in {token for chain in chains for _, token, _ in chain}:
                        bearer = token.removeprefix("Bearer ")
                        principals[token] = authenticate(uow=uow, bearer=bearer, admin_token=None)
                work = ledger_http.service_chains(factory, principals, chains, clients)
                timer.reset()
                with ledger_probe.cpu_used(url, lambda: [os.getpid()], True) as cpu:
                    load = ledger_http.run_threads(clients, work)
                _print_appends(clients, load, one_core)
                print(f"      {cpu.per_append_ms(len(load.latencies))}")
                print(f"      {timer.summary(load.seconds)}")


def _print_appends(clients: int, load: ledger_http.Load, one_core: float) -> None:
    sigs_per_s = load.rate * 1.25  # 5 signatures per 4 events
    failed = f"failed {load.failures}"
    if load.failures:
        failed += f", e.g. {load.sample_error}"
    print(
        f"  {clients:>2} clients: {load.rate:7.1f} appends/s "
        f"(= {sigs_per_s / one_core:.3f} of one core's Ed25519 rate)  "
        f"p50 {load.percentile(50):6.1f} ms  p99 {load.percentile(99):7.1f} ms  {failed}"
    )


def log_figures(pg: str, events: int, one_core: float, two_procs: float, proof_s: float) -> None:
    """Generate a log of ``events`` events, verify it, then serve inclusion proofs from it."""
    with ledger_http.fresh_database(pg, "log") as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)
        upgrade(engine)
        private = generate_private_key()
        save_private_key(private, Path(tmp) / "log-key.pem")
        signer = NoteSigner("waste-custody.local/log", private)
        began = time.perf_counter()
        size = ledger_data.generate(url, engine, signer, events)
        print(f"\ngenerated {size:,} events in {time.perf_counter() - began:.0f} s")
        with Session(engine) as session:  # the stored nodes give the signed root
            checkpoint = session.get(Checkpoint, size)
            assert checkpoint is not None
            assert LogStore(session).root(size) == checkpoint.root_hash

        command = [sys.executable, "-c", "from waste.cli import main; main()"]
        command += ["audit", "verify-log", "--log-key", signer.vkey(), "--workers", "2"]
        env = {**os.environ, "WASTE_DATABASE_URL": url, "WASTE_DATA_DIR": tmp}
        took, peak_kib, output = ledger_http.run_measured(command, env)
        found = re.search(r"(\d+) events, (\d+) signatures", output)
        if not output.startswith("VERIFIED") or found is None:
            print(f"verify-log did not verify:\n{output[:2000]}")
            return
        events, signatures = int(found[1]), int(found[2])
        one, two = signatures / one_core, signatures / two_procs
        print(f"verify-log: `waste audit verify-log --workers 2`: {output.splitlines()[0][:80]}…")
        print(
            f"  {took:.1f} s for {events:,} events, {signatures:,} signatures: "
            f"{events / took:,.0f} events/s; peak memory of its processes together: "
            f"{peak_kib / 1024:,.0f} MiB"
        )
        print(
            f"  signature checks alone: {one:.1f} s on one core, {two:.1f} s on two → "
            f"verify-log takes {took / one:.2f}× the one-core and {took / two:.2f}× "
            f"the two-core signature time"
        )
        engine.dispose()

        print(f"\ninclusion proofs at size {size:,}")
        with ledger_http.server(url, Path(tmp)) as api:
            for clients in (1, 8):
                load = ledger_http.run_clients(
                    api.base, clients, ledger_http.fetch_proofs(size, proof_s)
                )
                print(
                    f"  {clients} clients: {load.rate:7.1f} proofs/s  "
                    f"p50 {load.percentile(50):6.1f} ms  p99 {load.percentile(99):6.1f} ms  "
                    f"failed {load.failures}"
                )


def main() -> None:
    """Run every figure in turn."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events for verify-log")
    parser.add_argument("--appends", type=int, default=1200, help="appends per client level")
    parser.add_argument("--proof-seconds", type=float, default=10.0)
    parser.add_argument("--pg", default=os.environ.get("WASTE_BENCH_PG_URL", PG))
    parser.add_argument(
        "--workers", default="1,2", help="API processes to measure appends with, e.g. 1,2"
    )
    parser.add_argument("--skip-appends", action="store_true")
    parser.add_argument("--skip-service", action="store_true", help="no in-process appends")
    parser.add_argument("--skip-log", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    one_core, two_procs = raw_limits(2.0)
    if not args.skip_appends:
        for workers in (int(w) for w in args.workers.split(",")):
            appends(args.pg, args.appends, one_core, workers)
        if not args.skip_service:
            service_appends(args.pg, args.appends, one_core)
    if not args.skip_log:
        log_figures(args.pg, args.events, one_core, two_procs, args.proof_seconds)


if __name__ == "__main__":
    main()
