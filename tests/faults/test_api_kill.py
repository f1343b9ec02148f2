"""The API process is SIGKILLed while several clients append custody events concurrently.

``waste serve`` (uvicorn) runs as a subprocess on this test's database and the
log key of the in-process app that built the registry; four client threads run
manifests through their lifecycle (file, pick up, receive, dispose) with the
signing client over HTTP. At a seeded moment the API is killed, then started
again, and every client appends once more.
"""

from __future__ import annotations

import copy
import random
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tests.conftest import ADMIN_TOKEN
from tests.support.faults import ServiceProcess, api_process, service_env, waste_command
from tests.support.manifests import receipt
from tests.support.reliability import Recorder
from tests.support.telemetry import wait_for
from tests.support.world import World, build_world
from waste.client import ClientError, PartyClient
from waste.config import Settings
from waste.db import make_session_factory
from waste.ledger.checkpoint import NoteSigner
from waste.ledger.keys import load_private_key
from waste.ledger.models import CustodyEvent, LogEntry
from waste.ledger.verify_log import verify_log
from waste.manifests.models import Manifest
from waste.uow import UnitOfWork

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

SEED = 20261104
CLIENTS = 4


@dataclass
class Appender:
    """One client thread: its parties' signing clients on its own HTTP connection."""

    index: int
    world: World
    base_url: str
    ok: list[tuple[str, int, str, int]] = field(default_factory=list)  # mid, seq, hash, leaf
    in_flight: tuple[str, int] | None = None  # the request the kill cut off
    error: BaseException | None = None
    manifest: str | None = None

    def clients(self) -> tuple[PartyClient, PartyClient, PartyClient]:
        """Producer, hauler and site, each a copy on a fresh connection to the API."""
        http = httpx.Client(base_url=self.base_url, timeout=10)
        parties = (self.world.producer, self.world.haulers[self.index].client, self.world.sites[0])
        out = []
        for party in parties:
            mine = copy.copy(party)
            mine.http = http
            out.append(mine)
        return out[0], out[1], out[2]

    def step(self, producer: PartyClient, hauler: PartyClient, site: PartyClient) -> None:
        """The next event of this client's current manifest (a new filing after disposal)."""
        w, i = self.world, self.index
        if self.manifest is None:
            mid = str(uuid.uuid4())
            self.in_flight = (mid, 0)
            data = w.filing(hauler=hauler.party_id, vehicle=w.haulers[i].plate)
            r = producer.file(data, manifest_id=mid)
            self.manifest = mid
            self.ok.append((self.manifest, 0, r["event_hash"], r["leaf_index"]))
            return
        seq, _ = producer.head(self.manifest)
        self.in_flight = (self.manifest, seq)
        if seq == 1:
            r = hauler.pick_up(self.manifest, w.pickup(hauler=i), cosigners=[producer.key])
        elif seq == 2:
            r = site.receive(self.manifest, receipt(w, hauler=i))
        else:
            r = site.dispose(self.manifest, {"operation": "D10", "mass_kg": 794.0})
        self.ok.append((self.manifest, r["seq"], r["event_hash"], r["leaf_index"]))
        if seq == 3:
            self.manifest = None

    def run(self, stop: threading.Event) -> None:
        """Append until the API dies (or ``stop``)."""
        producer, hauler, site = self.clients()
        try:
            while not stop.is_set():
                self.step(producer, hauler, site)
                self.in_flight = None
        except (httpx.TransportError, ClientError) as exc:
            if isinstance(exc, ClientError) and exc.status < 500:
                self.error = exc
        except BaseException as exc:
            self.error = exc


def _stored(engine: Engine) -> dict[tuple[str, int], tuple[str, int]]:
    with UnitOfWork(make_session_factory(engine)) as uow:
        rows = uow.session.execute(
            select(
                CustodyEvent.manifest_id,
                CustodyEvent.seq,
                CustodyEvent.event_hash,
                CustodyEvent.leaf_index,
            )
        )
        return {(m, s): (h, leaf) for m, s, h, leaf in rows}


def _projection_problems(engine: Engine) -> list[str]:
    """Manifests whose head (seq, hash) is not their chain's last event, or without events."""
    with UnitOfWork(make_session_factory(engine)) as uow:
        s = uow.session
        heads = {m.id: (m.head_seq, m.head_hash) for m in s.scalars(select(Manifest))}
        by_manifest = select(CustodyEvent.manifest_id, func.max(CustodyEvent.seq)).group_by(
            CustodyEvent.manifest_id
        )
        last: dict[str, int] = {str(m): int(q) for m, q in s.execute(by_manifest)}
        events = select(CustodyEvent.manifest_id, CustodyEvent.seq, CustodyEvent.event_hash)
        hashes = {(m, q): h for m, q, h in s.execute(events)}
        entries = s.scalar(
            select(func.count()).select_from(LogEntry).where(LogEntry.kind == "custody_event")
        )
    problems = [f"manifest {m} has no events" for m in heads if m not in last]
    problems += [f"events of unknown manifest {m}" for m in last if m not in heads]
    problems += [
        f"manifest {m}: head {heads[m]} but last event {last[m]}"
        for m in heads
        if m in last and heads[m] != (last[m], hashes[(m, last[m])])
    ]
    if entries != len(hashes):
        problems.append(f"{len(hashes)} custody events but {entries} custody log entries")
    return problems


def _run_clients(
    world: World, api: ServiceProcess, stop: threading.Event
) -> tuple[list[Appender], list[threading.Thread]]:
    appenders = [Appender(i, world, f"http://127.0.0.1:{api.port}") for i in range(CLIENTS)]
    threads = [threading.Thread(target=a.run, args=(stop,), daemon=True) for a in appenders]
    for thread in threads:
        thread.start()
    return appenders, threads


def test_api_killed_during_concurrent_appends_leaves_a_consistent_log(
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    reliability: Recorder,
) -> None:
    """Four clients append custody events concurrently through a `waste serve`
    subprocess, which is SIGKILLed at a seeded moment with requests in flight. Then
    `waste audit verify-log` (the CLI, as an auditor runs it) verifies the whole log:
    tree, checkpoints and every hash chain; every append that got a 2xx is stored
    with the event hash and leaf index the client was told; every manifest's head
    is its chain's last event and every custody event has its log entry (no event
    half written). The API started again accepts the next event of every chain, and
    the log verifies again."""
    rng = random.Random(SEED)
    world = build_world(client, admin_headers, haulers=CLIENTS, sites=1)
    db_url = engine.url.render_as_string(hide_password=False)
    log_key = settings.resolved_log_key_path
    api = api_process(
        tmp_path,
        database_url=db_url,
        admin_token=ADMIN_TOKEN,
        log_key=log_key,
        checkpoint_interval_s="0.5",
    )
    api.start()
    stop = threading.Event()
    try:
        appenders, threads = _run_clients(world, api, stop)
        kill_after = rng.randint(20, 40)
        wait_for(lambda: sum(len(a.ok) for a in appenders) >= kill_after, timeout=60)
        api.kill()
        for thread in threads:
            thread.join(30)
        acked = [ok for a in appenders for ok in a.ok]
        for a in appenders:
            assert a.error is None, a.error
        stored = _stored(engine)
        in_flight = [a.in_flight for a in appenders if a.in_flight is not None]
        cli = subprocess.run(
            [*waste_command(), "audit", "verify-log", "--log-key", str(log_key)],
            env=service_env(database_url=db_url, data_dir=str(tmp_path / "cli")),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        projection = _projection_problems(engine)

        api.start()  # back: every chain takes its next event
        after = []
        for a in appenders:
            producer, hauler, site = a.clients()
            a.step(producer, hauler, site)
            after.append(a.ok[-1])
        vkey = NoteSigner(settings.log_origin, load_private_key(log_key)).vkey()
        report = verify_log(engine, vkey, workers=1)
        projection_after = _projection_problems(engine)
    finally:
        stop.set()
        api.stop()
    missing = [ok for ok in acked if stored.get(ok[:2]) != ok[2:]]
    committed = [f for f in in_flight if f in stored]
    reliability(
        appends_acknowledged_before_kill=len(acked),
        acknowledged_but_missing=len(missing),
        requests_cut_off_by_kill=len(in_flight),
        cut_off_but_committed=len(committed),
        events_stored=len(stored),
        verify_log_cli=cli.stdout.strip().split(";")[0][:120],
        verify_log_exit=cli.returncode,
        half_written=len(projection),
        appends_after_restart=len(after),
        log_size_after=report.size,
        seed=SEED,
    )
    assert not missing, missing[:5]
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.startswith("VERIFIED"), cli.stdout
    assert not projection, projection
    assert report.ok, report.render()
    assert not projection_after, projection_after
    assert len(after) == CLIENTS
