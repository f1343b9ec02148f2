"""Console pages of alerts: the queue, the detail with its map, handling forms, evidence.

Listing, detail, transitions and the evidence bundle are the alert engine's own
(``waste.alerts.listing``, ``handling``, ``bundle``); these routes only turn forms
into their calls and their answers into pages.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import or_, select

from waste.alerts import bundle, handling, listing
from waste.alerts.lifecycle import SEVERITIES, Action, AlertState, Command, Resolution
from waste.auth.tokens import Principal
from waste.clock import utcnow
from waste.console import alert_view, charts, web
from waste.errors import Forbidden, Invalid, WasteError
from waste.registry.domain import PartyKind, Role, region_prefix
from waste.registry.models import Party
from waste.uow import UnitOfWork

router = APIRouter(prefix=f"{web.PREFIX}/alerts", route_class=web.ConsoleRoute,
                   include_in_schema=False)  # fmt: skip
PAGE = 50
SORT_LABELS = {
    "-raised_at": "newest raised",
    "raised_at": "oldest raised",
    "-at": "newest happened",
    "at": "oldest happened",
    "-severity": "most severe",
    "severity": "least severe",
}
_KIND = re.compile(r"^[a-z][a-z_]{1,31}$")
_REGION = re.compile(r"^\d{2,6}$")
Text = Annotated[str, Query(max_length=64)]


def _uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.session_factory)


def _filters(
    kind: str, severity: str, state: str, region: str, party: str, since: str, until: str
) -> listing.AlertFilter:
    if kind and not _KIND.match(kind):
        raise Invalid("kind must be an alert kind such as route_deviation", field="kind")
    if severity and severity not in SEVERITIES:
        raise Invalid(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")
    if state and state not in {str(s) for s in AlertState}:
        raise Invalid("state must be an alert state such as open", field="state")
    if region and not _REGION.match(region):
        raise Invalid("region must be 2 to 6 digits of a region code", field="region")
    return listing.AlertFilter(
        kinds=(kind,) if kind else (),
        severities=(severity,) if severity else (),
        states=(state,) if state else (),
        region=region or None,
        party=party or None,
        at_from=listing.parse_bound(since or None, "from", end=False),
        at_to=listing.parse_bound(until or None, "to", end=True),
    )


def _party_choices(uow: UnitOfWork, principal: Principal) -> list[Party]:
    if principal.role not in (Role.ADMIN, Role.REGULATOR):
        return []
    query = select(Party).where(Party.kind != str(PartyKind.REGULATOR))
    if principal.role is Role.REGULATOR:
        query = query.where(
            or_(*(Party.region_code.startswith(region_prefix(r)) for r in principal.regions))
        )
    return list(uow.session.scalars(query.order_by(Party.name).limit(500)))


@router.get("", response_class=HTMLResponse)
def queue(
    request: Request,
    viewer: web.Viewer,
    kind: Text = "",
    severity: Text = "",
    state: Text = "",
    region: Text = "",
    party: Annotated[str, Query(max_length=36)] = "",
    since: Annotated[str, Query(alias="from", max_length=30)] = "",
    until: Annotated[str, Query(alias="to", max_length=30)] = "",
    sort: Text = "-raised_at",
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """The alert queue: filter by kind, severity, state, region, party and date; sort."""
    f = _filters(kind, severity, state, region, party, since, until)
    now = utcnow()
    with _uow(request) as uow:
        page = listing.list_alerts(
            uow=uow, principal=viewer.principal, filters=f, sort=sort, limit=PAGE,
            cursor=cursor or None, now=now,
        )  # fmt: skip
        parties = _party_choices(uow, viewer.principal)
        names = {p.id: p.name for p in parties}
        mentioned = {
            pid
            for item in page["items"]
            for pid in (item["handling"].get(k) for k in ("producer_id", "hauler_id", "site_id"))
            if pid and pid not in names
        }
        if mentioned:
            names |= {
                p.id: p.name
                for p in uow.session.scalars(select(Party).where(Party.id.in_(mentioned)))
            }
        chosen = {"kind": kind, "severity": severity, "state": state, "region": region,
                  "party": party, "from": since, "to": until, "sort": sort}  # fmt: skip
        return web.page(
            request,
            "alerts.html",
            items=page["items"],
            next_cursor=page["next_cursor"],
            chosen=chosen,
            kinds=charts.ALERT_KINDS,
            severities=SEVERITIES,
            states=[str(s) for s in AlertState],
            sorts=SORT_LABELS,
            parties=parties,
            names=names,
        )


def _detail_page(
    request: Request,
    viewer: web.Viewer,
    alert_id: str,
    *,
    error: str = "",
    status_code: int = 200,
    done: str = "",
) -> Response:
    with _uow(request) as uow:
        view = alert_view.build(
            uow=uow, principal=viewer.principal, alert_id=alert_id, now=utcnow()
        )
        return web.page(
            request,
            "alert.html",
            status_code=status_code,
            v=view,
            a=view.detail,
            map_json=web.json_island(view.map),
            error=error,
            done=done,
            resolutions=[str(r) for r in Resolution],
            severities=SEVERITIES,
            can_export=viewer.oversees,
        )


@router.get("/{alert_id}", response_class=HTMLResponse)
def detail(
    request: Request,
    alert_id: str,
    viewer: web.Viewer,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """An alert: its map, timeline, evidence, handling history and the actions open to you."""
    shown = done if done in {str(a) for a in Action} else ""
    return _detail_page(request, viewer, alert_id, done=shown)


@router.post("/{alert_id}/act", response_class=HTMLResponse)
def act(
    request: Request,
    alert_id: str,
    viewer: web.PostingViewer,
    action: Annotated[str, Form(max_length=20)],
    version: Annotated[int, Form(ge=1)],
    note: Annotated[str, Form(max_length=2000)] = "",
    resolution: Annotated[str, Form(max_length=30)] = "",
    finding: Annotated[str, Form(max_length=10_000)] = "",
    assignee: Annotated[str, Form(max_length=64)] = "",
    department: Annotated[str, Form(max_length=100)] = "",
    due_at: Annotated[str, Form(max_length=30)] = "",
    severity: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """One handling step, made by ``waste.alerts.handling.transition`` (logged, notified)."""
    try:
        if action not in {str(a) for a in Action}:
            raise Invalid("unknown action", field="action")
        if resolution and resolution not in {str(r) for r in Resolution}:
            raise Invalid("unknown resolution", field="resolution")
        command = Command(
            action=Action(action),
            note=note,
            resolution=Resolution(resolution) if resolution else None,
            finding=finding or None,
            assignee=assignee or None,
            department=department or None,
            due_at=alert_view.parse_due(due_at),
            severity=severity or None,
        )
        with _uow(request) as uow:
            handling.transition(
                uow=uow, principal=viewer.principal, alert_id=alert_id, command=command,
                expected_version=version, now=utcnow(),
            )  # fmt: skip
    except WasteError as exc:
        if exc.status == 404:
            raise
        where = f" ({exc.field})" if exc.field else ""
        return _detail_page(
            request, viewer, alert_id, error=f"{exc.detail}{where}", status_code=exc.status
        )
    return RedirectResponse(f"{web.PREFIX}/alerts/{alert_id}?done={action}", status_code=303)


@router.get("/{alert_id}/evidence.json")
def evidence(request: Request, alert_id: str, viewer: web.Viewer) -> Response:
    """The alert's evidence bundle (regulators and admins), verifiable offline."""
    if not viewer.oversees:
        raise Forbidden("the evidence bundle is for regulators")
    with _uow(request) as uow:
        data = bundle.build(
            uow=uow, principal=viewer.principal, alert_id=alert_id,
            key=request.app.state.log_key, now=utcnow(),
        )  # fmt: skip
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(data["alert"]["id"]))
    return Response(
        json.dumps(data, ensure_ascii=False, indent=1),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="alert-evidence-{safe}.json"'},
    )
