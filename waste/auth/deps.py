"""FastAPI dependencies: the unit of work per request, and ``Allow`` on every route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from waste.auth import service
from waste.auth.tokens import Principal
from waste.config import Settings
from waste.errors import Forbidden, Unauthenticated
from waste.registry.domain import Role
from waste.uow import UnitOfWork

_bearer = HTTPBearer(auto_error=False, description="wst_… token issued by POST /v1/tokens")


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    """A unit of work for one request."""
    with UnitOfWork(request.app.state.session_factory) as uow:
        yield uow


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


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
        settings: Settings = request.app.state.settings
        admin = settings.admin_token.get_secret_value() if settings.admin_token else None
        with UnitOfWork(request.app.state.session_factory) as uow:
            principal = service.authenticate(
                uow=uow, bearer=credentials.credentials, admin_token=admin
            )
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
