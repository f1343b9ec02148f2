"""Request and response bodies of the registry API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from waste.registry.domain import PartyKind, Role

_SITE_EXAMPLE = {
    "type": "Polygon",
    "coordinates": [
        [[120.07, 29.30], [120.08, 29.30], [120.08, 29.31], [120.07, 29.31], [120.07, 29.30]]
    ],
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PartyIn(_In):
    """A party to register."""

    kind: PartyKind
    name: str = Field(min_length=1, max_length=200, examples=["Jinhua Plating Co., Ltd."])
    uscc: str = Field(
        description="18-character unified social credit code", examples=["91350100M000100Y43"]
    )
    region_code: str = Field(description="6-digit administrative region code", examples=["330702"])
    address: str | None = Field(default=None, max_length=300)
    site: dict[str, Any] | None = Field(
        default=None,
        description="The party's premises as a GeoJSON Point, Polygon or MultiPolygon",
        examples=[_SITE_EXAMPLE],
    )


class PartyOut(BaseModel):
    """A registered party."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: PartyKind
    name: str
    uscc: str
    region_code: str
    address: str | None
    site: dict[str, Any] | None
    created_at: datetime


class KeyIn(_In):
    """A public key to register to a party."""

    public_key: str = Field(description="b64 of the raw 32-byte Ed25519 public key")
    valid_from: datetime | None = Field(default=None, description="Default: now")


class KeyRotateIn(_In):
    """The new key that replaces an old one."""

    public_key: str = Field(description="b64 of the raw 32-byte Ed25519 public key")
    at: datetime | None = Field(default=None, description="When the old key ends; default now")


class KeyRevokeIn(_In):
    """A key to revoke, from the time it was (or may have been) compromised."""

    compromised_at: datetime = Field(description="Signatures at or after this time are void")
    reason: str = Field(min_length=1, max_length=300)


class KeyOut(BaseModel):
    """A party key and its validity window."""

    model_config = ConfigDict(from_attributes=True)

    key_id: str
    party_id: str
    public_key: str
    valid_from: datetime
    valid_until: datetime | None
    status: str
    ended_reason: str | None
    replaced_by: str | None


class VehicleIn(_In):
    """A hauler's vehicle."""

    plate: str = Field(min_length=2, max_length=20, examples=["浙G12345"])
    capacity_kg: float = Field(gt=0, le=200_000, examples=[18000])


class VehicleOut(BaseModel):
    """A registered vehicle."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    hauler_id: str
    plate: str
    capacity_kg: float


class DeviceIn(_In):
    """A vehicle terminal to register."""

    device_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", examples=["DEV-0001"])
    public_key: str = Field(description="b64 of the raw 32-byte Ed25519 public key")
    vehicle_id: str = Field(description="The vehicle it is mounted on")


class DeviceOut(BaseModel):
    """A registered device."""

    model_config = ConfigDict(from_attributes=True)

    device_id: str
    vehicle_id: str | None
    public_key: str
    key_id: str
    active: bool
    registered_at: datetime


class PermitIn(_In):
    """A disposal site's licence."""

    number: str = Field(min_length=1, max_length=64, examples=["浙危废经第0701号"])
    waste_codes: list[str] = Field(min_length=1, max_length=500, examples=[["900-041-49"]])
    annual_capacity_kg: float = Field(gt=0, le=1e10, examples=[5_000_000])
    valid_from: date
    valid_until: date
    area: dict[str, Any] = Field(
        description="The site's area: GeoJSON Polygon or MultiPolygon", examples=[_SITE_EXAMPLE]
    )


class PermitOut(BaseModel):
    """A permit."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    site_id: str
    number: str
    waste_codes: list[str]
    annual_capacity_kg: float
    valid_from: date
    valid_until: date
    area: dict[str, Any]
    revoked: bool


class ZoneIn(_In):
    """A restricted zone."""

    name: str = Field(
        min_length=1, max_length=200, examples=["Jinhua River source protection area"]
    )
    kind: str = Field(default="drinking_water_protection", max_length=40)
    region_code: str
    area: dict[str, Any] = Field(examples=[_SITE_EXAMPLE])
    notes: str | None = Field(default=None, max_length=2000)


class ZoneOut(BaseModel):
    """A restricted zone."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    region_code: str
    area: dict[str, Any]
    notes: str | None


class TokenIn(_In):
    """A token to issue."""

    role: Role
    party_id: str | None = None
    regions: list[str] = Field(default_factory=list, max_length=50)
    label: str = Field(default="", max_length=100)
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    """A token's public record."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    role: Role
    party_id: str | None
    regions: list[str]
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class IssuedToken(TokenOut):
    """A newly issued token, with its secret shown this once."""

    token: str


class WasteCategoryOut(BaseModel):
    """A category of the waste-code catalogue."""

    code: str
    name_zh: str
    name_en: str
    waste_class: str
    retired: bool


class WhoAmI(BaseModel):
    """The caller as the server sees it."""

    role: Role
    party_id: str | None
    regions: list[str]
