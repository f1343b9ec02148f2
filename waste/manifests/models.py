"""Tables of manifests: the current head and derived state, parties, serial numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from waste.db import Base, UTCDateTime


class Manifest(Base):
    """A transfer manifest: its chain head and what queries need of its derived state."""

    __tablename__ = "manifests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(14), unique=True)
    producer_id: Mapped[str] = mapped_column(ForeignKey("parties.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    head_seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    hauler_id: Mapped[str] = mapped_column(ForeignKey("parties.id"), index=True)
    destination_id: Mapped[str] = mapped_column(ForeignKey("parties.id"), index=True)
    vehicle_plate: Mapped[str] = mapped_column(String(20), index=True)
    waste_codes: Mapped[list[str]] = mapped_column(JSON)
    declared_kg: Mapped[float] = mapped_column(Float)
    received_kg: Mapped[float | None] = mapped_column(Float)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    deliver_by: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class ManifestParty(Base):
    """A party's role on a manifest, for 'my manifests' queries and access checks."""

    __tablename__ = "manifest_parties"

    manifest_id: Mapped[str] = mapped_column(ForeignKey("manifests.id"), primary_key=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class ManifestSerial(Base):
    """The last serial number used in one region (first 4 digits) and year."""

    __tablename__ = "manifest_serials"

    region4: Mapped[str] = mapped_column(String(4), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)
