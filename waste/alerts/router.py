"""Thin HTTP routes of alert handling: list, detail, transitions, evidence, summary, risk."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from waste.alerts import bundle, handling, listing, risk
from waste.alerts import party_risk as risk_rollup
from waste.alerts.lifecycle import SEVERITIES, AlertState, Command
from waste.alerts.schemas import TransitionIn
from waste.auth.deps import ANY_PARTY, AdminOnly, AdminOrRegulator, Allow, UoW
from waste.auth.tokens import Principal
from waste.clock import parse_utc, utcnow
from waste.errors import Invalid
from waste.registry.domain import Role

router = APIRouter(prefix="/v1", tags=["alerts"])

Reader = Annotated[Principal, Depends(Allow(*ANY_PARTY))]
Handler = Annotated[Principal, Depends(Allow(Role.REGULATOR))]
Kinds = Annotated[list[str] | None, Query(description="Repeat for several")]
Severities = Annotated[list[str] | None, Query(description="low, medium, high, critical")]
States = Annotated[list[AlertState] | None, Query(description="Repeat for several")]
Region = Annotated[
    str | None, Query(pattern=r"^\d{2,6}$", description="Region code prefix, e.g. 3307")
]
Bound = Annotated[str | None, Query(description="YYYY-MM-DD or RFC 3339 UTC")]
Limit = Annotated[int, Query(ge=1, le=listing.MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=300, description="next_cursor of a page")]
_KIND = re.compile(r"^[a-z][a-z_]{1,31}$")
_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def _etag(version: int) -> str:
    return f'"{version}"'


@router.get("/alerts")
def list_alerts(
    uow: UoW,
    principal: Reader,
    kind: Kinds = None,
    severity: Severities = None,
    state: States = None,
    region: Region = None,
    party: Annotated[
        str | None, Query(max_length=36, description="Alerts about this party")
    ] = None,
    manifest_id: Annotated[str | None, Query(max_length=36)] = None,
    vehicle: Annotated[str | None, Query(max_length=20, description="Plate")] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    at_from: Annotated[str | None, Query(alias="from", description="`at` from (inclusive)")] = None,
    at_to: Annotated[
        str | None, Query(alias="to", description="`at` to (a date: included)")
    ] = None,
    overdue: Annotated[bool | None, Query(description="true: only overdue; false: none")] = None,
    sort: Annotated[str, Query(description=", ".join(listing.SORT_NAMES))] = "-raised_at",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Alerts you may see (protocol objects plus `handling`); page with `next_cursor`."""
    for i, k in enumerate(kind or ()):
        if not _KIND.match(k):
            raise Invalid("kind must be an alert kind such as route_deviation", field=f"kind[{i}]")
    for i, s in enumerate(severity or ()):
        if s not in SEVERITIES:
            raise Invalid(
                f"severity must be one of {', '.join(SEVERITIES)}", field=f"severity[{i}]"
            )
    filters = listing.AlertFilter(
        kinds=tuple(kind or ()),
        severities=tuple(severity or ()),
        states=tuple(str(s) for s in state or ()),
        region=region,
        party=party,
        manifest_id=manifest_id,
        vehicle=vehicle,
        assignee=assignee,
        at_from=listing.parse_bound(at_from, "query.from", end=False),
        at_to=listing.parse_bound(at_to, "query.to", end=True),
        overdue=overdue,
    )
    return listing.list_alerts(
        uow=uow,
        principal=principal,
        filters=filters,
        sort=sort,
        limit=limit,
        cursor=cursor,
        now=utcnow(),
    )


@router.get("/alerts/summary")
def summary(
    uow: UoW,
    principal: AdminOrRegulator,
    region: Region = None,
    at_from: Annotated[str | None, Query(alias="from")] = None,
    at_to: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Counts per region of the alerts you may see: by kind, state and severity; open and
    overdue."""
    return listing.summary(
        uow=uow,
        principal=principal,
        region=region,
        at_from=listing.parse_bound(at_from, "query.from", end=False),
        at_to=listing.parse_bound(at_to, "query.to", end=True),
        now=utcnow(),
    )


@router.post("/alerts/escalate-overdue")
def escalate_overdue(uow: UoW, _: AdminOnly) -> dict[str, Any]:
    """Escalate every overdue alert one severity step, once per due time (for a scheduler)."""
    done = handling.escalate_overdue(uow=uow, now=utcnow())
    return {
        "escalated": [
            {"alert_id": t.alert_id, **listing.transition_item(t, full=True)} for t in done
        ]
    }


@router.get("/alerts/{alert_id}")
def detail(alert_id: str, uow: UoW, principal: Reader, response: Response) -> dict[str, Any]:
    """The alert, its handling, its transitions with their log indices, and the actions you
    may take. The `ETag` is the handling version to send back as `If-Match`."""
    item = listing.alert_detail(uow=uow, principal=principal, alert_id=alert_id, now=utcnow())
    response.headers["ETag"] = _etag(item["handling"]["version"])
    return item


@router.post("/alerts/{alert_id}/transitions", status_code=201)
def transition(
    alert_id: str,
    body: TransitionIn,
    uow: UoW,
    principal: Handler,
    response: Response,
    if_match: Annotated[str | None, Header(description='"<version>" from the ETag')] = None,
) -> dict[str, Any]:
    """One handling step by a regulator of the alert's region (409 if the state does not
    allow it or the alert changed since the version you read)."""
    command = Command(
        action=body.action,
        note=body.note,
        resolution=body.resolution,
        finding=body.finding,
        assignee=body.assignee,
        department=body.department,
        due_at=None if body.due_at is None else parse_utc(body.due_at, field="due_at"),
        severity=body.severity,
    )
    now = utcnow()
    row = handling.transition(
        uow=uow,
        principal=principal,
        alert_id=alert_id,
        command=command,
        expected_version=_expected_version(body.version, if_match),
        now=now,
    )
    item = listing.alert_detail(uow=uow, principal=principal, alert_id=alert_id, now=now)
    response.headers["ETag"] = _etag(item["handling"]["version"])
    return {"transition": listing.transition_item(row, full=True), "alert": item}


def _expected_version(version: int | None, if_match: str | None) -> int:
    header = None
    if if_match is not None:
        m = _IF_MATCH.match(if_match.strip())
        if m is None:
            raise Invalid('If-Match must be the ETag, e.g. "3"', field="If-Match")
        header = int(m.group(1))
    if version is not None and header is not None and version != header:
        raise Invalid("version and If-Match disagree", field="version")
    expected = version if version is not None else header
    if expected is None:
        raise Invalid("send the version you last read (body version or If-Match)", field="version")
    return expected


@router.get("/alerts/{alert_id}/evidence")
def evidence(alert_id: str, request: Request, uow: UoW, principal: AdminOrRegulator) -> Response:
    """The evidence bundle (JSON download): the alert, its evidence, its transitions and
    their inclusion proofs against a signed checkpoint, verifiable offline."""
    data = bundle.build(
        uow=uow,
        principal=principal,
        alert_id=alert_id,
        key=request.app.state.log_key,
        now=utcnow(),
    )
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(data["alert"]["id"]))
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="alert-{safe}.json"'},
    )


@router.get("/parties/{party_id}/risk")
def party_risk(party_id: str, uow: UoW, principal: Reader) -> dict[str, Any]:
    """The party's risk score and green / yellow / red code (the party, its regulators,
    admins)."""
    return risk_rollup.party_risk(uow=uow, principal=principal, party_id=party_id, now=utcnow())


@router.get("/risk/parties")
def parties_risk(
    uow: UoW,
    principal: AdminOrRegulator,
    region: Region = None,
    code: Annotated[risk.RiskCode | None, Query(description="green, yellow or red")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=risk_rollup.MAX_RISK_PARTIES)] = 0,
) -> dict[str, Any]:
    """Risk of the producers, haulers and sites in your regions, highest score first."""
    return risk_rollup.parties_risk(
        uow=uow,
        principal=principal,
        region=region,
        code=None if code is None else str(code),
        limit=limit,
        offset=offset,
        now=utcnow(),
    )
