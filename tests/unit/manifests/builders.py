"""Parties, event data and short-hands for driving the manifest state machine in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from waste.manifests.domain import Custody, EventRecord, apply_event

MANIFEST_ID = "0b9c8f1e-4a53-4d1a-9a61-2f0f0d6a1c11"
PRODUCER = "P-1"
HAULERS = ("H-1", "H-2", "H-3", "H-4", "H-5", "H-6")
HAULER = HAULERS[0]
SITES = ("S-1", "S-2", "S-3", "S-4", "S-5", "S-6")
SITE = SITES[0]
REGULATOR = "R-1"
OTHER_PRODUCER = "P-2"
VEHICLE = "浙A12345"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday

KINDS: dict[str, str] = {
    PRODUCER: "producer",
    OTHER_PRODUCER: "producer",
    REGULATOR: "regulator",
    **dict.fromkeys(HAULERS, "hauler"),
    **dict.fromkeys(SITES, "disposal_site"),
}

ROUTE: dict[str, Any] = {
    "type": "LineString",
    "coordinates": [[120.0752, 29.3061], [120.1500, 29.3400], [120.2100, 29.3900]],
}
ROUTE_2: dict[str, Any] = {
    "type": "LineString",
    "coordinates": [[120.2100, 29.3900], [120.3000, 29.4500]],
}
REST_AREA: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [
        [[120.1, 29.3], [120.11, 29.3], [120.11, 29.31], [120.1, 29.31], [120.1, 29.3]]
    ],
}


def signers(*parties: str) -> dict[str, str]:
    """The signer map (party id → kind) of ``parties`` as the registry knows them."""
    return {p: KINDS[p] for p in parties}


def ts(moment: datetime) -> str:
    """A protocol timestamp."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def filed_data(**over: Any) -> dict[str, Any]:
    """Valid ``filed`` data: two wastes (1,200 kg declared) from P-1 via H-1 to S-1."""
    data: dict[str, Any] = {
        "producer": PRODUCER,
        "hauler": HAULER,
        "vehicle": VEHICLE,
        "destination": SITE,
        "wastes": [
            {
                "code": "900-041-49",
                "name": "Oily rags and filters",
                "hazards": ["T", "In"],
                "form": "solid",
                "packaging": "200 L steel drum",
                "containers": 4,
                "mass_kg": 800,
            },
            {
                "code": "900-249-08",
                "name": "Spent mineral oil",
                "hazards": ["T", "I"],
                "form": "liquid",
                "packaging": "IBC",
                "containers": 1,
                "mass_kg": 400.0,
            },
        ],
        "route": ROUTE,
        "corridor_m": 100,
        "pickup_window": {"from": ts(T0), "to": ts(T0 + timedelta(hours=8))},
        "deliver_by": ts(T0 + timedelta(days=1)),
        "rest_areas": [REST_AREA],
        "notes": "Gate 3, ask for Mr Wang.",
    }
    data.update(over)
    return data


def pickup_data(**over: Any) -> dict[str, Any]:
    """Valid ``picked_up`` data for the default filing."""
    data: dict[str, Any] = {
        "hauler": HAULER,
        "vehicle": VEHICLE,
        "device_id": "DEV-0001",
        "seal_id": "SEAL-1",
        "mass_kg": 1195.5,
    }
    data.update(over)
    return data


def handover_data(frm: str, to: str, n: int = 2, **over: Any) -> dict[str, Any]:
    """Valid ``handed_over`` data from hauler ``frm`` to ``to``, vehicle and seal numbered ``n``."""
    data: dict[str, Any] = {
        "from_hauler": frm,
        "to_hauler": to,
        "vehicle": f"浙B0000{n}",
        "device_id": f"DEV-000{n}",
        "seal_id": f"SEAL-{n}",
        "mass_kg": 1195.0,
    }
    data.update(over)
    return data


def receipt_data(**over: Any) -> dict[str, Any]:
    """Valid ``received`` data: 1,194 kg weighed, all accepted, seal SEAL-1 intact."""
    data: dict[str, Any] = {
        "mass_kg": 1194.0,
        "accepted_kg": 1194.0,
        "refused_kg": 0,
        "seal_id": "SEAL-1",
        "seal_intact": True,
    }
    data.update(over)
    return data


def disposal_data(**over: Any) -> dict[str, Any]:
    """Valid ``disposed`` data: incinerated on land."""
    data: dict[str, Any] = {"operation": "D10", "mass_kg": 1100.0}
    data.update(over)
    return data


def step(
    custody: Custody | None,
    event_type: str,
    data: dict[str, Any],
    actor: str,
    parties: tuple[str, ...] | None = None,
    *,
    at: datetime | None = None,
) -> Custody:
    """Apply an event signed by ``parties`` (default: the actor alone)."""
    if at is None:
        at = T0 if custody is None else custody.last_at + timedelta(minutes=30)
    return apply_event(
        custody,
        event_type=event_type,
        actor=actor,
        at=at,
        data=data,
        signers=signers(*(parties or (actor,))),
        manifest_id=MANIFEST_ID,
    )


def filed(**over: Any) -> Custody:
    """A manifest just filed."""
    return step(None, "filed", filed_data(**over), PRODUCER)


def picked_up(**over: Any) -> Custody:
    """A manifest in transit on its first leg."""
    return step(filed(), "picked_up", pickup_data(**over), HAULER, (HAULER, PRODUCER))


def received(**over: Any) -> Custody:
    """A manifest received whole at S-1."""
    return step(picked_up(), "received", receipt_data(**over), SITE)


def record(
    event_type: str, data: dict[str, Any], actor: str, parties: tuple[str, ...], at: datetime
) -> EventRecord:
    """An ``EventRecord`` for replays."""
    return EventRecord(event_type, actor, at, data, signers(*parties), MANIFEST_ID)


def next_event(
    c: Custody | None, event_type: str, *, redirect: bool = False, refused_kg: float = 0.0
) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """Data, actor and signers of an event of ``event_type`` that ``c`` would accept if its state
    allowed it (with stand-in parties where the state names none)."""
    if c is None or event_type == "filed":
        return filed_data(), PRODUCER, (PRODUCER,)
    if event_type == "cancelled":
        return {"reason": "Order withdrawn"}, c.producer, (c.producer,)
    if event_type == "picked_up":
        return pickup_data(), c.filing.hauler, (c.filing.hauler, c.producer)
    if event_type == "handed_over":
        current = c.current_hauler or HAULER
        n = (HAULERS.index(current) + 1) % len(HAULERS)
        return handover_data(current, HAULERS[n], n + 1), current, (current, HAULERS[n])
    site = c.destination
    if event_type == "received":
        data = receipt_data(accepted_kg=1194.0 - refused_kg, refused_kg=refused_kg)
        if c.legs:
            data["seal_id"] = c.legs[-1].seal_id
        return data, site, (site,)
    if event_type == "rejected":
        if not redirect:
            return {"reason": "pH out of permit", "next": "return_to_producer"}, site, (site,)
        new_site = next(s for s in SITES if s not in c.destinations)
        data = {"reason": "Incinerator down", "next": "redirect", "redirect_site": new_site}
        return data, site, (site,)
    assert event_type == "disposed"
    site = c.received_by or site
    return disposal_data(mass_kg=min(1000.0, c.masses.accepted_kg or 1000.0)), site, (site,)
