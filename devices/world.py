"""The simulated world of a scenario: a county with producers, disposal sites, haulers,
their trucks and devices, and restricted zones, laid out in metres around a centre.

Everything is drawn from one ``random.Random``, keys included (Ed25519 seeds), so a
seed gives the same county, byte for byte. ``County.route`` draws a road between
two places that keeps clear of restricted zones (or, when asked, passes close by one).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from shapely.geometry import LineString, Point

from devices.geo import Path, circle_polygon, road_between, square_polygon, to_lonlat
from waste.ledger.keys import public_key_b64
from waste.tracking.geometry import LocalFrame

__all__ = ["WASTES", "County", "Place", "Truck", "WasteKind", "Zone", "make_county"]

XY = tuple[float, float]


@dataclass(frozen=True, slots=True)
class WasteKind:
    """A kind of waste a producer ships: one manifest line's fixed members."""

    code: str
    name: str
    hazards: tuple[str, ...]
    form: str
    packaging: str
    kg_per_container: float


WASTES: tuple[WasteKind, ...] = (
    WasteKind("336-064-17", "Electroplating sludge", ("T",), "sludge", "1 t bulk bag", 1000),
    WasteKind("900-041-49", "Oily rags and filters", ("T", "In"), "solid", "200 L drum", 180),
    WasteKind("900-249-08", "Waste mineral oil", ("T", "I"), "liquid", "IBC 1000 L", 880),
    WasteKind("397-005-22", "Copper etching residue", ("T",), "semi_solid", "200 L drum", 230),
    WasteKind("264-011-12", "Paint and ink waste", ("T", "I"), "semi_solid", "200 L drum", 200),
)
UNLICENSED_CODE = "772-006-18"
"""Incineration residues: on no site's permit in a generated county."""


@dataclass(frozen=True, slots=True)
class Place:
    """A producer's premises or a disposal site's licensed area."""

    key: str
    kind: str  # producer | disposal_site
    name: str
    x: float
    y: float
    lat: float
    lon: float
    area: dict[str, Any] = field(hash=False)
    key_seed: bytes = field(repr=False)
    waste_codes: tuple[str, ...] = ()
    """A disposal site's permit; a producer's wastes (indices into ``WASTES`` by code)."""

    def private_key(self) -> Ed25519PrivateKey:
        """The party's signing key (from its seed)."""
        return Ed25519PrivateKey.from_private_bytes(self.key_seed)


@dataclass(frozen=True, slots=True)
class Hauler:
    """A haulage company."""

    key: str
    name: str
    key_seed: bytes = field(repr=False)

    def private_key(self) -> Ed25519PrivateKey:
        """The hauler's signing key (from its seed)."""
        return Ed25519PrivateKey.from_private_bytes(self.key_seed)


@dataclass(frozen=True, slots=True)
class Truck:
    """A hauler's vehicle and the device mounted on it."""

    key: str
    hauler: str
    plate: str
    device_id: str
    lock_id: str
    capacity_kg: float
    key_seed: bytes = field(repr=False)

    def private_key(self) -> Ed25519PrivateKey:
        """The device's Ed25519 key (from its seed)."""
        return Ed25519PrivateKey.from_private_bytes(self.key_seed)

    @property
    def public_key(self) -> str:
        """b64 of the device's raw public key, as registered."""
        return public_key_b64(self.private_key())[0]


@dataclass(frozen=True, slots=True)
class Zone:
    """A restricted zone (a drinking-water protection area)."""

    key: str
    name: str
    x: float
    y: float
    radius_m: float
    area: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class County:
    """Everything a set of scenarios happens in."""

    name: str
    region_code: str
    lat0: float
    lon0: float
    producers: tuple[Place, ...]
    sites: tuple[Place, ...]
    haulers: tuple[Hauler, ...]
    trucks: tuple[Truck, ...]
    zones: tuple[Zone, ...]
    regulator_seed: bytes = field(repr=False, default=b"\0" * 32)

    @property
    def frame(self) -> LocalFrame:
        """The county's local metric frame."""
        return LocalFrame(self.lat0, self.lon0)

    def place(self, key: str) -> Place:
        """A producer or site by key."""
        for p in (*self.producers, *self.sites):
            if p.key == key:
                return p
        raise KeyError(key)

    def truck(self, key: str) -> Truck:
        """A truck by key."""
        return next(t for t in self.trucks if t.key == key)

    def device_key(self, device_id: str) -> Ed25519PrivateKey:
        """The private key of the device with this id (to sign its transmissions)."""
        return next(t for t in self.trucks if t.device_id == device_id).private_key()

    def lonlat(self, xy: Sequence[XY]) -> list[tuple[float, float]]:
        """Local metres to (lon, lat)."""
        return to_lonlat(self.frame, xy)

    def xy(self, lat: float, lon: float) -> XY:
        """(lon, lat) to local metres."""
        return self.frame.xy(lon, lat)

    def zone_distance(self, xy: Sequence[XY]) -> float:
        """Metres from a local polyline to the nearest zone edge (negative: it enters one)."""
        line = LineString(xy)
        best = math.inf
        for z in self.zones:
            d = float(shapely.distance(line, Point(z.x, z.y))) - z.radius_m
            best = min(best, d)
        return best

    def route(
        self,
        a: Place,
        b: Place,
        rng: random.Random,
        *,
        clearance_m: float = 600.0,
        via: Sequence[XY] = (),
    ) -> list[XY]:
        """A road from ``a`` to ``b`` (local metres) staying ``clearance_m`` from every zone."""
        for attempt in range(40):
            wiggle = 0.08 if attempt < 20 else 0.25
            extra = list(via)
            if attempt >= 10 and not via:  # swing around whatever is in the way
                mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
                length = math.hypot(b.x - a.x, b.y - a.y)
                side = rng.choice((-1, 1)) * rng.uniform(0.2, 0.6) * length
                extra = [(mx - side * (b.y - a.y) / length, my + side * (b.x - a.x) / length)]
            xy = road_between((a.x, a.y), (b.x, b.y), rng, via=extra, wiggle=wiggle)
            if via or self.zone_distance(xy) >= clearance_m:
                return xy
        raise RuntimeError(f"no road from {a.key} to {b.key} clears the zones")

    def path(self, xy: Sequence[XY]) -> Path:
        """A drivable path through local points."""
        return Path(self.lonlat(xy))


_PRODUCER_NAMES = (
    "Precision Plating",
    "Printed Circuits",
    "Chemical Coatings",
    "Auto Parts",
    "Textile Dyeing",
    "Hardware Works",
    "Battery Recycling",
    "Paint Works",
    "Machining Centre",
    "Leather Tannery",
)
_SITE_NAMES = ("Hazardous Waste Disposal Centre", "Eco Incineration Plant", "Solvent Recovery")


def _spread(
    rng: random.Random,
    n: int,
    radius: float,
    apart: float,
    avoid: Sequence[XY] = (),
    gap: float = 0,
) -> list[XY]:
    out: list[XY] = []
    for _ in range(n):
        for _ in range(2000):
            r, a = radius * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
            p = (r * math.cos(a), r * math.sin(a))
            if all(math.dist(p, q) >= apart for q in out) and all(
                math.dist(p, q) >= gap for q in avoid
            ):
                out.append(p)
                break
        else:
            raise RuntimeError("the county is too small for its places")
    return out


def make_county(
    rng: random.Random,
    *,
    lat0: float = 29.31,
    lon0: float = 120.07,
    radius_m: float = 20_000.0,
    producers: int = 8,
    sites: int = 3,
    haulers: int = 3,
    trucks_per_hauler: int = 3,
    zones: int = 1,
    name: str = "Simulated county",
    region_code: str = "330782",
    tag: str = "",
) -> County:
    """A county of ``radius_m`` around ``(lat0, lon0)``; not across the antimeridian.

    ``tag`` (up to 6 capitals or digits) goes into plates and device and lock ids, so that
    several simulated counties can share one registry."""
    if not re.fullmatch(r"[A-Z0-9]{0,6}", tag):
        raise ValueError("tag is up to 6 capital letters or digits")
    frame = LocalFrame(lat0, lon0)
    extent = radius_m + 3000
    _, lon_w = frame.to_lonlat([-extent], [0.0])
    _, lon_e = frame.to_lonlat([extent], [0.0])
    if float(lon_w[0]) > float(lon_e[0]) or abs(lat0) > 80:
        raise ValueError("a county must not straddle the antimeridian or reach the poles")
    site_xy = _spread(rng, sites, radius_m, radius_m * 0.6)
    prod_xy = _spread(rng, producers, radius_m, 2500, site_xy, 4000)
    codes = [w.code for w in WASTES]
    site_list = tuple(
        Place(
            f"site-{i}",
            "disposal_site",
            f"{_SITE_NAMES[i % 3]} {i + 1}",
            x,
            y,
            *_latlon(frame, x, y),
            square_polygon(frame, x, y, 250),
            rng.randbytes(32),
            tuple(codes),
        )
        for i, (x, y) in enumerate(site_xy)
    )
    prod_list = tuple(
        Place(
            f"producer-{i}",
            "producer",
            f"{_PRODUCER_NAMES[i % 10]} Co. {i + 1}",
            x,
            y,
            *_latlon(frame, x, y),
            square_polygon(frame, x, y, 150),
            rng.randbytes(32),
            (rng.choice(codes),),
        )
        for i, (x, y) in enumerate(prod_xy)
    )
    zone_list: list[Zone] = []
    zone_xy = _spread(rng, zones, radius_m * 0.8, 4000, [*site_xy, *prod_xy], 3500)
    for i, (x, y) in enumerate(zone_xy):
        r = rng.uniform(800, 1400)
        zone_list.append(
            Zone(
                f"zone-{i}",
                f"Reservoir {i + 1} drinking-water protection area",
                x,
                y,
                r,
                circle_polygon(frame, x, y, r),
            )
        )
    hauler_list = tuple(
        Hauler(f"hauler-{i}", f"Hazmat Logistics {i + 1}", rng.randbytes(32))
        for i in range(haulers)
    )
    truck_list = []
    for h in range(haulers):
        for k in range(trucks_per_hauler):
            n = h * trucks_per_hauler + k + 1
            truck_list.append(
                Truck(
                    f"truck-{n - 1}",
                    f"hauler-{h}",
                    f"浙G{tag or 'W'}{n:04d}",
                    f"SIM{tag}-{n:04d}",
                    f"LOCK{tag}-{n:04d}",
                    rng.choice((18_000.0, 25_000.0, 31_000.0)),
                    rng.randbytes(32),
                )
            )
    return County(
        f"{name} {tag}" if tag else name,
        region_code,
        lat0,
        lon0,
        prod_list,
        site_list,
        hauler_list,
        tuple(truck_list),
        tuple(zone_list),
        rng.randbytes(32),
    )


def _latlon(frame: LocalFrame, x: float, y: float) -> tuple[float, float]:
    lon, lat = frame.to_lonlat([x], [y])
    return round(float(lat[0]), 7), round(float(lon[0]), 7)
