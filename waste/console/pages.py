"""Console pages: sign in and out, the dashboard, manifests (list, view, audit bundle)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from waste.auth.deps import authenticate_request
from waste.clock import utcnow
from waste.console import dashboard, manifest_view, web
from waste.console.session import COOKIE, LOGIN_COOKIE, SESSION_TTL
from waste.console.signin import session_cookie
from waste.errors import RateLimited, Unauthenticated
from waste.manifests import bundles, queries
from waste.manifests.custody import ManifestState
from waste.uow import UnitOfWork

router = APIRouter(prefix=web.PREFIX, route_class=web.ConsoleRoute, include_in_schema=False)
LOGIN_TTL_S = 3600


def _uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.session_factory)


@router.get("", response_class=RedirectResponse)
def home() -> RedirectResponse:
    """The console's front door: the dashboard (which asks to sign in first)."""
    return RedirectResponse(f"{web.PREFIX}/dashboard", status_code=303)


def _login_form(
    request: Request, target: str, *, error: str = "", status_code: int = 200
) -> Response:
    nonce = web.new_nonce()
    response = web.page(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=web.signer_of(request).csrf_token("login:" + nonce),
        next=target,
        error=error,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_TTL_S,
        path=f"{web.PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=web.is_https(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """The sign-in form: paste an API token."""
    return _login_form(request, web.safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Check the token; on success set the session cookie and go on."""
    web.refuse_cross_site(request)
    target = web.safe_next(next)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not web.signer_of(request).csrf_ok("login:" + nonce, csrf):
        return _login_form(
            request, target, error="The form expired: please sign in again.", status_code=403
        )
    try:
        principal = authenticate_request(request, token.strip())
        with _uow(request) as uow:
            cookie = session_cookie(
                uow=uow,
                signer=web.signer_of(request),
                principal=principal,
                admin_token=web.admin_token(request),
                now=utcnow(),
            )
    except RateLimited as exc:
        wait = int(exc.extra.get("retry_after", 60))
        response = _login_form(
            request,
            target,
            error=f"Too many failed attempts from your address: try again in {wait} s.",
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    except Unauthenticated:
        return _login_form(
            request,
            target,
            error="That token was not accepted (unknown, revoked or expired).",
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(SESSION_TTL.total_seconds()),
        path=web.PREFIX,
        httponly=True,
        samesite="strict",
        secure=web.is_https(request),
    )
    response.delete_cookie(
        LOGIN_COOKIE, path=f"{web.PREFIX}/login", httponly=True, samesite="strict"
    )
    return response


@router.post("/logout", response_class=RedirectResponse)
def logout(_: web.PostingViewer) -> RedirectResponse:
    """End the session in this browser."""
    response = RedirectResponse(f"{web.PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=web.PREFIX, httponly=True, samesite="strict")
    return response


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, viewer: web.Viewer) -> Response:
    """Manifests by state, overdue ones, alerts over time, regions, risk codes, the log."""
    with _uow(request) as uow:
        board = dashboard.build(uow=uow, principal=viewer.principal, now=utcnow())
        return web.page(request, "dashboard.html", board=board)


@router.get("/manifests", response_class=HTMLResponse)
def manifests_page(
    request: Request,
    viewer: web.Viewer,
    state: Annotated[ManifestState | None, Query()] = None,
    overdue: Annotated[bool, Query()] = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The manifests the viewer may see, newest first, 50 a page."""
    filters = queries.ManifestFilter(
        states=() if state is None else (str(state),), overdue_only=overdue
    )
    with _uow(request) as uow:
        listing = queries.list_manifests(
            uow=uow,
            principal=viewer.principal,
            filters=filters,
            limit=50,
            cursor=cursor,
            now=utcnow(),
        )
    return web.page(
        request,
        "manifests.html",
        listing=listing,
        states=[str(s) for s in ManifestState],
        state=None if state is None else str(state),
        overdue=overdue,
    )


@router.get("/manifests/{manifest_id}", response_class=HTMLResponse)
def manifest_page(request: Request, manifest_id: str, viewer: web.Viewer) -> Response:
    """A manifest: state timeline, signers with verified badges, the trip on the map."""
    with _uow(request) as uow:
        view = manifest_view.build(
            uow=uow,
            principal=viewer.principal,
            manifest_id=manifest_id,
            key=request.app.state.log_key,
            now=utcnow(),
        )
        return web.page(request, "manifest.html", v=view, map_json=web.json_island(view.map))


@router.get("/manifests/{manifest_id}/bundle.json")
def manifest_bundle(request: Request, manifest_id: str, viewer: web.Viewer) -> Response:
    """The manifest's offline audit bundle (verify it with `waste audit verify`)."""
    with _uow(request) as uow:
        bundle = bundles.build(
            uow=uow,
            principal=viewer.principal,
            manifest_id=manifest_id,
            key=request.app.state.log_key,
        )
    name = f"audit-bundle-{manifest_id}.json"
    return Response(
        json.dumps(bundle, ensure_ascii=False, indent=1),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
