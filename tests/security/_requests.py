"""One concrete request per route, caller and scope, for the authorization matrix.

Each builder gets the seeded data, the caller and the scope (``own``, ``other``,
``region``; ``-`` for routes without a target) and returns the request to make:
a realistic one (a valid body, an existing target), so that the answer shows
what the caller may do, not how the body was malformed. Targets a call may use
up (a key to rotate, a token to revoke, a manifest to cancel) are made fresh.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.security._seed import REGIONS, Group, Seeded
from tests.support.alerts import insert_alert
from tests.support.console import csrf_of, sign_in
from tests.support.parties import make_uscc, public_b64
from tests.support.world import box
from waste.ledger.checkpoint import cosign, cosigner_vkey
from waste.ledger.envelope import event_hash, make_body, sign_body

CALLERS = ("admin", "regulator", "producer", "hauler", "site", "anon")
SUBJECT = {"producer": "producer", "hauler": "hauler", "site": "disposal_site"}
HOOK_URL = "http://127.0.0.1:9/hooks/custody"  # loopback discard port: deliveries fail fast
_serial = itertools.count(1)


@dataclass
class Call:
    """An HTTP request to make: with the caller's bearer token, or (``browser``) through a
    console session in a browser-like client whose cookies it carries."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    form: dict[str, Any] | None = None
    browser: TestClient | None = None


@dataclass
class Ctx:
    """The seeded data, plus targets made once and reused by calls that do not use them up."""

    seeded: Seeded
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def once(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for, then the same value."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def headers(self, caller: str) -> dict[str, str]:
        """The caller's Authorization header (none for ``anon``)."""
        s = self.seeded
        if caller == "admin":
            return s.admin
        if caller == "regulator":
            return s.regulator.headers
        if caller == "anon":
            return {}
        return s.group("own").party(SUBJECT[caller]).headers

    def token(self, caller: str) -> str:
        """The caller's bearer token ('' for ``anon``)."""
        return self.headers(caller).get("Authorization", "").removeprefix("Bearer ")

    def browser(self, caller: str, *, fresh: bool = False) -> TestClient:
        """A browser signed in to the console as ``caller`` (``anon``: not signed in)."""

        def make() -> TestClient:
            browser = TestClient(self.seeded.http.app, follow_redirects=False)
            if caller != "anon":
                resp = sign_in(browser, self.token(caller))
                assert resp.status_code == 303, resp.text
            return browser

        return make() if fresh else self.once(("browser", caller), make)

    def csrf(self, browser: TestClient) -> str:
        """The session's CSRF token from a console page ('' when not signed in)."""
        page = browser.get("/console/dashboard")
        return csrf_of(page.text) if page.status_code == 200 else ""

    def alert(self, scope: str, *, fresh: bool = False) -> str:
        """An open alert about the manifest of ``scope``'s group."""
        group = self.seeded.group(scope)

        def make() -> str:
            return insert_alert(
                self.seeded.http,
                region_code=REGIONS[scope],
                manifest_id=group.manifest_id,
                producer_id=group.producer.id,
                hauler_id=group.hauler.id,
                site_id=group.site.id,
                vehicle=group.plate,
                device_id=group.device_id,
            )

        return make() if fresh else str(self.once(("alert", scope), make))

    def ok(self, resp: Any, *codes: int) -> Any:
        """The JSON of a set-up call, which must succeed."""
        assert resp.status_code in (codes or (200, 201)), resp.text
        return resp.json()


Builder = Callable[[Ctx, str, str], Call]


def subject(ctx: Ctx, caller: str, scope: str, kind: str | None = None) -> Any:
    """The party a caller's call targets: of ``kind``, else of the caller's own kind."""
    return ctx.seeded.group(scope).party(kind or SUBJECT.get(caller, "producer"))


def _fresh_key(ctx: Ctx, party_id: str) -> str:
    """Register a spare key to a party (as admin); returns its key id."""
    resp = ctx.seeded.http.post(
        f"/v1/parties/{party_id}/keys",
        json={"public_key": public_b64(Ed25519PrivateKey.generate())},
        headers=ctx.seeded.admin,
    )
    return str(ctx.ok(resp)["key_id"])


def _fresh_filed(ctx: Ctx, group: Group) -> str:
    """File a new manifest as the group's producer; returns its id."""
    filed = group.client(ctx.seeded.http, "producer").file(group.filing())
    return str(filed["manifest_id"])


def _cancel_envelope(ctx: Ctx, group: Group, manifest_id: str) -> dict[str, Any]:
    events = ctx.ok(
        ctx.seeded.http.get(f"/v1/manifests/{manifest_id}/events", headers=ctx.seeded.admin)
    )
    body = make_body(
        manifest_id=manifest_id,
        seq=len(events),
        prev_hash=event_hash(events[-1]["body"]),
        type="cancelled",
        actor=group.producer.id,
        at=datetime.now(UTC),
        data={"reason": "plans changed"},
    )
    return sign_body(body, [group.producer.key])


def _subscription(ctx: Ctx, caller: str, scope: str, *, fresh: bool = False) -> str:
    party = subject(ctx, caller, scope)

    def make() -> str:
        resp = ctx.seeded.http.post(
            "/v1/webhooks", json={"url": HOOK_URL, "party_id": party.id}, headers=ctx.seeded.admin
        )
        return str(ctx.ok(resp)["id"])

    return make() if fresh else str(ctx.once(("hook", party.id), make))


def _witness(ctx: Ctx) -> tuple[str, Ed25519PrivateKey]:
    name = f"witness-{next(_serial)}-{uuid.uuid4().hex[:6]}"
    key = Ed25519PrivateKey.generate()
    resp = ctx.seeded.http.post(
        "/v1/log/witnesses",
        json={"name": name, "vkey": cosigner_vkey(name, key)},
        headers=ctx.seeded.admin,
    )
    ctx.ok(resp)
    return name, key


def _cosignature(ctx: Ctx) -> dict[str, Any]:
    name, key = _witness(ctx)
    note = ctx.seeded.http.get("/v1/log/checkpoint").text
    body = note.split("\n\n", 1)[0] + "\n"
    line = cosign(body, name, key, datetime.now(UTC))
    return {"size": int(body.splitlines()[1]), "signature_line": line}


def _period() -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}


def _new_party() -> dict[str, Any]:
    return {
        "kind": "producer",
        "name": f"Matrix producer {next(_serial)}",
        "uscc": make_uscc("330702"),
        "region_code": "330702",
    }


def build(route: str) -> Builder:
    """The builder of ``route`` ("METHOD /path"); ``KeyError`` if there is none."""
    return BUILDERS[route]


def _fixed(method: str, path: str, **kw: Any) -> Builder:
    return lambda _ctx, _caller, _scope: Call(method, path, **kw)


BUILDERS: dict[str, Builder] = {
    # --- tokens
    "POST /v1/tokens": lambda c, _a, _s: Call(
        "POST", "/v1/tokens", {"role": "producer", "party_id": c.seeded.group("own").producer.id}
    ),
    "GET /v1/tokens": _fixed("GET", "/v1/tokens"),
    "POST /v1/tokens/{token_id}/revoke": lambda c, _a, _s: Call(
        "POST",
        "/v1/tokens/{}/revoke".format(
            c.ok(
                c.seeded.http.post(
                    "/v1/tokens",
                    json={"role": "producer", "party_id": c.seeded.group("own").producer.id},
                    headers=c.seeded.admin,
                )
            )["id"]
        ),
    ),
    "GET /v1/whoami": _fixed("GET", "/v1/whoami"),
    # --- registry
    "POST /v1/parties": lambda _c, _a, _s: Call("POST", "/v1/parties", _new_party()),
    "GET /v1/parties": _fixed("GET", "/v1/parties"),
    "GET /v1/parties/{party_id}": lambda c, a, s: Call("GET", f"/v1/parties/{subject(c, a, s).id}"),
    "POST /v1/parties/{party_id}/keys": lambda c, a, s: Call(
        "POST",
        f"/v1/parties/{subject(c, a, s).id}/keys",
        {"public_key": public_b64(Ed25519PrivateKey.generate())},
    ),
    "GET /v1/parties/{party_id}/keys": lambda c, a, s: Call(
        "GET", f"/v1/parties/{subject(c, a, s).id}/keys"
    ),
    "POST /v1/parties/{party_id}/keys/{key_id}/rotate": lambda c, a, s: Call(
        "POST",
        f"/v1/parties/{subject(c, a, s).id}/keys/{_fresh_key(c, subject(c, a, s).id)}/rotate",
        {"public_key": public_b64(Ed25519PrivateKey.generate())},
    ),
    "POST /v1/parties/{party_id}/keys/{key_id}/revoke": lambda c, a, s: Call(
        "POST",
        f"/v1/parties/{subject(c, a, s).id}/keys/{_fresh_key(c, subject(c, a, s).id)}/revoke",
        {
            "compromised_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "reason": "laptop lost",
        },
    ),
    "GET /v1/keys/{key_id}": lambda c, a, s: Call(
        "GET", f"/v1/keys/{c.once(('key', s), lambda: _fresh_key(c, subject(c, a, s).id))}"
    ),
    "POST /v1/parties/{party_id}/vehicles": lambda c, a, s: Call(
        "POST",
        f"/v1/parties/{subject(c, a, s, 'hauler').id}/vehicles",
        {"plate": f"浙M{next(_serial):05d}", "capacity_kg": 9000},
    ),
    "GET /v1/parties/{party_id}/vehicles": lambda c, a, s: Call(
        "GET", f"/v1/parties/{subject(c, a, s, 'hauler').id}/vehicles"
    ),
    "POST /v1/devices": lambda c, _a, s: Call(
        "POST",
        "/v1/devices",
        {
            "device_id": f"DEV-MX-{next(_serial)}",
            "public_key": public_b64(Ed25519PrivateKey.generate()),
            "vehicle_id": c.seeded.group(s).vehicle_id,
        },
    ),
    "GET /v1/devices/{device_id}": lambda c, _a, s: Call(
        "GET", f"/v1/devices/{c.seeded.group(s).device_id}"
    ),
    "POST /v1/parties/{party_id}/permits": lambda c, a, s: Call(
        "POST",
        f"/v1/parties/{subject(c, a, s, 'disposal_site').id}/permits",
        {
            "number": f"PERMIT-MX-{next(_serial)}",
            "waste_codes": ["900-041-49"],
            "annual_capacity_kg": 1000,
            "valid_from": "2025-01-01",
            "valid_until": "2030-12-31",
            "area": box(120.19, 29.25),
        },
    ),
    "GET /v1/parties/{party_id}/permits": lambda c, a, s: Call(
        "GET", f"/v1/parties/{subject(c, a, s, 'disposal_site').id}/permits"
    ),
    "POST /v1/zones": lambda c, _a, s: Call(
        "POST",
        "/v1/zones",
        {
            "name": f"Zone {next(_serial)}",
            "region_code": c.seeded.group(s).producer.party["region_code"],
            "area": box(120.10, 29.30),
        },
    ),
    "GET /v1/zones": _fixed("GET", "/v1/zones"),
    "GET /v1/waste-codes": _fixed("GET", "/v1/waste-codes"),
    "GET /v1/waste-codes/{code}": _fixed("GET", "/v1/waste-codes/900-041-49"),
    # --- manifests: a valid envelope signed by the target group's producer, posted by the caller
    "POST /v1/manifests": lambda c, _a, s: Call(
        "POST", "/v1/manifests", c.seeded.group(s).filed_envelope()
    ),
    "POST /v1/manifests/{manifest_id}/events": lambda c, _a, s: _cancel_call(c, s),
    "GET /v1/manifests/{manifest_id}/events": lambda c, _a, s: Call(
        "GET", f"/v1/manifests/{c.seeded.group(s).manifest_id}/events"
    ),
    "GET /v1/manifests/{manifest_id}/bundle": lambda c, _a, s: Call(
        "GET", f"/v1/manifests/{c.seeded.group(s).manifest_id}/bundle"
    ),
    "GET /v1/manifests": _fixed("GET", "/v1/manifests"),
    "GET /v1/manifests/overdue": _fixed("GET", "/v1/manifests/overdue"),
    "GET /v1/manifests/export.csv": lambda _c, _a, _s: Call(
        "GET", "/v1/manifests/export.csv", params=_period()
    ),
    "GET /v1/manifests/by-number/{number}": lambda c, _a, s: Call(
        "GET", f"/v1/manifests/by-number/{c.seeded.group(s).number}"
    ),
    "GET /v1/manifests/{manifest_id}": lambda c, _a, s: Call(
        "GET", f"/v1/manifests/{c.seeded.group(s).manifest_id}"
    ),
    "GET /v1/manifests/{manifest_id}/print": lambda c, _a, s: Call(
        "GET", f"/v1/manifests/{c.seeded.group(s).manifest_id}/print"
    ),
    "GET /v1/parties/{party_id}/ledger": lambda c, a, s: Call(
        "GET", f"/v1/parties/{subject(c, a, s).id}/ledger", params=_period()
    ),
    "GET /v1/parties/{party_id}/ledger.csv": lambda c, a, s: Call(
        "GET", f"/v1/parties/{subject(c, a, s).id}/ledger.csv", params=_period()
    ),
    "GET /v1/public/manifests/{number}": lambda c, _a, s: Call(
        "GET", f"/v1/public/manifests/{c.seeded.group(s).number}"
    ),
    # --- webhooks: the subscription of the target group's party of the caller's kind
    "POST /v1/webhooks": lambda c, a, s: Call(
        "POST", "/v1/webhooks", {"url": HOOK_URL, "party_id": subject(c, a, s).id}
    ),
    "GET /v1/webhooks": _fixed("GET", "/v1/webhooks"),
    "GET /v1/webhooks/{subscription_id}": lambda c, a, s: Call(
        "GET", f"/v1/webhooks/{_subscription(c, a, s)}"
    ),
    "DELETE /v1/webhooks/{subscription_id}": lambda c, a, s: Call(
        "DELETE", f"/v1/webhooks/{_subscription(c, a, s, fresh=True)}"
    ),
    "GET /v1/webhooks/{subscription_id}/deliveries": lambda c, a, s: Call(
        "GET", f"/v1/webhooks/{_subscription(c, a, s)}/deliveries"
    ),
    # --- transparency log
    "GET /v1/log/checkpoint": _fixed("GET", "/v1/log/checkpoint"),
    "GET /v1/log/key": _fixed("GET", "/v1/log/key"),
    "GET /v1/log/proof/inclusion": _fixed(
        "GET", "/v1/log/proof/inclusion", params={"index": 0, "size": 2}
    ),
    "GET /v1/log/proof/consistency": _fixed(
        "GET", "/v1/log/proof/consistency", params={"old": 1, "new": 2}
    ),
    "GET /v1/log/entries": _fixed("GET", "/v1/log/entries", params={"start": 0, "end": 2}),
    "POST /v1/log/witnesses": lambda _c, _a, _s: _witness_call(),
    "POST /v1/log/cosignatures": lambda c, _a, _s: Call(
        "POST", "/v1/log/cosignatures", _cosignature(c)
    ),
    "GET /v1/log/checkpoints/{size}": lambda c, _a, _s: Call(
        "GET", f"/v1/log/checkpoints/{c.once(('cp',), lambda: _checkpoint_size(c))}"
    ),
    # --- alerts: an open alert about the target group's manifest
    "GET /v1/alerts": _fixed("GET", "/v1/alerts"),
    "GET /v1/alerts/summary": _fixed("GET", "/v1/alerts/summary"),
    "POST /v1/alerts/escalate-overdue": _fixed("POST", "/v1/alerts/escalate-overdue"),
    "GET /v1/alerts/{alert_id}": lambda c, _a, s: Call("GET", f"/v1/alerts/{c.alert(s)}"),
    "GET /v1/alerts/{alert_id}/evidence": lambda c, _a, s: Call(
        "GET", f"/v1/alerts/{c.alert(s)}/evidence"
    ),
    "POST /v1/alerts/{alert_id}/transitions": lambda c, _a, s: Call(
        "POST",
        f"/v1/alerts/{c.alert(s, fresh=True)}/transitions",
        {"action": "acknowledge", "note": "seen on the map", "version": 1},
    ),
    "GET /v1/parties/{party_id}/risk": lambda c, a, s: Call(
        "GET", f"/v1/parties/{subject(c, a, s).id}/risk"
    ),
    "GET /v1/risk/parties": _fixed("GET", "/v1/risk/parties"),
    # --- the console: the caller's browser session (anonymous: none)
    "GET /console": lambda c, a, _s: _page(c, a, "/console"),
    "GET /console/login": lambda c, a, _s: _page(c, a, "/console/login"),
    "POST /console/login": lambda c, a, _s: _login(c, a),
    "POST /console/logout": lambda c, a, _s: _posted(c, a, "/console/logout", {}, fresh=True),
    "GET /console/dashboard": lambda c, a, _s: _page(c, a, "/console/dashboard"),
    "GET /console/manifests": lambda c, a, _s: _page(c, a, "/console/manifests"),
    "GET /console/manifests/{manifest_id}": lambda c, a, s: _page(
        c, a, f"/console/manifests/{c.seeded.group(s).manifest_id}"
    ),
    "GET /console/manifests/{manifest_id}/bundle.json": lambda c, a, s: _page(
        c, a, f"/console/manifests/{c.seeded.group(s).manifest_id}/bundle.json"
    ),
    "GET /console/alerts": lambda c, a, _s: _page(c, a, "/console/alerts"),
    "GET /console/alerts/{alert_id}": lambda c, a, s: _page(c, a, f"/console/alerts/{c.alert(s)}"),
    "GET /console/alerts/{alert_id}/evidence.json": lambda c, a, s: _page(
        c, a, f"/console/alerts/{c.alert(s)}/evidence.json"
    ),
    "POST /console/alerts/{alert_id}/act": lambda c, a, s: _posted(
        c,
        a,
        f"/console/alerts/{c.alert(s, fresh=True)}/act",
        {"action": "acknowledge", "note": "seen on the map", "version": "1"},
    ),
    "MOUNT /console/static": lambda c, a, _s: _page(c, a, "/console/static/console.css"),
    "GET /verify": _fixed("GET", "/verify"),
    "GET /verify/{number}": lambda c, _a, s: Call("GET", f"/verify/{c.seeded.group(s).number}"),
    # --- operations
    "GET /healthz": _fixed("GET", "/healthz"),
    "GET /readyz": _fixed("GET", "/readyz"),
}


def _cancel_call(ctx: Ctx, scope: str) -> Call:
    group = ctx.seeded.group(scope)
    manifest_id = _fresh_filed(ctx, group)
    return Call(
        "POST",
        f"/v1/manifests/{manifest_id}/events",
        _cancel_envelope(ctx, group, manifest_id),
    )


def _witness_call() -> Call:
    name = f"witness-{next(_serial)}-{uuid.uuid4().hex[:6]}"
    return Call(
        "POST",
        "/v1/log/witnesses",
        {"name": name, "vkey": cosigner_vkey(name, Ed25519PrivateKey.generate())},
    )


def _checkpoint_size(ctx: Ctx) -> int:
    return int(ctx.seeded.http.get("/v1/log/checkpoint").text.splitlines()[1])


def _page(ctx: Ctx, caller: str, path: str) -> Call:
    return Call("GET", path, browser=ctx.browser(caller))


def _posted(ctx: Ctx, caller: str, path: str, form: dict[str, Any], *, fresh: bool = False) -> Call:
    browser = ctx.browser(caller, fresh=fresh)
    return Call("POST", path, form={**form, "csrf": ctx.csrf(browser)}, browser=browser)


def _login(ctx: Ctx, caller: str) -> Call:
    """The sign-in form posted with the caller's token (anonymous: with none)."""
    browser = TestClient(ctx.seeded.http.app, follow_redirects=False)
    form = browser.get("/console/login")
    data = {"token": ctx.token(caller), "csrf": csrf_of(form.text), "next": ""}
    return Call("POST", "/console/login", form=data, browser=browser)
