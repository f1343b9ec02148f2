"""``run_demo``: one day of the simulated county, from an empty directory to a verified audit.

1. Prepare the data directory (fresh, or continue: the same county, another day).
2. Plan the day: a labelled corpus (``devices.scenarios``) ending a minute ago.
3. Start the stack (API, gateway with alert detection, alert feed).
4. Register the county through the API as the operator and hauliers would, and write
   the tokens file (0600).
5. Play the day through real device clients at ``speed`` (``devices.fleet.Fleet``):
   fixes and e-lock events over MQTT, custody steps signed by the parties' keys and
   posted over HTTP (``waste.client.PartyClient``) as the simulated clock reaches them.
6. Settle (everything stored and judged, a last sweep), then score the day's alerts
   against the planted truth and verify every manifest's audit bundle offline.
7. With ``stay``, keep serving until Ctrl-C or ``stop``.

Ctrl-C (``KeyboardInterrupt`` on the calling thread) or ``stop`` ends the day early:
the fleet stops, then the stack closes (threads joined, broker child terminated,
database engine disposed) and the summary says the day was cut short.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from devices.fleet import FleetReport
from devices.registrar import RegistrationError
from waste.clock import utcnow
from waste.config import Settings
from waste.demo.audit import audit_manifests, log_vkey
from waste.demo.board import TripBoard
from waste.demo.datadir import DataDirError, DemoState, prepare, save_state, write_tokens
from waste.demo.display import Display, QuietDisplay, StartInfo, Status
from waste.demo.options import DemoOptions, Restart
from waste.demo.pace import PacedFleet, watermark
from waste.demo.plan import Day, party_names, plan_day, register_day
from waste.demo.scoring import score
from waste.demo.stack import DemoStack, SweepClock
from waste.demo.summary import DemoSummary

__all__ = ["DemoError", "fetch_alerts", "run_demo"]


class DemoError(RuntimeError):
    """The demo could not run (the message says why)."""


def fetch_alerts(http: Any, token: str) -> list[dict[str, Any]]:
    """Every alert ``token``'s holder may see, through ``GET /v1/alerts`` page by page."""
    headers = {"Authorization": f"Bearer {token}"}
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, "sort": "raised_at"}
        if cursor:
            params["cursor"] = cursor
        resp = http.get("/v1/alerts", params=params, headers=headers)
        if resp.status_code != 200:
            raise DemoError(f"listing alerts: HTTP {resp.status_code} {resp.text[:300]}")
        page = resp.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def _settings_for(settings: Settings, options: DemoOptions) -> tuple[Settings, str]:
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    admin = admin or secrets.token_urlsafe(32)
    changed = settings.model_copy(
        update={"admin_token": SecretStr(admin), "host": options.host, "port": options.port}
    )
    return changed, admin


def _play(
    fleet: PacedFleet,
    board: TripBoard,
    stack: DemoStack,
    display: Display,
    stop: threading.Event,
) -> tuple[FleetReport, bool]:
    """Run the fleet on a thread, ticking the display; (report, stopped early)."""
    result: list[FleetReport] = []
    runner = threading.Thread(
        target=lambda: result.append(fleet.run(drain_timeout=60)), name="demo-fleet", daemon=True
    )
    runner.start()
    stopped = False
    try:
        while runner.is_alive():
            if stop.is_set():
                stopped = True
                fleet.stop()
            display.tick(_status(fleet, board, stack))
            runner.join(0.25)
    except KeyboardInterrupt:
        stopped = True
        fleet.stop()
        runner.join(30)
    return (result[0] if result else fleet.report), stopped or not result


def _status(fleet: PacedFleet, board: TripBoard, stack: DemoStack) -> Status:
    report = fleet.report
    return Status(
        sim_now=fleet.position,
        trips=board.counts(),
        records_sent=sum(report.records.values()),
        records_stored=stack.stored_records(),
        custody_posted=report.custody_posted,
        custody_refused=len(report.custody_failed),
    )


def _settle(stack: DemoStack, sent: int, timeout: float, stop: threading.Event) -> None:
    """Wait until every record sent was stored and judged, then sweep once more."""
    deadline = time.monotonic() + timeout
    while stack.judged_records() < sent and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.1)
    stack.sweep_now()
    time.sleep(0.5)  # the worker publishes what the sweep raised


def _score_and_audit(
    http: httpx.Client, day: Day, board: TripBoard, settings: Settings, summary: DemoSummary
) -> None:
    registry = day.registry
    assert registry is not None
    regulator = registry.tokens["regulator"]
    alerts = fetch_alerts(http, regulator)
    ids = {p.key: registry.manifest_id(p.key) for s in day.corpus.scenarios for p in s.manifests}
    summary.score = score(day.corpus, ids, alerts)
    filed = [registry.manifests[k] for k in sorted(board.numbers)]
    vkey = log_vkey(settings.resolved_log_key_path, settings.log_origin)
    summary.audit = audit_manifests(http, regulator, filed, vkey)


def _wait_for_stop(stop: threading.Event) -> None:
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        return


def run_demo(
    settings: Settings,
    options: DemoOptions,
    *,
    display: Display | None = None,
    ask: Callable[[], Restart] | None = None,
    stop: threading.Event | None = None,
) -> DemoSummary:
    """Run one demo day (see the module docstring); its summary.

    ``settings``: the database (default SQLite in ``data_dir``), broker (default
    embedded) and data directory; host and port come from ``options``. ``ask`` chooses
    fresh or continue when the directory holds a demo and ``options.restart`` is ASK.
    Raises ``DemoError`` (or ``ValueError`` for bad options) when it cannot run."""
    options.check()
    stop = stop or threading.Event()
    display = display or QuietDisplay()
    try:
        previous = prepare(
            settings.data_dir, options.restart, own_database=not settings.database_url, ask=ask
        )
    except DataDirError as exc:
        raise DemoError(str(exc)) from exc
    state = previous or DemoState.new(
        seed=options.seed,
        lat=options.lat,
        lon=options.lon,
        region_code=options.region_code,
        name=options.place_name,
    )
    display.phase("planning the day")
    day = plan_day(state, options, state.days + 1)
    corpus = day.corpus
    span_s = (corpus.end - corpus.start).total_seconds()
    speed = options.speed_for(span_s)
    served, admin = _settings_for(settings, options)
    clock = SweepClock(corpus.start - timedelta(minutes=1))
    stack = DemoStack(served, name=f"demo-{state.tag}", sweep_clock=clock, on_alert=display.alert)
    manifested = sum(1 for s in corpus.scenarios if s.manifests)
    summary = DemoSummary(day.number, corpus.county.name, manifested, speed, span_s)
    summary.movements = len(corpus.scenarios) - manifested
    began = time.monotonic()
    try:
        display.phase("starting the API and the gateway")
        stack.start()
        with httpx.Client(base_url=stack.base_url, timeout=60) as http:
            display.phase("registering the county")
            try:
                registry = register_day(http, admin, state, day)
            except (RegistrationError, httpx.HTTPError) as exc:
                raise DemoError(f"could not register the county: {exc}") from exc
            save_state(served.data_dir, state)
            tokens = write_tokens(served.data_dir, state, party_names(corpus.county))
            summary.api_url = f"{stack.base_url}/docs"
            summary.console_url = f"{stack.base_url}/console/login"
            summary.tokens_file = str(tokens)
            display.started(
                StartInfo(
                    corpus.county.name,
                    day.number,
                    len(corpus.scenarios),
                    corpus.counts(),
                    speed,
                    corpus.start,
                    corpus.end,
                    summary.api_url,
                    summary.console_url,
                    summary.tokens_file,
                    stack.device_broker.redacted(),
                )
            )
            board = TripBoard(corpus, registry)
            fleet = PacedFleet(
                corpus.scenarios,
                corpus.county,
                served.data_dir / "devices" / f"day-{day.number}",
                speed=speed,
                broker=stack.device_broker,
                post_custody=board.post,
            )
            clock.follow(watermark(fleet.progress, stack.judged_records), timedelta(0))
            display.phase("driving")
            report, stopped = _play(fleet, board, stack, display, stop)
            summary.stopped_early = stopped
            summary.records_sent = sum(report.records.values())
            summary.custody_posted = report.custody_posted
            summary.custody_refused = list(report.custody_failed)
            summary.undelivered = dict(report.undelivered)
            summary.manifests_filed = board.filed
            summary.trips_completed = board.completed()
            if not summary.stopped_early:
                display.phase("settling: the gateway stores and judges what is left")
                _settle(stack, summary.records_sent, options.settle_timeout_s, stop)
                clock.follow(utcnow, timedelta(0))  # the day is over: the wall clock
                summary.records_stored = stack.stored_records()
                display.phase("scoring alerts and verifying every audit bundle")
                _score_and_audit(http, day, board, served, summary)
            summary.wall_s = time.monotonic() - began
            display.finished(summary)
            if options.stay and not summary.stopped_early:
                display.phase(f"serving {stack.base_url} until Ctrl-C")
                _wait_for_stop(stop)
    except KeyboardInterrupt:
        summary.stopped_early = True
    finally:
        display.close()
        stack.close()
    summary.wall_s = summary.wall_s or time.monotonic() - began
    return summary
