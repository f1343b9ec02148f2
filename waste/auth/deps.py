"""FastAPI dependencies: the unit of work per request, and ``Allow`` on every route."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State

from waste.auth import service
from waste.auth.ratelimit import FailureLimiter
from waste.auth.tokens import Principal
from waste.config import Settings
from waste.errors import Forbidden, Unauthenticated
from waste.registry.domain import Role
from waste.uow import UnitOfWork

_bearer = HTTPBearer(auto_error=False, description="wst_… token issued by POST /v1/tokens")
log = logging.getLogger("waste.auth")
_limiter_lock = threading.Lock()


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    """A unit of work for one request."""
    with UnitOfWork(request.app.state.session_factory) as uow:
        yield uow


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def client_address(request: Request) -> str:
    """The caller's address as the connection reports it (see ``waste.auth.ratelimit``)."""
    return request.client.host if request.client else "unknown"


def auth_limiter(request: Request) -> FailureLimiter:
    """The app's limiter of failed authentications, made from its settings on first use."""
    state: State = request.app.state
    limiter: FailureLimiter | None = getattr(state, "auth_limiter", None)
    if limiter is None:
        with _limiter_lock:
            limiter = getattr(state, "auth_limiter", None)
            if limiter is None:
                settings: Settings = state.settings
                limiter = state.auth_limiter = FailureLimiter(
                    max_failures=settings.auth_max_failures,
                    window_s=settings.auth_failure_window_s,
                )
    return limiter


def authenticate_request(request: Request, bearer: str) -> Principal:
    """Authenticate a presented token, rate-limited per client address.

    Use it for every credential a client presents, the console's login form
    included: ``RateLimited`` (429, with ``retry_after``) while the address is
    locked out, else ``Unauthenticated`` (counted as a failure) if the token
    stands for no one. The token itself is never logged.
    """
    limiter = auth_limiter(request)
    client = client_address(request)
    limiter.check(client)
    settings: Settings = request.app.state.settings
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    try:
        with UnitOfWork(request.app.state.session_factory) as uow:
            return service.authenticate(uow=uow, bearer=bearer, admin_token=admin)
    except Unauthenticated as exc:
        limiter.failed(client)
        log.info("authentication failed from %s: %s", client, exc.detail)
        raise


class Allow:
    """Declares which roles may call a route; resolves to the caller's ``Principal``.

    Every ``/v1`` route depends on exactly one ``Allow``; a test walks the
    routes and checks each role's answer against this declaration.
    """

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        """Authenticate the bearer and check the role."""
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthenticated("send Authorization: Bearer <token>")
        principal = authenticate_request(request, credentials.credentials)
        if principal.role not in self.roles:
            allowed = ", ".join(sorted(self.roles))
            raise Forbidden(f"role {principal.role} may not call this; allowed: {allowed}")
        return principal


class Public:
    """Declares a route that anyone may call without a token."""

    roles: frozenset[Role] = frozenset(Role)

    def __call__(self) -> None:
        """Nothing to check."""


ANY_PARTY = (Role.PRODUCER, Role.HAULER, Role.DISPOSAL_SITE, Role.REGULATOR, Role.ADMIN)

UoW = Annotated[UnitOfWork, Depends(get_uow)]
AnyCaller = Annotated[Principal, Depends(Allow(*ANY_PARTY))]
AdminOnly = Annotated[Principal, Depends(Allow(Role.ADMIN))]
AdminOrRegulator = Annotated[Principal, Depends(Allow(Role.ADMIN, Role.REGULATOR))]
