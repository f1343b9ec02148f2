"""Thin HTTP routes for tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from waste.auth import service
from waste.auth.deps import AdminOnly, AnyCaller, UoW
from waste.registry.schemas import IssuedToken, TokenIn, TokenOut, WhoAmI

router = APIRouter(prefix="/v1", tags=["auth"])


@router.post("/tokens", status_code=201, response_model=IssuedToken)
def issue_token(body: TokenIn, uow: UoW, _: AdminOnly) -> object:
    """Issue a bearer token for a party and role (admin); the secret is shown only here."""
    row, plaintext = service.issue_token(
        uow=uow,
        role=body.role,
        party_id=body.party_id,
        regions=body.regions,
        label=body.label,
        expires_at=body.expires_at,
    )
    return {**TokenOut.model_validate(row).model_dump(), "token": plaintext}


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(uow: UoW, _: AdminOnly, party_id: Annotated[str | None, Query()] = None) -> object:
    """Issued tokens (never their secrets)."""
    return service.list_tokens(uow=uow, party_id=party_id)


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut)
def revoke_token(token_id: str, uow: UoW, _: AdminOnly) -> object:
    """Revoke a token now."""
    return service.revoke_token(uow=uow, token_id=token_id)


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: AnyCaller) -> object:
    """The caller's role, party and regions."""
    return WhoAmI(role=principal.role, party_id=principal.party_id, regions=list(principal.regions))
