"""An example registry: a county (Yiwu, Zhejiang) with producers, haulers, sites and a regulator.

Loaded by ``waste demo`` and ``waste serve --example`` on an empty database,
so a newcomer has something to call at once. Private keys are written under
``<data_dir>/example-keys`` and the tokens printed, for trying the API by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from waste.auth import service as auth_service
from waste.auth.tokens import Principal
from waste.config import Settings
from waste.ledger.keys import generate_private_key, public_key_b64, save_private_key
from waste.registry import service
from waste.registry.domain import PartyKind, Role, uscc_check_character
from waste.registry.schemas import DeviceIn, KeyIn, PartyIn, PermitIn, VehicleIn, ZoneIn
from waste.uow import UnitOfWork

ADMIN = Principal(role=Role.ADMIN)
REGION = "330782"  # Yiwu, Jinhua, Zhejiang


def _uscc(serial: int) -> str:
    body = f"91{REGION}MA2{serial:06d}"
    return body + uscc_check_character(body)


def box(lon: float, lat: float, half_deg: float = 0.002) -> dict[str, Any]:
    """A small square GeoJSON polygon around a point."""
    w, e = round(lon - half_deg, 6), round(lon + half_deg, 6)
    s, n = round(lat - half_deg, 6), round(lat + half_deg, 6)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


@dataclass
class ExampleParty:
    """One party of the example, with its token and key file."""

    id: str
    kind: str
    name: str
    token: str
    key_path: Path
    extra: dict[str, Any] = field(default_factory=dict)


PARTIES: tuple[tuple[PartyKind, str, tuple[float, float]], ...] = (
    (PartyKind.PRODUCER, "Yiwu Precision Plating Co.", (120.0752, 29.3061)),
    (PartyKind.PRODUCER, "Fotang Printed Circuits Ltd.", (120.0021, 29.2043)),
    (PartyKind.PRODUCER, "Suxi Chemical Coatings Co.", (120.1512, 29.4207)),
    (PartyKind.HAULER, "Zhejiang Green Hazmat Logistics", (120.0601, 29.2950)),
    (PartyKind.HAULER, "Jinhua Safe Transport Co.", (119.6520, 29.0790)),
    (PartyKind.DISPOSAL_SITE, "Jinhua Hazardous Waste Disposal Centre", (119.7170, 29.1400)),
    (PartyKind.DISPOSAL_SITE, "Yiwu Eco Incineration Plant", (120.1900, 29.2500)),
    (PartyKind.REGULATOR, "Yiwu Ecology and Environment Bureau", (120.0750, 29.3050)),
)


def load(*, uow_factory: Any, settings: Settings) -> list[ExampleParty] | None:
    """Create the example registry unless the database already has parties."""
    with UnitOfWork(uow_factory) as uow:
        if service.count_parties(uow=uow) > 0:
            return None
    keys_dir = settings.data_dir / "example-keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    created: list[ExampleParty] = []
    for serial, (kind, name, (lon, lat)) in enumerate(PARTIES, start=1):
        with UnitOfWork(uow_factory) as uow:
            party = service.create_party(
                uow=uow,
                data=PartyIn(
                    kind=kind,
                    name=name,
                    uscc=_uscc(serial),
                    region_code=REGION,
                    site=box(lon, lat),
                ),
            )
        private = generate_private_key()
        key_path = keys_dir / f"{kind.value}-{serial}.pem"
        save_private_key(private, key_path)
        public, _ = public_key_b64(private)
        with UnitOfWork(uow_factory) as uow:
            service.register_key(
                uow=uow, principal=ADMIN, party_id=party.id, data=KeyIn(public_key=public)
            )
        with UnitOfWork(uow_factory) as uow:
            regions = [REGION] if kind is PartyKind.REGULATOR else []
            _, token = auth_service.issue_token(
                uow=uow,
                role=Role(kind.value),
                party_id=party.id,
                regions=regions,
                label="example",
                expires_at=None,
            )
        entry = ExampleParty(party.id, kind.value, name, token, key_path)
        if kind is PartyKind.HAULER:
            entry.extra = _vehicles(uow_factory, party.id, serial, keys_dir)
        if kind is PartyKind.DISPOSAL_SITE:
            entry.extra = _permit(uow_factory, party.id, serial, lon, lat)
        created.append(entry)
    with UnitOfWork(uow_factory) as uow:
        service.create_zone(
            uow=uow,
            principal=ADMIN,
            data=ZoneIn(
                name="Badu Reservoir drinking-water source protection area",
                region_code=REGION,
                area=box(120.1100, 29.3600, 0.012),
            ),
        )
    return created


def _vehicles(uow_factory: Any, hauler_id: str, serial: int, keys_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"vehicles": []}
    for n in range(2):
        plate = f"浙G{serial}{n:01d}7{serial}{n}A"
        with UnitOfWork(uow_factory) as uow:
            vehicle = service.create_vehicle(
                uow=uow,
                principal=ADMIN,
                hauler_id=hauler_id,
                data=VehicleIn(plate=plate, capacity_kg=18_000),
            )
        device_key = generate_private_key()
        device_id = f"DEV-{serial:02d}{n:02d}"
        save_private_key(device_key, keys_dir / f"{device_id}.pem")
        public, _ = public_key_b64(device_key)
        with UnitOfWork(uow_factory) as uow:
            service.register_device(
                uow=uow,
                principal=ADMIN,
                data=DeviceIn(device_id=device_id, public_key=public, vehicle_id=vehicle.id),
            )
        out["vehicles"].append({"plate": plate, "vehicle_id": vehicle.id, "device_id": device_id})
    return out


def _permit(uow_factory: Any, site_id: str, serial: int, lon: float, lat: float) -> dict[str, Any]:
    with UnitOfWork(uow_factory) as uow:
        permit = service.create_permit(
            uow=uow,
            principal=ADMIN,
            site_id=site_id,
            data=PermitIn(
                number=f"浙危废经第07{serial:02d}号",
                waste_codes=["336-064-17", "900-041-49", "900-249-08", "397-005-22", "264-011-12"],
                annual_capacity_kg=30_000_000,
                valid_from=date(2025, 1, 1),
                valid_until=date(2029, 12, 31),
                area=box(lon, lat),
            ),
        )
    return {"permit": permit.number}


def load_into_app(app: FastAPI) -> None:
    """Start-up hook: load the example registry and print how to use it."""
    settings: Settings = app.state.settings
    tokens_file = settings.data_dir / "example-keys" / "tokens.txt"
    created = load(uow_factory=app.state.session_factory, settings=settings)
    if created is None:
        print(f"Example registry already loaded; its tokens are in {tokens_file}")
        return
    lines = [f"{p.kind:<14} {p.name:<42} {p.id} {p.token}" for p in created]
    tokens_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokens_file.chmod(0o600)
    print("Example registry loaded (kind, name, party id, token):")
    for line in lines:
        print("  " + line)
    print(f"Tokens and private keys are in {tokens_file.parent}")
