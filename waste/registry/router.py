"""Thin HTTP routes of the registry: parties, keys, vehicles, devices, permits, zones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from waste.auth.deps import ANY_PARTY, AdminOnly, AdminOrRegulator, Allow, AnyCaller, UoW
from waste.auth.tokens import Principal
from waste.registry import service
from waste.registry.domain import PartyKind, Role
from waste.registry.schemas import (
    DeviceIn,
    DeviceOut,
    KeyIn,
    KeyOut,
    KeyRevokeIn,
    KeyRotateIn,
    PartyIn,
    PartyOut,
    PermitIn,
    PermitOut,
    VehicleIn,
    VehicleOut,
    WasteCategoryOut,
    ZoneIn,
    ZoneOut,
)
from waste.registry.waste_codes import CATEGORIES, category_of, validate_waste_code

router = APIRouter(prefix="/v1", tags=["registry"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
HaulerOrAdmin = Annotated[Principal, Depends(Allow(Role.HAULER, Role.ADMIN))]
PartyOrAdmin = Annotated[Principal, Depends(Allow(*ANY_PARTY))]


@router.post("/parties", status_code=201, response_model=PartyOut)
def create_party(body: PartyIn, uow: UoW, _: AdminOnly) -> object:
    """Register a producer, hauler, disposal site or regulator (admin)."""
    return service.create_party(uow=uow, data=body)


@router.get("/parties", response_model=list[PartyOut])
def list_parties(
    uow: UoW,
    principal: AnyCaller,
    kind: PartyKind | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,6}$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> object:
    """Parties the caller may see: all for admins, their regions for regulators, else itself."""
    return service.list_parties(
        uow=uow, principal=principal, kind=kind, region_prefix=region, limit=limit, offset=offset
    )


@router.get("/parties/{party_id}", response_model=PartyOut)
def get_party(party_id: str, uow: UoW, principal: AnyCaller) -> object:
    """One party."""
    return service.get_party(uow=uow, principal=principal, party_id=party_id)


@router.post("/parties/{party_id}/keys", status_code=201, response_model=KeyOut)
def register_key(party_id: str, body: KeyIn, uow: UoW, principal: PartyOrAdmin) -> object:
    """Register a signing key of a party (the party itself or an admin)."""
    return service.register_key(uow=uow, principal=principal, party_id=party_id, data=body)


@router.get("/parties/{party_id}/keys", response_model=list[KeyOut])
def list_keys(party_id: str, uow: UoW, principal: AnyCaller) -> object:
    """A party's keys with their validity windows."""
    return service.list_keys(uow=uow, principal=principal, party_id=party_id)


@router.post("/parties/{party_id}/keys/{key_id}/rotate", status_code=201, response_model=KeyOut)
def rotate_key(
    party_id: str, key_id: str, body: KeyRotateIn, uow: UoW, principal: PartyOrAdmin
) -> object:
    """Replace a key: the old one ends when the new one starts."""
    return service.rotate_key(
        uow=uow,
        principal=principal,
        party_id=party_id,
        old_key_id=key_id,
        public_key=body.public_key,
        at=body.at,
    )


@router.post("/parties/{party_id}/keys/{key_id}/revoke", response_model=KeyOut)
def revoke_key(
    party_id: str, key_id: str, body: KeyRevokeIn, uow: UoW, principal: PartyOrAdmin
) -> object:
    """Revoke a key from the time it was compromised."""
    return service.revoke_key(
        uow=uow,
        principal=principal,
        party_id=party_id,
        key_id_=key_id,
        compromised_at=body.compromised_at,
        reason=body.reason,
    )


@router.get("/keys/{key_id}", response_model=KeyOut)
def get_key(key_id: str, uow: UoW, _: AnyCaller) -> object:
    """Any registered key by id (public keys are public)."""
    return service.get_key(uow=uow, key_id_=key_id)


@router.post("/parties/{party_id}/vehicles", status_code=201, response_model=VehicleOut)
def create_vehicle(party_id: str, body: VehicleIn, uow: UoW, principal: HaulerOrAdmin) -> object:
    """Register a vehicle to a hauler."""
    return service.create_vehicle(uow=uow, principal=principal, hauler_id=party_id, data=body)


@router.get("/parties/{party_id}/vehicles", response_model=list[VehicleOut])
def list_vehicles(party_id: str, uow: UoW, principal: AnyCaller) -> object:
    """A hauler's vehicles."""
    return service.list_vehicles(uow=uow, principal=principal, hauler_id=party_id)


@router.post("/devices", status_code=201, response_model=DeviceOut)
def register_device(body: DeviceIn, uow: UoW, principal: HaulerOrAdmin) -> object:
    """Register a vehicle terminal and bind it to a vehicle."""
    return service.register_device(uow=uow, principal=principal, data=body)


@router.get("/devices/{device_id}", response_model=DeviceOut)
def get_device(device_id: str, uow: UoW, principal: AnyCaller) -> object:
    """A device and the vehicle it is bound to."""
    return service.get_device(uow=uow, principal=principal, device_id=device_id)


@router.post("/parties/{party_id}/permits", status_code=201, response_model=PermitOut)
def create_permit(party_id: str, body: PermitIn, uow: UoW, principal: AdminOrRegulator) -> object:
    """Record a disposal site's licence (regulators of its region, or admins)."""
    return service.create_permit(uow=uow, principal=principal, site_id=party_id, data=body)


@router.get("/parties/{party_id}/permits", response_model=list[PermitOut])
def list_permits(party_id: str, uow: UoW, principal: AnyCaller) -> object:
    """A site's permits."""
    return service.list_permits(uow=uow, principal=principal, site_id=party_id)


@router.post("/zones", status_code=201, response_model=ZoneOut)
def create_zone(body: ZoneIn, uow: UoW, principal: AdminOrRegulator) -> object:
    """Record a restricted zone (regulators of its region, or admins)."""
    return service.create_zone(uow=uow, principal=principal, data=body)


@router.get("/zones", response_model=list[ZoneOut])
def list_zones(
    uow: UoW,
    _: AnyCaller,
    region: Annotated[str | None, Query(pattern=r"^\d{2,6}$")] = None,
) -> object:
    """Restricted zones, optionally within a region prefix."""
    return service.list_zones(uow=uow, region_prefix=region)


@router.get("/waste-codes", response_model=list[WasteCategoryOut])
def list_waste_categories(_: AnyCaller) -> object:
    """The waste-code catalogue's categories (HW01–HW50, SWnn)."""
    return [vars_of(c) for c in CATEGORIES.values()]


@router.get("/waste-codes/{code}", response_model=WasteCategoryOut)
def check_waste_code(code: str, _: AnyCaller) -> object:
    """Validate a waste code and return its category."""
    validate_waste_code(code)
    return vars_of(category_of(code))


def vars_of(category: object) -> dict[str, object]:
    """A dataclass's fields as a dict (slots dataclasses have no __dict__)."""
    return {name: getattr(category, name) for name in WasteCategoryOut.model_fields}


__all__ = ["ANY_PARTY", "router"]
