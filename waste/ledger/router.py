"""Thin HTTP routes of the transparency log (PROTOCOL.md §3)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from waste.auth.deps import AdminOrRegulator, Public, UoW
from waste.errors import Invalid, NotFound
from waste.ledger import service
from waste.ledger.keys import b64encode
from waste.ledger.models import Checkpoint
from waste.ledger.store import LogStore

router = APIRouter(prefix="/v1/log", tags=["transparency log"])
public = [Depends(Public())]
MAX_ENTRIES = 1000
Size = Annotated[int, Query(ge=0, le=2**62)]


class InclusionOut(BaseModel):
    """An RFC 9162 inclusion proof."""

    index: int
    size: int
    leaf_hash: str
    hashes: list[str]


class ConsistencyOut(BaseModel):
    """An RFC 9162 consistency proof."""

    old: int
    new: int
    hashes: list[str]


class WitnessIn(BaseModel):
    """A cosigner to accept cosignatures from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    vkey: str = Field(description="C2SP tlog-cosignature vkey: name+keyid+b64(0x04||pub)")


class CosignatureIn(BaseModel):
    """A witness's cosignature line on a checkpoint."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(ge=0, le=2**62)
    signature_line: str = Field(min_length=10, max_length=500)


@router.get("/checkpoint", response_class=PlainTextResponse, dependencies=public)
def checkpoint(uow: UoW, request: Request) -> str:
    """The signed checkpoint of the log's current size (C2SP tlog-checkpoint), with cosignatures."""
    row = service.publish_checkpoint(uow=uow, key=request.app.state.log_key)
    return service.served_note(uow=uow, checkpoint=row)


@router.get("/key", response_class=PlainTextResponse, dependencies=public)
def log_key(request: Request) -> str:
    """The log's verifier key in the C2SP signed-note `name+keyid+base64` form."""
    key: service.LogKey = request.app.state.log_key
    return key.vkey + "\n"


@router.get("/proof/inclusion", response_model=InclusionOut, dependencies=public)
def inclusion(
    uow: UoW,
    size: Size,
    index: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    leaf_hash: Annotated[str | None, Query(description="hex or b64 leaf hash")] = None,
) -> object:
    """Inclusion proof of a leaf (by index or by leaf hash) in the tree of `size`."""
    store = LogStore(uow.session)
    if (index is None) == (leaf_hash is None):
        raise Invalid("give exactly one of index and leaf_hash", field="index")
    if leaf_hash is not None:
        index = store.index_of_leaf(_hash_param(leaf_hash))
    assert index is not None
    leaf, hashes = store.inclusion(index, size)
    return InclusionOut(
        index=index, size=size, leaf_hash=b64encode(leaf), hashes=[b64encode(h) for h in hashes]
    )


@router.get("/proof/consistency", response_model=ConsistencyOut, dependencies=public)
def consistency(uow: UoW, old: Size, new: Size) -> object:
    """Consistency proof between two tree sizes."""
    hashes = LogStore(uow.session).consistency_proof(old, new)
    return ConsistencyOut(old=old, new=new, hashes=[b64encode(h) for h in hashes])


@router.get("/entries")
def entries(uow: UoW, _: AdminOrRegulator, start: Size, end: Size) -> dict[str, Any]:
    """Log entries at leaf indices start ≤ i < end (at most 1000 at a time)."""
    if end < start:
        raise Invalid("end must not be before start", field="end")
    if end - start > MAX_ENTRIES:
        raise Invalid(f"at most {MAX_ENTRIES} entries per request", field="end")
    rows = LogStore(uow.session).entries(start, end)
    return {
        "start": start,
        "end": end,
        "entries": [
            {
                "leaf_index": r.leaf_index,
                "leaf_hash": b64encode(r.leaf_hash),
                "entry": json.loads(r.entry),
            }
            for r in rows
        ],
    }


@router.post("/witnesses", status_code=201)
def register_witness(body: WitnessIn, uow: UoW, principal: AdminOrRegulator) -> dict[str, str]:
    """Register a cosigner (a regulator's witness key)."""
    row = service.register_witness(
        uow=uow, name=body.name, vkey=body.vkey, party_id=principal.party_id
    )
    return {"name": row.name, "vkey": row.vkey}


@router.post("/cosignatures", status_code=201)
def add_cosignature(body: CosignatureIn, uow: UoW, _: AdminOrRegulator) -> dict[str, Any]:
    """Submit a witness's cosignature on a checkpoint; it is verified, stored and served."""
    row = service.add_cosignature(uow=uow, size=body.size, signature_line=body.signature_line)
    return {"size": row.checkpoint_size, "cosigner": row.cosigner, "signed_at": row.signed_at}


@router.get("/checkpoints/{size}", response_class=PlainTextResponse, dependencies=public)
def checkpoint_at(size: Annotated[int, Path(ge=0, le=2**62)], uow: UoW) -> str:
    """The signed checkpoint of one size, with its cosignatures."""
    row = uow.session.get(Checkpoint, size)
    if row is None:
        raise NotFound(f"no checkpoint of size {size}")
    return service.served_note(uow=uow, checkpoint=row)


def _hash_param(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise Invalid("leaf_hash must be 64 hex digits or base64", field="leaf_hash") from exc
    if len(raw) != 32:
        raise Invalid("leaf_hash must be 32 bytes", field="leaf_hash")
    return raw
