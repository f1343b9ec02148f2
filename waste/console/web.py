"""FastAPI glue of the console: templates, HTML error pages, sessions, CSRF, security headers."""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from waste import __version__
from waste.clock import ensure_utc, utcnow
from waste.config import Settings
from waste.console import signin
from waste.console.session import COOKIE, SessionSigner
from waste.errors import Forbidden, WasteError
from waste.uow import UnitOfWork

log = logging.getLogger("waste.console")
PREFIX = "/console"
TILE_HOSTS = "https://tile.openstreetmap.org"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    f"img-src 'self' data: {TILE_HOSTS}; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class LoginRequired(Exception):
    """The page needs a signed-in user and there is none."""


@functools.cache
def templates() -> Environment:
    """The console's Jinja2 environment (autoescaped, strict about missing names)."""
    env = Environment(
        loader=PackageLoader("waste.console", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ts"] = show_time
    env.filters["kg"] = show_kg
    env.globals["static"] = lambda path: f"{PREFIX}/static/{path}?v={__version__}"
    return env


def show_time(value: datetime | str | None) -> str:
    """``2026-11-23 08:00:05 UTC`` for a datetime or protocol timestamp; '' for None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("T", " ").replace("Z", " UTC")
    return ensure_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def show_kg(value: float | None) -> str:
    """``1,234.5 kg``; '' for None."""
    if value is None:
        return ""
    return f"{value:,.3f}".rstrip("0").rstrip(".") + " kg"


def json_island(value: Any) -> Markup:
    """JSON safe to place inside ``<script type="application/json">`` (no ``<``, ``>``, ``&``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)  # noqa: S704 - JSON with every markup-significant character escaped


def page(
    request: Request, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a console template."""
    viewer = getattr(request.state, "viewer", None)
    csrf = None if viewer is None else signer_of(request).csrf_token(viewer.nonce)
    html = templates().get_template(name).render(
        request_path=request.url.path, viewer=viewer, csrf=csrf, **context
    )
    return HTMLResponse(html, status_code=status_code)


def signer_of(request: Request) -> SessionSigner:
    """The session signer of this app (derived once from the log key)."""
    app = request.app
    log_key = app.state.log_key
    cached = getattr(app.state, "console_signer", None)
    if cached is None or cached[0] is not log_key:
        cached = (log_key, SessionSigner.from_log_key(log_key))
        app.state.console_signer = cached
    signer: SessionSigner = cached[1]
    return signer


def admin_token(request: Request) -> str | None:
    """The configured bootstrap admin token, if any."""
    settings: Settings = request.app.state.settings
    return None if settings.admin_token is None else settings.admin_token.get_secret_value()


def is_https(request: Request) -> bool:
    """Whether the browser talks to us over HTTPS (directly or via the public base URL)."""
    settings: Settings = request.app.state.settings
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


def current_viewer(request: Request) -> signin.Signed:
    """The signed-in user of this request; ``LoginRequired`` if there is none."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise LoginRequired
    with UnitOfWork(request.app.state.session_factory) as uow:
        signed = signin.signed_in(
            uow=uow,
            signer=signer_of(request),
            cookie=cookie,
            admin_token=admin_token(request),
            now=utcnow(),
        )
    if signed is None:
        raise LoginRequired
    request.state.viewer = signed
    return signed


async def checked_post(
    request: Request, viewer: Annotated[signin.Signed, Depends(current_viewer)]
) -> signin.Signed:
    """The viewer of a POST whose form carries the session's CSRF token; ``Forbidden`` if not."""
    refuse_cross_site(request)
    form = await request.form()
    presented = form.get("csrf")
    if not isinstance(presented, str) or not signer_of(request).csrf_ok(viewer.nonce, presented):
        raise Forbidden("the form is stale or did not come from this console: reload and retry")
    return viewer


def refuse_cross_site(request: Request) -> None:
    """Refuse a POST that the browser says another site made."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("cross-site form posts are refused")


Viewer = Annotated[signin.Signed, Depends(current_viewer)]
PostingViewer = Annotated[signin.Signed, Depends(checked_post)]


def login_url(request: Request) -> str:
    """The sign-in page, remembering where the user was going."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{PREFIX}/login?next={quote(target, safe='')}"


def safe_next(target: str | None) -> str:
    """A local console path to go to after signing in (never another site)."""
    if (
        target
        and target.startswith(PREFIX + "/")
        and not any(c in target for c in "\\\r\n")
    ):
        return target
    return f"{PREFIX}/dashboard"


def secure(response: Response, *, private: bool = True) -> Response:
    """Add the console's security headers."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if private:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An HTML error page."""
    response = page(request, "error.html", status_code=status, title=title, detail=detail)
    if status in (429, 503):
        response.headers["Retry-After"] = "5" if status == 503 else "60"
    return response


class ConsoleRoute(APIRoute):
    """A route answering HTML: sign-in redirects and error pages instead of problem JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so deliberate errors become pages."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = RedirectResponse(login_url(request), status_code=303)
            except WasteError as exc:
                response = error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()))
                response = error_page(
                    request, 422, "Invalid input", f"{where}: {first.get('msg', 'invalid')}"
                )
            except Exception:  # an HTML page for the browser; logged like the API's 500s
                log.exception("console error on %s", request.url.path)
                response = error_page(
                    request, 500, "Internal error", "an internal error occurred; it has been logged"
                )
            return secure(response)

        return guarded


def new_nonce() -> str:
    """A random nonce for the sign-in form's CSRF pair."""
    return secrets.token_hex(16)
