"""JSON views of manifests for the API: list items, the detail with its timeline, overdue flags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waste.clock import format_utc
from waste.manifests.custody import Custody, Leg
from waste.manifests.deadlines import OverdueFlag
from waste.manifests.history import timeline
from waste.manifests.models import Manifest
from waste.registry.models import Party


def party_ref(party_id: str | None, parties: Mapping[str, Party]) -> dict[str, Any] | None:
    """``{"id", "name", "kind"}`` of a party (name and kind null if it is not in ``parties``)."""
    if party_id is None:
        return None
    party = parties.get(party_id)
    return {
        "id": party_id,
        "name": None if party is None else party.name,
        "kind": None if party is None else party.kind,
    }


def flag_json(flag: OverdueFlag | None) -> dict[str, Any] | None:
    """An overdue flag as JSON: ``{"kind", "due", "late_by_s"}``."""
    if flag is None:
        return None
    return {
        "kind": str(flag.kind),
        "due": format_utc(flag.due),
        "late_by_s": int(flag.late_by.total_seconds()),
    }


def list_item(
    m: Manifest, flag: OverdueFlag | None, parties: Mapping[str, Party]
) -> dict[str, Any]:
    """What a manifest list shows of one manifest (from its row: no replay)."""
    return {
        "id": m.id,
        "number": m.number,
        "state": m.state,
        "region_code": m.region_code,
        "producer": party_ref(m.producer_id, parties),
        "hauler": party_ref(m.hauler_id, parties),
        "destination": party_ref(m.destination_id, parties),
        "vehicle": m.vehicle_plate,
        "waste_codes": list(m.waste_codes),
        "declared_kg": m.declared_kg,
        "received_kg": m.received_kg,
        "filed_at": format_utc(m.filed_at),
        "deliver_by": format_utc(m.deliver_by),
        "updated_at": format_utc(m.updated_at),
        "overdue": flag_json(flag),
    }


def _leg(leg: Leg, parties: Mapping[str, Party]) -> dict[str, Any]:
    return {
        "index": leg.index,
        "hauler": party_ref(leg.hauler, parties),
        "vehicle": leg.vehicle,
        "device_id": leg.device_id,
        "seal_id": leg.seal_id,
        "opened_at": format_utc(leg.opened_at),
        "opened_by": str(leg.opened_by),
        "closed_at": None if leg.closed_at is None else format_utc(leg.closed_at),
        "closed_by": None if leg.closed_by is None else str(leg.closed_by),
        "destination": party_ref(leg.destination, parties),
        "mass_kg_at_open": leg.mass_kg_at_open,
    }


def detail(
    m: Manifest, c: Custody, flag: OverdueFlag | None, parties: Mapping[str, Party]
) -> dict[str, Any]:
    """A manifest's full summary: parties, wastes, legs, masses, deadlines and timeline."""
    f = c.filing
    masses = c.masses
    return {
        **list_item(m, flag, parties),
        "filed_hauler": party_ref(f.hauler, parties),
        "wastes": [
            {
                "code": w.code,
                "name": w.name,
                "hazards": [str(h) for h in w.hazards],
                "form": str(w.form),
                "packaging": w.packaging,
                "containers": w.containers,
                "mass_kg": w.mass_kg,
            }
            for w in f.wastes
        ],
        "pickup_window": {"from": format_utc(f.pickup_from), "to": format_utc(f.pickup_to)},
        "corridor_m": f.corridor_m,
        "route_positions": len(f.route["coordinates"]),
        "notes": f.notes,
        "haulers": [party_ref(h, parties) for h in c.haulers],
        "destinations": [party_ref(d, parties) for d in c.destinations],
        "legs": [_leg(leg, parties) for leg in c.legs],
        "masses": {
            "declared_kg": masses.declared_kg,
            "picked_up_kg": masses.picked_up_kg,
            "handed_over_kg": list(masses.handed_over_kg),
            "rejected_kg": list(masses.rejected_kg),
            "received_kg": masses.received_kg,
            "accepted_kg": masses.accepted_kg,
            "refused_kg": masses.refused_kg,
            "disposed_kg": masses.disposed_kg,
        },
        "received_codes": None if c.received_codes is None else list(c.received_codes),
        "disposal": None
        if c.disposal is None or c.disposed_at is None
        else {
            "operation": c.disposal.operation,
            "mass_kg": c.disposal.mass_kg,
            "at": format_utc(c.disposed_at),
        },
        "cancellation": None if c.cancellation is None else {"reason": c.cancellation.reason},
        "rejections": [
            {"reason": r.reason, "next": str(r.next), "redirect_site": r.redirect_site}
            for r in c.rejections
        ],
        "head": {"seq": m.head_seq, "event_hash": m.head_hash},
        "timeline": [
            {
                "seq": e.seq,
                "at": format_utc(e.at),
                "type": str(e.event_type),
                "what": e.what,
                "actor": party_ref(e.actor, parties),
                "signers": [party_ref(s, parties) for s in e.signers],
                "state": str(e.state),
                "masses": e.masses,
                "delta_kg": e.delta_kg,
            }
            for e in timeline(c)
        ],
    }


def party_ids(c: Custody) -> set[str]:
    """Every party a manifest's detail names."""
    ids = {c.producer, c.filing.hauler, *c.haulers, *c.destinations}
    ids |= {leg.hauler for leg in c.legs} | {leg.destination for leg in c.legs}
    ids |= {e.actor for e in c.history} | {s for e in c.history for s in e.signers}
    return ids
