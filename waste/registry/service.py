"""Registry use cases: parties, keys, vehicles, devices, permits and restricted zones."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select

from waste.auth.service import (
    can_see_party,
    in_region_scope,
    managed_party,
    visible_party,
)
from waste.auth.tokens import Principal
from waste.clock import ensure_utc, utcnow
from waste.errors import Conflict, Forbidden, Invalid, NotFound
from waste.ledger.keys import KeyRecord, decode_public_key, key_id
from waste.registry import geo
from waste.registry.domain import (
    PartyKind,
    Role,
    validate_region_code,
    validate_uscc,
)
from waste.registry.models import Device, Party, PartyKey, Permit, RestrictedZone, Vehicle
from waste.registry.schemas import DeviceIn, KeyIn, PartyIn, PermitIn, VehicleIn, ZoneIn
from waste.registry.waste_codes import validate_waste_code
from waste.uow import UnitOfWork


def create_party(*, uow: UnitOfWork, data: PartyIn) -> Party:
    """Register a party after validating its credit code, region and site."""
    validate_uscc(data.uscc, field="uscc")
    validate_region_code(data.region_code, field="region_code")
    site = geo.validate_site(data.site, field="site") if data.site is not None else None
    if uow.session.scalar(select(Party.id).where(Party.uscc == data.uscc)) is not None:
        raise Conflict(f"a party with credit code {data.uscc} exists", field="uscc")
    party = Party(
        id=str(uuid.uuid4()),
        kind=data.kind.value,
        name=data.name,
        uscc=data.uscc,
        region_code=data.region_code,
        address=data.address,
        site=site,
        created_at=utcnow(),
    )
    uow.session.add(party)
    uow.commit()
    return party


def list_parties(
    *,
    uow: UnitOfWork,
    principal: Principal,
    kind: PartyKind | None,
    region_prefix: str | None,
    limit: int,
    offset: int,
) -> list[Party]:
    """Parties the caller may see, filtered and paginated."""
    query = select(Party).order_by(Party.created_at, Party.id)
    if kind is not None:
        query = query.where(Party.kind == kind.value)
    if region_prefix:
        query = query.where(Party.region_code.startswith(region_prefix, autoescape=True))
    if principal.role is Role.ADMIN:
        return list(uow.session.scalars(query.limit(limit).offset(offset)))
    visible = [p for p in uow.session.scalars(query) if can_see_party(principal, p)]
    return visible[offset : offset + limit]


def get_party(*, uow: UnitOfWork, principal: Principal, party_id: str) -> Party:
    """One party, if the caller may see it."""
    return visible_party(uow=uow, principal=principal, party_id=party_id)


def register_key(*, uow: UnitOfWork, principal: Principal, party_id: str, data: KeyIn) -> PartyKey:
    """Register a new Ed25519 public key to a party."""
    managed_party(uow=uow, principal=principal, party_id=party_id)
    valid_from = ensure_utc(data.valid_from) if data.valid_from else utcnow()
    key = _new_key(uow=uow, party_id=party_id, public_key=data.public_key, valid_from=valid_from)
    uow.commit()
    return key


def rotate_key(
    *,
    uow: UnitOfWork,
    principal: Principal,
    party_id: str,
    old_key_id: str,
    public_key: str,
    at: datetime | None,
) -> PartyKey:
    """Replace a key: the old one ends at ``at`` (default now), the new one starts then."""
    managed_party(uow=uow, principal=principal, party_id=party_id)
    old = _own_key(uow=uow, party_id=party_id, key_id=old_key_id)
    moment = ensure_utc(at) if at else utcnow()
    if old.status != "active" or (old.valid_until is not None and old.valid_until <= moment):
        raise Conflict(f"key {old_key_id} has already ended", field="key_id")
    if moment < old.valid_from:
        raise Invalid("rotation time is before the old key's start", field="at")
    new = _new_key(uow=uow, party_id=party_id, public_key=public_key, valid_from=moment)
    old.valid_until = moment
    old.status = "rotated"
    old.ended_reason = "rotated"
    old.replaced_by = new.key_id
    uow.commit()
    return new


def revoke_key(
    *,
    uow: UnitOfWork,
    principal: Principal,
    party_id: str,
    key_id_: str,
    compromised_at: datetime,
    reason: str,
) -> PartyKey:
    """Revoke a key from its compromise time: signatures judged at or after it fail."""
    managed_party(uow=uow, principal=principal, party_id=party_id)
    key = _own_key(uow=uow, party_id=party_id, key_id=key_id_)
    moment = ensure_utc(compromised_at)
    if moment > utcnow():
        raise Invalid("compromised_at cannot be in the future", field="compromised_at")
    if key.status == "revoked":
        raise Conflict(f"key {key_id_} is already revoked", field="key_id")
    key.valid_until = moment if key.valid_until is None else min(key.valid_until, moment)
    key.status = "revoked"
    key.ended_reason = reason
    uow.commit()
    return key


def list_keys(*, uow: UnitOfWork, principal: Principal, party_id: str) -> list[PartyKey]:
    """A party's keys, oldest first."""
    visible_party(uow=uow, principal=principal, party_id=party_id)
    query = select(PartyKey).where(PartyKey.party_id == party_id).order_by(PartyKey.valid_from)
    return list(uow.session.scalars(query))


def get_key(*, uow: UnitOfWork, key_id_: str) -> PartyKey:
    """A key by id: public keys are public information."""
    key = uow.session.get(PartyKey, key_id_)
    if key is None:
        raise NotFound(f"no key {key_id_}")
    return key


def key_records(*, uow: UnitOfWork, key_ids: Sequence[str]) -> dict[str, KeyRecord]:
    """Key records with their party kind, for signature checks."""
    rows = uow.session.execute(
        select(PartyKey, Party.kind)
        .join(Party, Party.id == PartyKey.party_id)
        .where(PartyKey.key_id.in_(list(key_ids)))
    )
    return {
        key.key_id: KeyRecord(
            key_id=key.key_id,
            party_id=key.party_id,
            party_kind=kind,
            public_key=key.public_key,
            valid_from=key.valid_from,
            valid_until=key.valid_until,
        )
        for key, kind in rows
    }


def create_vehicle(
    *, uow: UnitOfWork, principal: Principal, hauler_id: str, data: VehicleIn
) -> Vehicle:
    """Register a vehicle to a hauler."""
    hauler = managed_party(uow=uow, principal=principal, party_id=hauler_id)
    if hauler.kind != PartyKind.HAULER:
        raise Invalid(f"party {hauler_id} is a {hauler.kind}, not a hauler", field="hauler_id")
    if uow.session.scalar(select(Vehicle.id).where(Vehicle.plate == data.plate)) is not None:
        raise Conflict(f"plate {data.plate} is already registered", field="plate")
    vehicle = Vehicle(
        id=str(uuid.uuid4()),
        hauler_id=hauler_id,
        plate=data.plate,
        capacity_kg=data.capacity_kg,
        created_at=utcnow(),
    )
    uow.session.add(vehicle)
    uow.commit()
    return vehicle


def list_vehicles(*, uow: UnitOfWork, principal: Principal, hauler_id: str) -> list[Vehicle]:
    """A hauler's vehicles."""
    visible_party(uow=uow, principal=principal, party_id=hauler_id)
    query = select(Vehicle).where(Vehicle.hauler_id == hauler_id).order_by(Vehicle.plate)
    return list(uow.session.scalars(query))


def register_device(*, uow: UnitOfWork, principal: Principal, data: DeviceIn) -> Device:
    """Register a device and bind it to a vehicle of the caller's (or any, for admins)."""
    vehicle = uow.session.get(Vehicle, data.vehicle_id)
    if vehicle is None:
        raise NotFound(f"no vehicle {data.vehicle_id}", field="vehicle_id")
    managed_party(uow=uow, principal=principal, party_id=vehicle.hauler_id)
    raw = decode_public_key(data.public_key, field="public_key")
    if uow.session.get(Device, data.device_id) is not None:
        raise Conflict(f"device {data.device_id} is already registered", field="device_id")
    device = Device(
        device_id=data.device_id,
        vehicle_id=vehicle.id,
        public_key=data.public_key,
        key_id=key_id(raw),
        active=True,
        registered_at=utcnow(),
    )
    uow.session.add(device)
    uow.flush()
    uow.commit()
    return device


def get_device(*, uow: UnitOfWork, principal: Principal, device_id: str) -> Device:
    """A device, visible to admins, regulators and its vehicle's hauler."""
    device = uow.session.get(Device, device_id)
    vehicle = uow.session.get(Vehicle, device.vehicle_id) if device and device.vehicle_id else None
    if device is None or vehicle is None:
        raise NotFound(f"no device {device_id}")
    visible_party(uow=uow, principal=principal, party_id=vehicle.hauler_id)
    return device


def create_permit(*, uow: UnitOfWork, principal: Principal, site_id: str, data: PermitIn) -> Permit:
    """Record a disposal site's licence (admins, or regulators of the site's region)."""
    site = visible_party(uow=uow, principal=principal, party_id=site_id)
    if not in_region_scope(principal, site.region_code):
        raise Forbidden("only a regulator of the site's region may record its permit")
    if site.kind != PartyKind.DISPOSAL_SITE:
        raise Invalid(f"party {site_id} is a {site.kind}, not a disposal site", field="site_id")
    codes = [
        validate_waste_code(c, field=f"waste_codes[{i}]") for i, c in enumerate(data.waste_codes)
    ]
    if len(set(codes)) != len(codes):
        raise Invalid("waste codes repeat", field="waste_codes")
    if data.valid_until <= data.valid_from:
        raise Invalid("valid_until must be after valid_from", field="valid_until")
    area = geo.validate_area(data.area, field="area")
    if uow.session.scalar(select(Permit.id).where(Permit.number == data.number)) is not None:
        raise Conflict(f"permit {data.number} exists", field="number")
    permit = Permit(
        id=str(uuid.uuid4()),
        site_id=site_id,
        number=data.number,
        waste_codes=codes,
        annual_capacity_kg=data.annual_capacity_kg,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        area=area,
        revoked=False,
        created_at=utcnow(),
    )
    uow.session.add(permit)
    uow.commit()
    return permit


def list_permits(*, uow: UnitOfWork, principal: Principal, site_id: str) -> list[Permit]:
    """A site's permits."""
    visible_party(uow=uow, principal=principal, party_id=site_id)
    query = select(Permit).where(Permit.site_id == site_id).order_by(Permit.valid_from)
    return list(uow.session.scalars(query))


def create_zone(*, uow: UnitOfWork, principal: Principal, data: ZoneIn) -> RestrictedZone:
    """Record a restricted zone (admins, or regulators of its region)."""
    validate_region_code(data.region_code, field="region_code")
    if not in_region_scope(principal, data.region_code):
        raise Forbidden("only a regulator of this region may record its restricted zones")
    zone = RestrictedZone(
        id=str(uuid.uuid4()),
        name=data.name,
        kind=data.kind,
        region_code=data.region_code,
        area=geo.validate_area(data.area, field="area"),
        notes=data.notes,
        created_at=utcnow(),
    )
    uow.session.add(zone)
    uow.commit()
    return zone


def list_zones(*, uow: UnitOfWork, region_prefix: str | None) -> list[RestrictedZone]:
    """Restricted zones, optionally within a region prefix."""
    query = select(RestrictedZone).order_by(RestrictedZone.region_code, RestrictedZone.name)
    if region_prefix:
        query = query.where(RestrictedZone.region_code.startswith(region_prefix, autoescape=True))
    return list(uow.session.scalars(query))


def count_parties(*, uow: UnitOfWork) -> int:
    """How many parties are registered."""
    return int(uow.session.scalar(select(func.count()).select_from(Party)) or 0)


def _new_key(*, uow: UnitOfWork, party_id: str, public_key: str, valid_from: datetime) -> PartyKey:
    raw = decode_public_key(public_key, field="public_key")
    kid = key_id(raw)
    if uow.session.get(PartyKey, kid) is not None:
        raise Conflict(f"key {kid} is already registered", field="public_key")
    key = PartyKey(
        key_id=kid,
        party_id=party_id,
        public_key=public_key,
        valid_from=valid_from,
        valid_until=None,
        status="active",
        created_at=utcnow(),
    )
    uow.session.add(key)
    uow.flush()
    return key


def _own_key(*, uow: UnitOfWork, party_id: str, key_id: str) -> PartyKey:
    key = uow.session.get(PartyKey, key_id)
    if key is None or key.party_id != party_id:
        raise NotFound(f"party {party_id} has no key {key_id}", field="key_id")
    return key
