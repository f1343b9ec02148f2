"""Real API servers on 127.0.0.1, and load against them or the use cases (for bench/ledger.py).

Servers are ``waste serve --workers N`` (N uvicorn worker processes over
``waste.api.app_from_env``; the parent migrates and makes the log key once), as a
deployment would run it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.support.world import World
from waste.auth.tokens import Principal
from waste.clock import utcnow
from waste.errors import WasteError
from waste.ledger.canonical import loads_strict
from waste.ledger.envelope import GENESIS_PREV_HASH, event_hash, make_body, sign_body
from waste.manifests import service
from waste.uow import UnitOfWork

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef-0123456789"


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(admin_url: str, tag: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"waste_bench_{tag}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Server:
    """A running API: its base URL and the pid of its (parent) process."""

    base: str
    pid: int


@contextmanager
def server(database_url: str, data_dir: Path, workers: int = 1) -> Iterator[Server]:
    """The API on a free loopback port in ``workers`` processes."""
    port = free_port()
    env = {
        **os.environ,
        "WASTE_DATABASE_URL": database_url,
        "WASTE_DATA_DIR": str(data_dir),
        "WASTE_ADMIN_TOKEN": ADMIN_TOKEN,
        "WASTE_HOST": "127.0.0.1",
        "WASTE_PORT": str(port),
        "WASTE_AUTO_MIGRATE": "true",
    }
    command = [sys.executable, "-c", "from waste.cli import main; main()", "serve"]
    command += ["--workers", str(workers)]
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited; see {data_dir / 'server.log'}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 120 s")
            time.sleep(0.2)
        yield Server(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Load:
    """Latencies (s) of the requests that succeeded, failures, and the wall time."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0
    sample_error: str = ""

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run_clients(base: str, clients: int, work: Callable[[httpx.Client, int, Load], None]) -> Load:
    """Run ``work(http, client_number, load)`` in ``clients`` threads, each its own connection."""

    def client(n: int, load: Load, start: threading.Barrier) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            http.get("/healthz")
            start.wait()
            work(http, n, load)

    return run_threads(clients, client)


def run_threads(clients: int, client: Callable[[int, Load, threading.Barrier], None]) -> Load:
    """Run ``client(n, load, start)`` in ``clients`` threads; time from the common start."""
    load = Load()
    start = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=client, args=(n, load, start)) for n in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - began
    return load


def signed_chains(world: World, manifests: int) -> list[list[tuple[str, str, bytes]]]:
    """Pre-signed lifecycles (filed, picked up, received, disposed): (path, token, JSON body)."""
    import json

    chains = []
    producer, site = world.producer, world.sites[0]
    for m in range(manifests):
        hauler = world.haulers[m % len(world.haulers)]
        mid = str(uuid.uuid4())
        small = [{**world.filing()["wastes"][0], "mass_kg": 10}]
        steps = [
            (
                producer,
                world.filing(wastes=small, hauler=hauler.client.party_id, vehicle=hauler.plate),
                "filed",
                [producer.key],
            ),
            (
                hauler.client,
                {**world.pickup(m % len(world.haulers)), "mass_kg": 9.9},
                "picked_up",
                [hauler.client.key, producer.key],
            ),
            (
                site,
                {
                    "mass_kg": 9.9,
                    "accepted_kg": 9.9,
                    "refused_kg": 0,
                    "seal_id": f"SEAL-{hauler.device_id}",
                    "seal_intact": True,
                },
                "received",
                [site.key],
            ),
            (site, {"operation": "D10", "mass_kg": 9.9}, "disposed", [site.key]),
        ]
        prev, at, chain = GENESIS_PREV_HASH, utcnow(), []
        for seq, (party, data, kind, keys) in enumerate(steps):
            body = make_body(
                manifest_id=mid,
                seq=seq,
                prev_hash=prev,
                type=kind,
                actor=party.party_id,
                at=at + timedelta(milliseconds=seq),
                data=data,
            )
            path = "/v1/manifests" if seq == 0 else f"/v1/manifests/{mid}/events"
            token = party._headers["Authorization"]
            chain.append((path, token, json.dumps(sign_body(body, keys)).encode()))
            prev = event_hash(body)
        chains.append(chain)
    return chains


def post_chains(
    chains: list[list[tuple[str, str, bytes]]], clients: int
) -> Callable[[httpx.Client, int, Load], None]:
    """Work for ``run_clients``: client n posts every chain i with i % clients == n, in order."""

    def work(http: httpx.Client, n: int, load: Load) -> None:
        for chain in chains[n::clients]:
            for path, token, body in chain:
                headers = {"Authorization": token, "Content-Type": "application/json"}
                began = time.perf_counter()
                resp = http.post(path, content=body, headers=headers)
                if resp.status_code == 201:
                    load.latencies.append(time.perf_counter() - began)
                else:
                    load.failures += 1
                    load.sample_error = load.sample_error or f"{resp.status_code} {resp.text[:200]}"
                    break

    return work


def service_chains(
    factory: sessionmaker[Session],
    principals: dict[str, Principal],
    chains: list[list[tuple[str, str, bytes]]],
    clients: int,
) -> Callable[[int, Load, threading.Barrier], None]:
    """Work for ``run_threads``: like ``post_chains``, through the use cases (no HTTP, no auth).

    Each envelope is parsed from its JSON bytes and signature-checked by the use
    case, in its own unit of work that commits, exactly as the route does.
    """

    def work(n: int, load: Load, start: threading.Barrier) -> None:
        start.wait()
        for chain in chains[n::clients]:
            for path, token, body in chain:
                began = time.perf_counter()
                try:
                    envelope = loads_strict(body)
                    with UnitOfWork(factory) as uow:
                        if path == "/v1/manifests":
                            service.file_manifest(
                                uow=uow, principal=principals[token], envelope=envelope
                            )
                        else:
                            mid = path.split("/")[3]
                            service.append_event(
                                uow=uow,
                                principal=principals[token],
                                manifest_id=mid,
                                envelope=envelope,
                            )
                except WasteError as exc:
                    load.failures += 1
                    load.sample_error = load.sample_error or f"{exc.status} {exc.detail}"
                    break
                except Exception as exc:  # what the API would answer with a 500
                    load.failures += 1
                    load.sample_error = load.sample_error or f"500 {exc!r}"[:200]
                    break
                load.latencies.append(time.perf_counter() - began)

    return work


def fetch_proofs(size: int, seconds: float) -> Callable[[httpx.Client, int, Load], None]:
    """Work for ``run_clients``: random inclusion proofs in the tree of ``size`` for ``seconds``."""
    import random

    def work(http: httpx.Client, n: int, load: Load) -> None:
        rng = random.Random(n)
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            index = rng.randrange(size)
            began = time.perf_counter()
            resp = http.get("/v1/log/proof/inclusion", params={"index": index, "size": size})
            if resp.status_code == 200:
                load.latencies.append(time.perf_counter() - began)
            else:
                load.failures += 1
                load.sample_error = load.sample_error or f"{resp.status_code} {resp.text[:200]}"

    return work


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def tree_rss_kib(pid: int) -> int:
    """Resident memory (KiB) of a process and all its descendants, from /proc."""
    total = 0
    for current in tree_pids(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command; return (wall seconds, peak KiB of its process tree, its output)."""
    began = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kib(proc.pid))
        time.sleep(0.25)
    output = proc.stdout.read().decode() if proc.stdout else ""
    return time.perf_counter() - began, peak, output


def connect_world(base: str, haulers: int) -> tuple[World, Any]:
    """Register a producer, haulers, a licensed site and a regulator through the API."""
    from tests.support.world import build_world

    http = httpx.Client(base_url=base, timeout=60)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    world = build_world(http, admin, haulers=haulers, sites=1)  # type: ignore[arg-type]
    return world, http
