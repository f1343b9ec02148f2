"""The public verification page a printed manifest's QR code opens: ``/verify/{number}``.

It shows exactly what ``waste.manifests.public.verify_number`` answers (the JSON twin
is ``GET /v1/public/manifests/{number}``): whether the manifest exists, its state,
waste categories, rounded masses, and whether its signed chain verifies. No names,
addresses, routes, vehicles or ids. Nobody needs to sign in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from waste.clock import utcnow
from waste.console import web
from waste.errors import Invalid
from waste.manifests import public
from waste.uow import UnitOfWork

router = APIRouter(route_class=web.ConsoleRoute, include_in_schema=False)


@router.get("/verify", response_class=HTMLResponse)
def verify_form(
    request: Request, number: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    """A form to type a manifest number (or go straight to its page)."""
    if number:
        cleaned = "".join(number.split())
        if cleaned.isascii() and cleaned.isdigit() and len(cleaned) == 14:
            return RedirectResponse(f"/verify/{cleaned}", status_code=303)
        return web.page(
            request, "verify.html", status_code=422, result=None, number=number,
            error="A manifest number is 14 digits.",
        )  # fmt: skip
    return web.page(request, "verify.html", result=None, number="", error="")


@router.get("/verify/{number}", response_class=HTMLResponse)
def verify_page(request: Request, number: str) -> Response:
    """Whether manifest ``number`` exists and its chain verifies, for anyone."""
    try:
        with UnitOfWork(request.app.state.session_factory) as uow:
            result = public.verify_number(
                uow=uow, number=number, key=request.app.state.log_key, now=utcnow()
            )
    except Invalid as exc:
        return web.page(
            request, "verify.html", status_code=422, result=None, number=number[:40],
            error=exc.detail,
        )  # fmt: skip
    status = 200 if result["exists"] else 404
    return web.page(request, "verify.html", status_code=status, result=result, number=number,
                    error="")  # fmt: skip
