"""Thin HTTP routes to read manifests: lists, detail, overdue, exports, ledger, print, public."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from waste.auth.deps import ANY_PARTY, Allow, Public, UoW
from waste.auth.tokens import Principal
from waste.clock import parse_utc, utcnow
from waste.manifests import exports, printing, public, queries, register
from waste.manifests.custody import ManifestState
from waste.registry.waste_codes import validate_waste_code

router = APIRouter(prefix="/v1", tags=["manifests"])
public_router = APIRouter(prefix="/v1/public", tags=["public"])

Reader = Annotated[Principal, Depends(Allow(*ANY_PARTY))]
Anyone = Annotated[None, Depends(Public())]
States = Annotated[list[ManifestState] | None, Query(description="Repeat for several")]
Stamp = Annotated[str | None, Query(description="RFC 3339 UTC, e.g. 2026-11-23T00:00:00Z")]
Code = Annotated[str | None, Query(description="A declared waste code, e.g. 900-041-49")]
PartyId = Annotated[
    str | None, Query(max_length=64, description="Only manifests this party is also on")
]
Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of a page")]
PeriodFrom = Annotated[str, Query(alias="from", description="YYYY-MM-DD or RFC 3339")]
PeriodTo = Annotated[str, Query(alias="to", description="YYYY-MM-DD (included) or RFC 3339")]
CSV_MEDIA = "text/csv; charset=utf-8"


def _filters(
    state: list[ManifestState] | None,
    filed_from: str | None,
    filed_to: str | None,
    waste_code: str | None,
    counterparty: str | None,
    overdue: bool,
) -> queries.ManifestFilter:
    return queries.ManifestFilter(
        states=tuple(str(s) for s in state or ()),
        filed_from=None if filed_from is None else parse_utc(filed_from, field="query.filed_from"),
        filed_to=None if filed_to is None else parse_utc(filed_to, field="query.filed_to"),
        waste_code=(
            None
            if waste_code is None
            else validate_waste_code(waste_code, field="query.waste_code")
        ),
        counterparty=counterparty,
        overdue_only=overdue,
    )


def _page(page: queries.Page) -> dict[str, Any]:
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/manifests")
def list_manifests(
    uow: UoW,
    principal: Reader,
    state: States = None,
    filed_from: Stamp = None,
    filed_to: Stamp = None,
    waste_code: Code = None,
    counterparty: PartyId = None,
    overdue: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Manifests you may see, newest filing first; page with `next_cursor` → `cursor`."""
    f = _filters(state, filed_from, filed_to, waste_code, counterparty, overdue)
    return _page(
        queries.list_manifests(
            uow=uow, principal=principal, filters=f, limit=limit, cursor=cursor, now=utcnow()
        )
    )


@router.get("/manifests/overdue")
def list_overdue(
    uow: UoW, principal: Reader, limit: Limit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    """Manifests past a deadline: not received by deliver_by, or not disposed 5 working days
    after receipt."""
    f = queries.ManifestFilter(overdue_only=True)
    return _page(
        queries.list_manifests(
            uow=uow, principal=principal, filters=f, limit=limit, cursor=cursor, now=utcnow()
        )
    )


@router.get("/manifests/export.csv", response_class=Response)
def export_csv(uow: UoW, principal: Reader, start: PeriodFrom, end: PeriodTo) -> Response:
    """CSV of the manifests you may see filed in a period (formula-safe, UTF-8 with BOM)."""
    lo, hi = exports.parse_period(start, end)
    body = exports.export_manifests(uow=uow, principal=principal, start=lo, end=hi, now=utcnow())
    name = f"manifests_{lo:%Y%m%d}_{hi:%Y%m%d}.csv"
    return Response(
        body,
        media_type=CSV_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/manifests/by-number/{number}")
def by_number(number: str, uow: UoW, principal: Reader) -> dict[str, Any]:
    """A manifest found by its 14-digit number."""
    return queries.manifest_by_number(uow=uow, principal=principal, number=number, now=utcnow())


@router.get("/manifests/{manifest_id}")
def detail(manifest_id: str, uow: UoW, principal: Reader) -> dict[str, Any]:
    """A manifest: parties, wastes, legs, masses, derived state, deadline and timeline."""
    return queries.manifest_detail(
        uow=uow, principal=principal, manifest_id=manifest_id, now=utcnow()
    )


@router.get("/manifests/{manifest_id}/print", response_class=HTMLResponse)
def print_manifest(manifest_id: str, request: Request, uow: UoW, principal: Reader) -> HTMLResponse:
    """The printable manifest (HTML) with its signature chain and a verification QR code."""
    html = printing.render_manifest(
        uow=uow,
        principal=principal,
        manifest_id=manifest_id,
        base_url=request.app.state.settings.base_url,
        now=utcnow(),
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/parties/{party_id}/ledger")
def ledger(
    party_id: str, uow: UoW, principal: Reader, start: PeriodFrom, end: PeriodTo
) -> dict[str, Any]:
    """The party's waste ledger (台账) for a period: outgoing, transported or incoming."""
    lo, hi = exports.parse_period(start, end)
    return register.ledger(uow=uow, principal=principal, party_id=party_id, start=lo, end=hi)


@router.get("/parties/{party_id}/ledger.csv", response_class=Response)
def ledger_csv(
    party_id: str, uow: UoW, principal: Reader, start: PeriodFrom, end: PeriodTo
) -> Response:
    """The party's ledger as CSV (formula-safe, UTF-8 with BOM)."""
    lo, hi = exports.parse_period(start, end)
    book = register.ledger(uow=uow, principal=principal, party_id=party_id, start=lo, end=hi)
    body = exports.to_csv(register.COLUMNS[book["direction"]], book["rows"])
    name = f"ledger_{book['direction']}_{lo:%Y%m%d}_{hi:%Y%m%d}.csv"
    return Response(
        body,
        media_type=CSV_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@public_router.get("/manifests/{number}")
def verify(number: str, request: Request, uow: UoW, _: Anyone) -> dict[str, Any]:
    """Public: does this manifest exist, its state, waste categories, rounded masses, and
    whether its signed chain verifies. No names, addresses, routes or ids."""
    return public.verify_number(uow=uow, number=number, key=request.app.state.log_key, now=utcnow())
