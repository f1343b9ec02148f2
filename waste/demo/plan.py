"""The demo's county and each day's labelled trips, registered through the API.

The county's parties (producers, three licensed disposal sites, hauliers, a regulator)
and its drinking-water protection zone come from the state's seed and stay the same
from day to day; each day brings its own trucks (new plates and devices, registered
by their hauliers) so that a continued demo never has one truck in two days' trips at
once. A day is a ``devices.scenarios`` corpus that ends a minute before it is played,
so every fix lies in the past when it reaches the server, however compressed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.registrar import RegistrationError, Registry, register_county
from devices.scenario_model import Corpus
from devices.scenarios import make_corpus
from devices.world import County, Truck, make_county
from waste.clock import utcnow
from waste.demo.datadir import DemoState
from waste.demo.options import DemoOptions

__all__ = ["Day", "party_names", "plan_day", "register_day"]

BASE_TRUCKS_PER_HAULER = 2


@dataclass
class Day:
    """One day of the demo: its county (with the day's trucks), trips and registry."""

    number: int
    county: County
    corpus: Corpus
    registry: Registry | None = None


def _county(state: DemoState, *, seed: Any, trucks_per_hauler: int, tag: str) -> County:
    return make_county(
        random.Random(seed),
        lat0=state.lat,
        lon0=state.lon,
        region_code=state.region_code,
        name=state.name,
        trucks_per_hauler=trucks_per_hauler,
        tag=tag,
    )


def plan_day(state: DemoState, options: DemoOptions, number: int) -> Day:
    """Day ``number`` (from 1): the county with that day's trucks, and its corpus."""
    base = _county(state, seed=state.seed, trucks_per_hauler=BASE_TRUCKS_PER_HAULER, tag=state.tag)
    per_hauler = max(BASE_TRUCKS_PER_HAULER, math.ceil(options.trips / 24))
    fleet = _county(
        state,
        seed=f"{state.seed}/day/{number}",
        trucks_per_hauler=per_hauler,
        tag=f"{state.tag}{number:02d}"[:6],
    )
    name = base.name if number == 1 else f"{base.name} day {number}"  # manifest ids differ
    county = replace(base, trucks=fleet.trucks, name=name)
    corpus = make_corpus(
        options.trips,
        seed=state.seed * 1009 + number,
        incident_share=options.incidents,
        county=county,
        kinds=options.kinds,
        end=utcnow() - timedelta(minutes=1),
    )
    return Day(number, county, corpus)


def _ok(resp: Any, what: str) -> dict[str, Any]:
    if resp.status_code >= 400:
        raise RegistrationError(f"{what}: {resp.status_code} {resp.text[:500]}")
    body: dict[str, Any] = resp.json()
    return body


def _register_trucks(http: Any, registry: Registry, trucks: tuple[Truck, ...]) -> None:
    """Each truck registered by its hauler: the vehicle, then its device's public key."""
    for truck in trucks:
        headers = {"Authorization": f"Bearer {registry.tokens[truck.hauler]}"}
        hauler_id = registry.ids[truck.hauler]
        vehicle = _ok(
            http.post(
                f"/v1/parties/{hauler_id}/vehicles",
                json={"plate": truck.plate, "capacity_kg": truck.capacity_kg},
                headers=headers,
            ),
            f"vehicle {truck.plate}",
        )
        registry.vehicles[truck.key] = vehicle["id"]
        device = {
            "device_id": truck.device_id,
            "public_key": truck.public_key,
            "vehicle_id": vehicle["id"],
        }
        _ok(http.post("/v1/devices", json=device, headers=headers), f"device {truck.device_id}")


def _party_keys(county: County) -> dict[str, Ed25519PrivateKey]:
    keys = {p.key: p.private_key() for p in (*county.producers, *county.sites)}
    keys.update({h.key: h.private_key() for h in county.haulers})
    keys["regulator"] = Ed25519PrivateKey.from_private_bytes(county.regulator_seed)
    return keys


def register_day(http: Any, admin_token: str, state: DemoState, day: Day) -> Registry:
    """Register the day: the whole county on a fresh state, else only the day's trucks.

    Updates ``state`` (ids, tokens, vehicles, days) in place; ``RegistrationError`` if
    the server refuses something."""
    if not state.ids:
        registry = register_county(http, admin_token, day.county, serial=state.serial)
        state.ids, state.tokens = dict(registry.ids), dict(registry.tokens)
    else:
        registry = Registry(
            http,
            day.county,
            ids=dict(state.ids),
            tokens=dict(state.tokens),
            keys=_party_keys(day.county),
        )
        _register_trucks(http, registry, day.county.trucks)
    state.vehicles.update(registry.vehicles)
    state.days = day.number
    day.registry = registry
    return registry


def party_names(county: County) -> dict[str, str]:
    """County key → the party's name (for the tokens file and the display)."""
    names = {p.key: p.name for p in (*county.producers, *county.sites)}
    names.update({h.key: h.name for h in county.haulers})
    names["regulator"] = f"{county.name.split(' day ')[0]} ecology bureau"
    return names
