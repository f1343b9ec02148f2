"""Thin HTTP routes for manifests: file, append, chain, audit bundle (PROTOCOL.md §2–3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from waste.auth.deps import ANY_PARTY, Allow, UoW
from waste.auth.tokens import Principal
from waste.errors import Invalid
from waste.ledger.canonical import loads_strict
from waste.manifests import bundles, service
from waste.registry.domain import Role

router = APIRouter(prefix="/v1", tags=["manifests"])

MAX_ENVELOPE_BYTES = 1024 * 1024
Signer = Annotated[
    Principal, Depends(Allow(Role.PRODUCER, Role.HAULER, Role.DISPOSAL_SITE, Role.ADMIN))
]
Reader = Annotated[Principal, Depends(Allow(*ANY_PARTY))]

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["body", "signatures"],
    "additionalProperties": False,
    "properties": {
        "body": {
            "type": "object",
            "required": ["manifest_id", "seq", "prev_hash", "type", "actor", "at", "data"],
            "properties": {
                "manifest_id": {"type": "string", "format": "uuid"},
                "seq": {"type": "integer", "minimum": 0},
                "prev_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "type": {
                    "type": "string",
                    "enum": [
                        "filed",
                        "cancelled",
                        "picked_up",
                        "handed_over",
                        "received",
                        "rejected",
                        "disposed",
                    ],
                },
                "actor": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "data": {"type": "object", "description": "see waste.manifests.events"},
            },
        },
        "signatures": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["key_id", "sig"],
                "properties": {
                    "key_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                    "sig": {"type": "string", "format": "byte"},
                },
            },
        },
    },
}
_ENVELOPE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ENVELOPE_SCHEMA}},
    }
}


class FiledOut(BaseModel):
    """A filed manifest."""

    manifest_id: str
    number: str
    event_hash: str
    leaf_index: int
    state: str


class AppendedOut(BaseModel):
    """An accepted custody event."""

    manifest_id: str
    seq: int
    event_hash: str
    leaf_index: int
    state: str


async def _raw_body(request: Request) -> bytes:
    """The request body, read on the event loop; the routes themselves run in the threadpool."""
    return await request.body()


# Declared after the caller's token and the unit of work, so an unauthenticated
# request is refused before its body is read.
RawBody = Annotated[bytes, Depends(_raw_body)]


def _envelope(raw: bytes) -> object:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise Invalid(f"an envelope is at most {MAX_ENVELOPE_BYTES} bytes", field="body")
    return loads_strict(raw)


# The append routes are plain ``def``: their database work blocks, so FastAPI runs
# them in its threadpool and one slow append never stalls the event loop.
@router.post("/manifests", status_code=201, response_model=FiledOut, openapi_extra=_ENVELOPE_BODY)
def file_manifest(principal: Signer, uow: UoW, raw: RawBody) -> object:
    """File a manifest: a signed `filed` envelope with seq 0; the server assigns its number."""
    envelope = _envelope(raw)
    accepted = service.file_manifest(uow=uow, principal=principal, envelope=envelope)
    return FiledOut(**{k: getattr(accepted, k) for k in FiledOut.model_fields})


@router.post(
    "/manifests/{manifest_id}/events",
    status_code=201,
    response_model=AppendedOut,
    openapi_extra=_ENVELOPE_BODY,
)
def append_event(manifest_id: str, principal: Signer, uow: UoW, raw: RawBody) -> object:
    """Append a signed custody event; 409 if someone else appended first."""
    envelope = _envelope(raw)
    accepted = service.append_event(
        uow=uow, principal=principal, manifest_id=manifest_id, envelope=envelope
    )
    return AppendedOut(**{k: getattr(accepted, k) for k in AppendedOut.model_fields})


@router.get("/manifests/{manifest_id}/events")
def chain(manifest_id: str, principal: Reader, uow: UoW) -> list[dict[str, Any]]:
    """Every accepted envelope of the manifest, in seq order."""
    return service.chain(uow=uow, principal=principal, manifest_id=manifest_id)


@router.get("/manifests/{manifest_id}/bundle")
def bundle(manifest_id: str, request: Request, principal: Reader, uow: UoW) -> dict[str, Any]:
    """The manifest's offline audit bundle (verify with `waste audit verify`)."""
    return bundles.build(
        uow=uow, principal=principal, manifest_id=manifest_id, key=request.app.state.log_key
    )
