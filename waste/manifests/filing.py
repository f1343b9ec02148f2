"""Checks against the registry when an event is appended: permits, vehicles, devices, routes.

The state machine (``domain``) checks what the chain alone decides; these
checks need the registry: that the destination holds a valid permit for every
waste code with capacity left this year, that the vehicle belongs to the
hauler and can carry the load, that the device is mounted on that vehicle,
that the route starts at the producer and ends inside the destination, and
that it avoids restricted zones unless the manifest says why.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from waste.errors import FilingRejected
from waste.ledger.envelope import EventBody
from waste.manifests import routes
from waste.manifests.domain import Custody, ManifestState
from waste.manifests.events import Filing, Handover, Pickup, Rejection
from waste.manifests.models import Manifest
from waste.registry.domain import PartyKind
from waste.registry.models import Device, Party, Permit, Vehicle
from waste.uow import UnitOfWork

ACTIVE_STATES = (
    ManifestState.FILED,
    ManifestState.IN_TRANSIT,
    ManifestState.RECEIVED,
    ManifestState.DISPOSED,
)


def check_event(
    *, uow: UnitOfWork, custody: Custody | None, updated: Custody, body: EventBody, now: datetime
) -> None:
    """Raise ``FilingRejected`` (naming the field) if the registry forbids this event."""
    data = updated.history[-1].data
    if isinstance(data, Filing):
        _check_filing(uow=uow, filing=data, now=now)
    elif isinstance(data, Pickup):
        _check_vehicle_device(
            uow=uow,
            hauler=data.hauler,
            plate=data.vehicle,
            device_id=data.device_id,
            mass_kg=data.mass_kg,
        )
    elif isinstance(data, Handover):
        _party(uow, data.to_hauler, PartyKind.HAULER, "data.to_hauler")
        _check_vehicle_device(
            uow=uow,
            hauler=data.to_hauler,
            plate=data.vehicle,
            device_id=data.device_id,
            mass_kg=data.mass_kg,
        )
    elif isinstance(data, Rejection) and data.redirect_site is not None:
        codes = [w.code for w in updated.filing.wastes]
        _party(uow, data.redirect_site, PartyKind.DISPOSAL_SITE, "data.redirect_site")
        _permit_covering(
            uow=uow, site_id=data.redirect_site, codes=codes, on=now, field="data.redirect_site"
        )


def _check_filing(*, uow: UnitOfWork, filing: Filing, now: datetime) -> None:
    producer = _party(uow, filing.producer, PartyKind.PRODUCER, "data.producer")
    _party(uow, filing.hauler, PartyKind.HAULER, "data.hauler")
    _party(uow, filing.destination, PartyKind.DISPOSAL_SITE, "data.destination")
    vehicle = uow.session.scalar(select(Vehicle).where(Vehicle.plate == filing.vehicle))
    if vehicle is None:
        raise FilingRejected(f"no vehicle with plate {filing.vehicle}", field="data.vehicle")
    if vehicle.hauler_id != filing.hauler:
        raise FilingRejected(f"vehicle {filing.vehicle} is not the hauler's", field="data.vehicle")
    total = sum(w.mass_kg for w in filing.wastes)
    if total > vehicle.capacity_kg:
        raise FilingRejected(
            f"declared {total:g} kg exceeds the vehicle's capacity of {vehicle.capacity_kg:g} kg",
            field="data.wastes",
        )
    codes = [w.code for w in filing.wastes]
    permits = _permit_covering(
        uow=uow, site_id=filing.destination, codes=codes, on=now, field="data.destination"
    )
    _check_capacity(uow=uow, site_id=filing.destination, permits=permits, adding_kg=total, now=now)
    routes.check_filing_route(uow=uow, filing=filing, producer=producer, permits=permits)


def _party(uow: UnitOfWork, party_id: str, kind: PartyKind, field: str) -> Party:
    party = uow.session.get(Party, party_id)
    if party is None:
        raise FilingRejected(f"no party {party_id}", field=field)
    if party.kind != kind:
        raise FilingRejected(f"party {party_id} is a {party.kind}, not a {kind}", field=field)
    return party


def _permit_covering(
    *, uow: UnitOfWork, site_id: str, codes: list[str], on: datetime, field: str
) -> list[Permit]:
    day = on.astimezone(UTC).date()
    permits = list(
        uow.session.scalars(
            select(Permit).where(
                Permit.site_id == site_id,
                Permit.revoked.is_(False),
                Permit.valid_from <= day,
                Permit.valid_until >= day,
            )
        )
    )
    if not permits:
        raise FilingRejected(f"site {site_id} holds no permit valid on {day}", field=field)
    licensed = {code for p in permits for code in p.waste_codes}
    missing = [c for c in codes if c not in licensed]
    if missing:
        raise FilingRejected(
            f"site {site_id} is not licensed for {', '.join(missing)}", field=field
        )
    return permits


def _check_capacity(
    *, uow: UnitOfWork, site_id: str, permits: list[Permit], adding_kg: float, now: datetime
) -> None:
    capacity = max(p.annual_capacity_kg for p in permits)
    year_start = datetime(now.year, 1, 1, tzinfo=UTC)
    used = uow.session.scalar(
        select(
            func.coalesce(func.sum(func.coalesce(Manifest.received_kg, Manifest.declared_kg)), 0)
        ).where(
            Manifest.destination_id == site_id,
            Manifest.filed_at >= year_start,
            Manifest.state.in_([str(s) for s in ACTIVE_STATES]),
        )
    )
    if float(used or 0) + adding_kg > capacity:
        raise FilingRejected(
            f"site {site_id} has {max(capacity - float(used or 0), 0):g} kg of licensed capacity "
            f"left this year; the manifest declares {adding_kg:g} kg",
            field="data.destination",
        )


def _check_vehicle_device(
    *, uow: UnitOfWork, hauler: str, plate: str, device_id: str, mass_kg: float
) -> None:
    vehicle = uow.session.scalar(select(Vehicle).where(Vehicle.plate == plate))
    if vehicle is None or vehicle.hauler_id != hauler:
        raise FilingRejected(f"vehicle {plate} is not registered to {hauler}", field="data.vehicle")
    if mass_kg > vehicle.capacity_kg:
        raise FilingRejected(
            f"{mass_kg:g} kg exceeds the vehicle's capacity of {vehicle.capacity_kg:g} kg",
            field="data.mass_kg",
        )
    device = uow.session.get(Device, device_id)
    if device is None or not device.active or device.vehicle_id != vehicle.id:
        raise FilingRejected(
            f"device {device_id} is not mounted on vehicle {plate}", field="data.device_id"
        )
