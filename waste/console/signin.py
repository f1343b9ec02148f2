"""Signing in to the console with an API token, and finding who a session cookie stands for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from waste.auth.tokens import Principal
from waste.console.session import ADMIN, SessionSigner, admin_token_hash
from waste.errors import Unauthenticated
from waste.registry.domain import Role
from waste.registry.models import ApiToken, Party
from waste.uow import UnitOfWork


@dataclass(frozen=True)
class Signed:
    """Who is signed in: the principal, a name to show, and the session's nonce."""

    principal: Principal
    name: str
    nonce: str

    @property
    def oversees(self) -> bool:
        """Whether this is a regulator (or admin), not a party seeing its own records."""
        return self.principal.role in (Role.REGULATOR, Role.ADMIN)


def _name(uow: UnitOfWork, principal: Principal) -> str:
    if principal.party_id is None:
        return "administrator"
    party = uow.session.get(Party, principal.party_id)
    return principal.party_id if party is None else party.name


def session_cookie(
    *,
    uow: UnitOfWork,
    signer: SessionSigner,
    principal: Principal,
    admin_token: str | None,
    now: datetime,
) -> str:
    """A session cookie for a principal just authenticated by its API token."""
    if principal.token_id is None:  # the bootstrap admin token
        if admin_token is None:
            raise Unauthenticated("no admin token is configured")
        return signer.issue(token_id=ADMIN, bound_to=admin_token_hash(admin_token), now=now)
    row = uow.session.get(ApiToken, principal.token_id)
    if row is None:
        raise Unauthenticated("unknown token")
    return signer.issue(token_id=row.id, bound_to=row.secret_sha256, now=now)


def signed_in(
    *,
    uow: UnitOfWork,
    signer: SessionSigner,
    cookie: str,
    admin_token: str | None,
    now: datetime,
) -> Signed | None:
    """Who ``cookie`` stands for, if it is genuine, unexpired and its token still valid."""
    claims = signer.claims(cookie, now=now)
    if claims is None:
        return None
    if claims.token_id == ADMIN:
        if admin_token is None or not signer.verify(cookie, bound_to=admin_token_hash(admin_token)):
            return None
        return Signed(Principal(role=Role.ADMIN), "administrator", claims.nonce)
    row = uow.session.get(ApiToken, claims.token_id)
    if row is None or not signer.verify(cookie, bound_to=row.secret_sha256):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    party_region = None
    if row.party_id is not None:
        party = uow.session.get(Party, row.party_id)
        party_region = None if party is None else party.region_code
    principal = Principal(
        role=Role(row.role),
        party_id=row.party_id,
        regions=tuple(row.regions or ()),
        token_id=row.id,
        party_region=party_region,
    )
    return Signed(principal, _name(uow, principal), claims.nonce)
