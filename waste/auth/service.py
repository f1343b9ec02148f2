"""Token use cases: issue, revoke, authenticate, and object-level access checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from waste.auth import tokens
from waste.auth.tokens import Principal
from waste.clock import utcnow
from waste.errors import Forbidden, Invalid, NotFound, Unauthenticated
from waste.registry.domain import PartyKind, Role, region_covers, role_for, validate_region_code
from waste.registry.models import ApiToken, Party
from waste.uow import UnitOfWork


def issue_token(
    *,
    uow: UnitOfWork,
    role: Role,
    party_id: str | None,
    regions: list[str],
    label: str,
    expires_at: datetime | None,
) -> tuple[ApiToken, str]:
    """Issue a token for a party (or an admin token); returns the row and the plaintext once."""
    if role is Role.ADMIN:
        if party_id is not None:
            raise Invalid("admin tokens are not bound to a party", field="party_id")
    else:
        if party_id is None:
            raise Invalid(f"a {role} token must name its party", field="party_id")
        party = uow.session.get(Party, party_id)
        if party is None:
            raise NotFound(f"no party {party_id}", field="party_id")
        if role_for(PartyKind(party.kind)) is not role:
            raise Invalid(f"party {party_id} is a {party.kind}, not a {role}", field="role")
    if role is Role.REGULATOR:
        if not regions:
            raise Invalid("a regulator token needs at least one region scope", field="regions")
        for i, code in enumerate(regions):
            validate_region_code(code, field=f"regions[{i}]")
    elif regions:
        raise Invalid("only regulator tokens carry region scopes", field="regions")
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expires_at is in the past", field="expires_at")
    minted = tokens.mint()
    row = ApiToken(
        id=minted.token_id,
        secret_sha256=minted.secret_sha256,
        role=role.value,
        party_id=party_id,
        regions=list(regions),
        label=label,
        created_at=utcnow(),
        expires_at=expires_at,
        revoked_at=None,
    )
    uow.session.add(row)
    uow.commit()
    return row, minted.plaintext


def revoke_token(*, uow: UnitOfWork, token_id: str) -> ApiToken:
    """Revoke a token now; revoking twice keeps the first time."""
    row = uow.session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        uow.commit()
    return row


def list_tokens(*, uow: UnitOfWork, party_id: str | None) -> list[ApiToken]:
    """Tokens, optionally of one party (secrets are never returned)."""
    query = select(ApiToken).order_by(ApiToken.created_at)
    if party_id is not None:
        query = query.where(ApiToken.party_id == party_id)
    return list(uow.session.scalars(query))


def authenticate(*, uow: UnitOfWork, bearer: str, admin_token: str | None) -> Principal:
    """The principal a bearer token stands for; ``Unauthenticated`` if it stands for none."""
    if admin_token is not None and tokens.admin_matches(bearer, admin_token):
        return Principal(role=Role.ADMIN)
    parts = tokens.split(bearer)
    if parts is None:
        raise Unauthenticated("malformed bearer token")
    token_id, secret = parts
    row = uow.session.get(ApiToken, token_id)
    # Compare even for an unknown id, so that the time taken does not tell ids apart.
    stored = row.secret_sha256 if row is not None else tokens.UNKNOWN_SECRET_SHA256
    if not tokens.secret_matches(secret, stored) or row is None:
        raise Unauthenticated("unknown token")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthenticated("token revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("token expired")
    party_region = None
    if row.party_id is not None:
        party = uow.session.get(Party, row.party_id)
        party_region = party.region_code if party else None
    return Principal(
        role=Role(row.role),
        party_id=row.party_id,
        regions=tuple(row.regions or ()),
        token_id=row.id,
        party_region=party_region,
    )


def can_see_party(principal: Principal, party: Party) -> bool:
    """Whether ``principal`` may read ``party``'s records."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.REGULATOR:
        return any(region_covers(scope, party.region_code) for scope in principal.regions)
    return principal.party_id == party.id


def can_manage_party(principal: Principal, party: Party) -> bool:
    """Whether ``principal`` may change ``party``'s keys, vehicles and devices."""
    return principal.role is Role.ADMIN or principal.party_id == party.id


def visible_party(*, uow: UnitOfWork, principal: Principal, party_id: str) -> Party:
    """The party, if it exists and ``principal`` may see it; else ``NotFound``."""
    party = uow.session.get(Party, party_id)
    if party is None or not can_see_party(principal, party):
        raise NotFound(f"no party {party_id}")
    return party


def managed_party(*, uow: UnitOfWork, principal: Principal, party_id: str) -> Party:
    """The party, if ``principal`` may change it; ``NotFound`` or ``Forbidden`` otherwise."""
    party = visible_party(uow=uow, principal=principal, party_id=party_id)
    if not can_manage_party(principal, party):
        raise Forbidden("only the party itself or an admin may change this")
    return party


def in_region_scope(principal: Principal, region_code: str) -> bool:
    """Whether an admin or a regulator of this region may act on ``region_code``."""
    if principal.role is Role.ADMIN:
        return True
    return principal.role is Role.REGULATOR and any(
        region_covers(scope, region_code) for scope in principal.regions
    )
