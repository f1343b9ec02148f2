"""The console in a real browser: Playwright drives Debian's Chromium against a running server.

A uvicorn server in a thread serves one seeded database for this module (a manifest
picked up, its track through the real ingest path with an excursion and the seal
opened off the route, alerts about it). Each test gets a fresh browser context, and
every request leaving 127.0.0.1 (the OpenStreetMap tiles) is aborted, so the maps are
checked to draw their vector layers with no tiles at all. Screenshots of the main
pages, at desktop and phone width, go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN
from tests.support.console import Trip, seed_trip
from tests.support.databases import DatabaseFactory, fresh_engine
from tests.support.world import World, build_world
from waste.api import create_app
from waste.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's Chromium is not installed at /usr/bin/chromium (.ci/run installs it)",
)


@dataclass
class Site:
    """The running server, its seeded data and tokens."""

    base: str
    world: World
    trip: Trip
    regulator_token: str


@pytest.fixture(scope="module")
def site(db_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live server on a free port with a seeded world."""
    import uvicorn

    with fresh_engine(db_factory) as engine:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("console-e2e"),
            database_url=engine.url.render_as_string(hide_password=False),
            admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
            auto_migrate=False,
            checkpoint_interval_s=0.5,
        )
        app = create_app(settings, engine=engine)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the console server did not start")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            http = TestClient(app)  # in-process calls on the running app, for seeding only
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            world = build_world(http, admin, haulers=1, sites=1)
            trip = seed_trip(world, engine)
            yield Site(f"http://127.0.0.1:{port}", world, trip, world.regulator.token)
        finally:
            server.should_exit = True
            thread.join(timeout=15)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole test session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _context(browser: Any, site: Site, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, base_url=site.base)
    context.set_default_timeout(15_000)

    def offline(route: Any) -> None:
        if route.request.url.startswith(site.base):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", offline)
    return context


@pytest.fixture
def desktop(browser: Any, site: Site) -> Iterator[Any]:
    """A signed-in regulator's page at desktop width."""
    context = _context(browser, site, DESKTOP)
    page = context.new_page()
    _sign_in(page, site.regulator_token)
    yield page
    context.close()


def _sign_in(page: Any, token: str) -> None:
    page.goto("/console/login")
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url("**/console/dashboard")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _map_shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#map").screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _map_drawn(page: Any) -> dict[str, int]:
    """How many SVG paths of each layer the map drew in view."""
    page.wait_for_selector("#map[data-ready='1']")
    counts = {}
    for layer in ("route", "corridor", "track", "seal", "stop", "site", "zone"):
        # paths Leaflet really drew in view (those clipped out of it are "M0 0")
        counts[layer] = page.eval_on_selector_all(
            f"#map path.wc-{layer}",
            "paths => paths.filter(p => (p.getAttribute('d') || '').length > 10).length",
        )
    return counts


def test_sign_in_and_see_the_dashboard(desktop: Any, site: Site) -> None:
    page = desktop
    assert page.locator("#manifests-by-state .n").first.is_visible()
    assert page.locator("#alerts-chart svg rect.bar").count() >= 1
    assert page.locator("#log-size").inner_text().isdigit()
    _shot(page, "dashboard-desktop")


def test_a_wrong_token_is_refused_in_the_browser(browser: Any, site: Site) -> None:
    context = _context(browser, site, DESKTOP)
    page = context.new_page()
    page.goto("/console/alerts")  # sends to the sign-in page, remembering the queue
    page.wait_for_url("**/console/login?next=*")
    page.fill("#token", "wst_0123456789abcdef_" + "x" * 43)
    page.click("#sign-in")
    assert "not accepted" in page.locator(".error").inner_text()
    page.fill("#token", site.regulator_token)
    page.click("#sign-in")
    page.wait_for_url("**/console/alerts")
    context.close()


def test_filter_the_alert_queue(desktop: Any, site: Site) -> None:
    page = desktop
    page.goto("/console/alerts")
    assert page.locator("#alert-queue tbody tr[data-alert]").count() == len(site.trip.alerts)
    page.select_option("#f-kind", "route_deviation")
    page.click("#apply-filters")
    page.wait_for_url("**/console/alerts?kind=route_deviation*")
    rows = page.locator("#alert-queue tbody tr[data-alert]")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-kind") == "route_deviation"
    page.select_option("#f-kind", "")
    page.select_option("#f-severity", "critical")
    page.click("#apply-filters")
    page.wait_for_url("**severity=critical*")
    assert page.locator("#alert-queue tbody tr[data-alert]").first.get_attribute(
        "data-severity"
    ) == "critical"
    _shot(page, "alerts-desktop")


def test_open_an_alert_and_see_route_and_track_on_the_map(desktop: Any, site: Site) -> None:
    page = desktop
    page.goto("/console/alerts?kind=route_deviation")
    page.click("#alert-queue tbody tr[data-alert] a")
    page.wait_for_url(f"**/console/alerts/{site.trip.alerts['route_deviation']}")
    drawn = _map_drawn(page)
    assert drawn["route"] >= 1
    assert drawn["corridor"] >= 1
    assert drawn["track"] >= 2
    assert drawn["seal"] >= 1
    assert drawn["stop"] >= 1
    assert drawn["zone"] >= 1
    assert page.locator("#map path.wc-excursion").count() == 1
    assert page.locator("#map path.wc-alert").count() == 1
    assert page.locator("#map img.leaflet-tile-loaded").count() == 0  # no tiles: offline
    _map_shot(page, "alert-map-by-speed")
    before = page.locator("#map path.wc-track").first.get_attribute("stroke")
    page.select_option("#track-colour", "time")
    page.wait_for_selector("#map[data-colour='time']")
    assert page.locator("#map path.wc-track").first.get_attribute("stroke") != before
    _map_shot(page, "alert-map-by-time")
    assert page.locator("#moments tr[data-kind='lock']").count() >= 1
    _shot(page, "alert-desktop")


def test_close_an_alert_with_a_finding(desktop: Any, site: Site) -> None:
    page = desktop
    page.goto(f"/console/alerts/{site.trip.alerts['suspected_illegal_dumping']}")
    for action in ("acknowledge", "investigate"):
        form = page.locator(f"form[data-action='{action}']")
        form.locator("textarea[name=note]").fill(f"{action} from the browser")
        form.locator("button[type=submit]").click()
        page.wait_for_selector(f"#done:has-text('{action}')")
    form = page.locator("form[data-action='resolve']")
    form.locator("select[name=resolution]").select_option("confirmed_violation")
    form.locator("textarea[name=finding]").fill("Drums found 600 m off the route, seal cut.")
    form.locator("textarea[name=note]").fill("site visit on the day")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#done:has-text('resolve')")
    form = page.locator("form[data-action='close']")
    form.locator("textarea[name=note]").fill("case passed to enforcement")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#done:has-text('close')")
    assert page.locator("#alert-state").inner_text() == "closed"
    assert "seal cut" in page.locator("#finding").inner_text()
    assert page.locator("#transitions li").count() == 5  # raised + four steps
    _shot(page, "alert-closed-desktop")


def test_open_a_manifest_and_see_it_verified(desktop: Any, site: Site) -> None:
    page = desktop
    page.goto(f"/console/manifests/{site.trip.manifest_id}")
    assert "chain verified" in page.locator("#chain-verdict").inner_text()
    assert page.locator("#timeline .badge.verified").count() == 2
    drawn = _map_drawn(page)
    assert drawn["route"] >= 1
    assert drawn["track"] >= 2
    assert drawn["site"] >= 1
    _map_shot(page, "manifest-map")
    with page.expect_download() as download:
        page.click("#bundle-link")
    assert download.value.suggested_filename.startswith("audit-bundle-")
    _shot(page, "manifest-desktop")


def test_the_public_page_needs_no_sign_in(browser: Any, site: Site) -> None:
    context = _context(browser, site, PHONE)
    page = context.new_page()
    page.goto(f"/verify/{site.trip.number}")
    assert "verifies" in page.locator("#verdict").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(page, "verify-phone")
    context.close()


def test_pages_fit_a_phone(browser: Any, site: Site) -> None:
    context = _context(browser, site, PHONE)
    page = context.new_page()
    _sign_in(page, site.regulator_token)
    pages = {
        "dashboard": "/console/dashboard",
        "alerts": "/console/alerts",
        "alert": f"/console/alerts/{site.trip.alerts['route_deviation']}",
        "manifest": f"/console/manifests/{site.trip.manifest_id}",
    }
    for name, path in pages.items():
        page.goto(path)
        if name in ("alert", "manifest"):
            assert _map_drawn(page)["track"] >= 2
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (name, width)
        _shot(page, f"{name}-phone")
    context.close()
