"""The ``data`` of each custody event type: its JSON members, and strict parsing into dataclasses.

Every error is ``waste.errors.Invalid`` (or a subclass) whose ``field`` is the
dotted path of the offending member, e.g. ``data.wastes[2].mass_kg``. Unknown
members are refused; numbers are finite JSON numbers, never booleans; masses
are kilograms, 0 < m ≤ 100 000 (a road load); times are protocol RFC 3339 UTC.
Party, device and seal ids are 1-64 characters of ``A-Za-z0-9._:-``.

``filed`` (by the producer)
    producer, hauler, destination   party ids (producer = the actor; all three distinct)
    vehicle                          plate of the vehicle that will collect (upper-cased)
    wastes                           1-50 lines of {code, name, hazards, form, packaging,
                                     containers, mass_kg}; code: ``NNN-NNN-NN`` (national
                                     hazardous waste list) or ``SWnn`` (general industrial);
                                     hazards ⊆ {T, C, I, R, In}, at least one for hazardous
                                     codes; form ∈ {solid, semi_solid, liquid, gas, sludge};
                                     containers: integer ≥ 1; mass_kg > 0 (total ≤ 100 000)
    route                            GeoJSON LineString, the declared route
    corridor_m                       half-width of the route corridor, 10-2000 m (default 50)
    pickup_window                    {from, to}, from < to; to after the filing's ``at``
    deliver_by                       after pickup_window.from
    restricted_zone_justification?   why the route may cross a restricted zone
    rest_areas?                      up to 20 GeoJSON Polygons where stops are planned
    notes?                           free text
``cancelled`` (producer): reason
``picked_up`` (hauler and producer): hauler (= the manifest's hauler), vehicle (= the
    manifest's vehicle), device_id, seal_id (e-lock applied), mass_kg (weighed)
``handed_over`` (outgoing and incoming hauler): from_hauler (= current hauler), to_hauler,
    vehicle (incoming), device_id, seal_id, mass_kg, location? {lat, lon},
    route? (LineString of the new leg; default: the previous leg's route)
``received`` (destination site): mass_kg (weighed), accepted_kg > 0, refused_kg ≥ 0
    (accepted + refused = weighed within 0.001 kg; a load refused whole is ``rejected``),
    seal_id (as found at the gate), seal_intact, waste_codes? (default: the manifest's)
``rejected`` (destination site): reason, next ∈ {return_to_producer, redirect};
    redirect_site (redirect only), route? (redirect only: the new leg),
    mass_kg? (weighed at the gate), seal_id? (if the site re-sealed after sampling)
``disposed`` (receiving site): operation (Basel / EU R1-R13, D1-D15), mass_kg ≤ accepted
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from waste.errors import Invalid
from waste.manifests import _fields as f
from waste.manifests.vocabulary import (
    DISPOSAL_OPERATIONS,
    EventType,
    Hazard,
    PhysicalForm,
    RejectionNext,
    event_type_of,
)
from waste.registry.waste_codes import is_hazardous, validate_waste_code

MAX_MASS_KG = 100_000.0
MASS_TOLERANCE_KG = 0.001
MAX_WASTE_LINES = 50


@dataclass(frozen=True)
class WasteLine:
    """One declared waste of a filing."""

    code: str
    name: str
    hazards: tuple[Hazard, ...]
    form: PhysicalForm
    packaging: str
    containers: int
    mass_kg: float


@dataclass(frozen=True)
class Filing:
    """Data of ``filed``: who, what, how much, which way and by when."""

    producer: str
    hauler: str
    vehicle: str
    destination: str
    wastes: tuple[WasteLine, ...]
    route: dict[str, Any]
    corridor_m: float
    pickup_from: datetime
    pickup_to: datetime
    deliver_by: datetime
    restricted_zone_justification: str | None = None
    rest_areas: tuple[dict[str, Any], ...] = ()
    notes: str | None = None

    @property
    def declared_kg(self) -> float:
        """Total declared mass."""
        return sum(w.mass_kg for w in self.wastes)

    @property
    def waste_codes(self) -> tuple[str, ...]:
        """The declared waste codes, each once, in filing order."""
        return tuple(dict.fromkeys(w.code for w in self.wastes))


@dataclass(frozen=True)
class Cancellation:
    """Data of ``cancelled``."""

    reason: str


@dataclass(frozen=True)
class Pickup:
    """Data of ``picked_up``: the load weighed and sealed on the manifest's vehicle."""

    hauler: str
    vehicle: str
    device_id: str
    seal_id: str
    mass_kg: float


@dataclass(frozen=True)
class Handover:
    """Data of ``handed_over``: custody passes to another hauler and vehicle."""

    from_hauler: str
    to_hauler: str
    vehicle: str
    device_id: str
    seal_id: str
    mass_kg: float
    location: tuple[float, float] | None = None  # (lat, lon)
    route: dict[str, Any] | None = None


@dataclass(frozen=True)
class Receipt:
    """Data of ``received``: weighed, accepted and refused mass and the seal found."""

    mass_kg: float
    accepted_kg: float
    refused_kg: float
    seal_id: str
    seal_intact: bool
    waste_codes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rejection:
    """Data of ``rejected``: why, and whether the load goes back or to another site."""

    reason: str
    next: RejectionNext
    redirect_site: str | None = None
    route: dict[str, Any] | None = None
    mass_kg: float | None = None
    seal_id: str | None = None


@dataclass(frozen=True)
class Disposal:
    """Data of ``disposed``: the recovery or disposal operation and the mass treated."""

    operation: str
    mass_kg: float


EventData = Filing | Cancellation | Pickup | Handover | Receipt | Rejection | Disposal


def _mass(value: object, field: str) -> float:
    return f.number(value, field, gt=0.0, le=MAX_MASS_KG)


def _waste_line(value: object, field: str) -> WasteLine:
    d = f.obj(
        value,
        field,
        required=("code", "name", "hazards", "form", "packaging", "containers", "mass_kg"),
    )
    code = validate_waste_code(d["code"], field=f"{field}.code")
    hazards_raw = f.json_list(d["hazards"], f"{field}.hazards", min_len=0, max_len=5)
    seen: set[Hazard] = set()
    for i, h in enumerate(hazards_raw):
        hazard = Hazard(f.choice(h, f"{field}.hazards[{i}]", [x.value for x in Hazard]))
        if hazard in seen:
            raise Invalid(f"{field}.hazards[{i}] repeats {h}", field=f"{field}.hazards[{i}]")
        seen.add(hazard)
    if not seen and is_hazardous(code):
        raise Invalid(
            f"{field}.hazards must name at least one hazard of hazardous waste {code}",
            field=f"{field}.hazards",
        )
    return WasteLine(
        code=code,
        name=f.text(d["name"], f"{field}.name"),
        hazards=tuple(h for h in Hazard if h in seen),
        form=PhysicalForm(f.choice(d["form"], f"{field}.form", [x.value for x in PhysicalForm])),
        packaging=f.text(d["packaging"], f"{field}.packaging", max_len=100),
        containers=f.integer(d["containers"], f"{field}.containers", ge=1, le=100_000),
        mass_kg=_mass(d["mass_kg"], f"{field}.mass_kg"),
    )


def _filing(data: object) -> Filing:
    d = f.obj(
        data,
        "data",
        required=(
            "producer",
            "hauler",
            "vehicle",
            "destination",
            "wastes",
            "route",
            "pickup_window",
            "deliver_by",
        ),
        optional=("corridor_m", "restricted_zone_justification", "rest_areas", "notes"),
    )
    producer = f.ident(d["producer"], "data.producer")
    hauler = f.ident(d["hauler"], "data.hauler")
    destination = f.ident(d["destination"], "data.destination")
    if hauler == producer:
        raise Invalid("data.hauler must not be the producer", field="data.hauler")
    if destination in (producer, hauler):
        raise Invalid(
            "data.destination must be a disposal site, not the producer or hauler",
            field="data.destination",
        )
    raw_wastes = f.json_list(d["wastes"], "data.wastes", min_len=1, max_len=MAX_WASTE_LINES)
    wastes = tuple(_waste_line(w, f"data.wastes[{i}]") for i, w in enumerate(raw_wastes))
    if sum(w.mass_kg for w in wastes) > MAX_MASS_KG:
        raise Invalid(
            f"data.wastes total more than {MAX_MASS_KG:g} kg for one load", field="data.wastes"
        )
    window = f.obj(d["pickup_window"], "data.pickup_window", required=("from", "to"))
    pickup_from = f.timestamp(window["from"], "data.pickup_window.from")
    pickup_to = f.timestamp(window["to"], "data.pickup_window.to")
    if pickup_to <= pickup_from:
        raise Invalid("data.pickup_window.to must be after from", field="data.pickup_window.to")
    deliver_by = f.timestamp(d["deliver_by"], "data.deliver_by")
    if deliver_by <= pickup_from:
        raise Invalid(
            "data.deliver_by must be after data.pickup_window.from", field="data.deliver_by"
        )
    rest_raw = f.json_list(d.get("rest_areas", []), "data.rest_areas", min_len=0, max_len=20)
    justification = d.get("restricted_zone_justification")
    notes = d.get("notes")
    return Filing(
        producer=producer,
        hauler=hauler,
        vehicle=f.plate(d["vehicle"], "data.vehicle"),
        destination=destination,
        wastes=wastes,
        route=f.line_string(d["route"], "data.route"),
        corridor_m=f.number(d.get("corridor_m", 50), "data.corridor_m", ge=10.0, le=2000.0),
        pickup_from=pickup_from,
        pickup_to=pickup_to,
        deliver_by=deliver_by,
        restricted_zone_justification=(
            None
            if justification is None
            else f.long_text(justification, "data.restricted_zone_justification")
        ),
        rest_areas=tuple(f.polygon(p, f"data.rest_areas[{i}]") for i, p in enumerate(rest_raw)),
        notes=None if notes is None else f.long_text(notes, "data.notes"),
    )


def _cancellation(data: object) -> Cancellation:
    d = f.obj(data, "data", required=("reason",))
    return Cancellation(reason=f.long_text(d["reason"], "data.reason", max_len=1000))


def _pickup(data: object) -> Pickup:
    d = f.obj(data, "data", required=("hauler", "vehicle", "device_id", "seal_id", "mass_kg"))
    return Pickup(
        hauler=f.ident(d["hauler"], "data.hauler"),
        vehicle=f.plate(d["vehicle"], "data.vehicle"),
        device_id=f.ident(d["device_id"], "data.device_id"),
        seal_id=f.ident(d["seal_id"], "data.seal_id"),
        mass_kg=_mass(d["mass_kg"], "data.mass_kg"),
    )


def _handover(data: object) -> Handover:
    d = f.obj(
        data,
        "data",
        required=("from_hauler", "to_hauler", "vehicle", "device_id", "seal_id", "mass_kg"),
        optional=("location", "route"),
    )
    from_hauler = f.ident(d["from_hauler"], "data.from_hauler")
    to_hauler = f.ident(d["to_hauler"], "data.to_hauler")
    if to_hauler == from_hauler:
        raise Invalid("data.to_hauler must differ from data.from_hauler", field="data.to_hauler")
    return Handover(
        from_hauler=from_hauler,
        to_hauler=to_hauler,
        vehicle=f.plate(d["vehicle"], "data.vehicle"),
        device_id=f.ident(d["device_id"], "data.device_id"),
        seal_id=f.ident(d["seal_id"], "data.seal_id"),
        mass_kg=_mass(d["mass_kg"], "data.mass_kg"),
        location=f.point(d["location"], "data.location") if "location" in d else None,
        route=f.line_string(d["route"], "data.route") if "route" in d else None,
    )


def _receipt(data: object) -> Receipt:
    d = f.obj(
        data,
        "data",
        required=("mass_kg", "accepted_kg", "refused_kg", "seal_id", "seal_intact"),
        optional=("waste_codes",),
    )
    mass = _mass(d["mass_kg"], "data.mass_kg")
    accepted = f.number(d["accepted_kg"], "data.accepted_kg", ge=0.0, le=MAX_MASS_KG)
    refused = f.number(d["refused_kg"], "data.refused_kg", ge=0.0, le=MAX_MASS_KG)
    if abs(accepted + refused - mass) > MASS_TOLERANCE_KG:
        raise Invalid(
            f"data.accepted_kg + data.refused_kg ({accepted + refused:g}) must equal "
            f"data.mass_kg ({mass:g})",
            field="data.accepted_kg",
        )
    if accepted == 0:
        raise Invalid(
            "data.accepted_kg is 0: a load refused whole is a 'rejected' event",
            field="data.accepted_kg",
        )
    codes: tuple[str, ...] | None = None
    if "waste_codes" in d:
        raw = f.json_list(d["waste_codes"], "data.waste_codes", min_len=1, max_len=MAX_WASTE_LINES)
        codes = tuple(
            validate_waste_code(c, field=f"data.waste_codes[{i}]") for i, c in enumerate(raw)
        )
        if len(set(codes)) != len(codes):
            raise Invalid("data.waste_codes must not repeat a code", field="data.waste_codes")
    return Receipt(
        mass_kg=mass,
        accepted_kg=accepted,
        refused_kg=refused,
        seal_id=f.ident(d["seal_id"], "data.seal_id"),
        seal_intact=f.boolean(d["seal_intact"], "data.seal_intact"),
        waste_codes=codes,
    )


def _rejection(data: object) -> Rejection:
    d = f.obj(
        data,
        "data",
        required=("reason", "next"),
        optional=("redirect_site", "route", "mass_kg", "seal_id"),
    )
    nxt = RejectionNext(f.choice(d["next"], "data.next", [x.value for x in RejectionNext]))
    site: str | None = None
    if nxt is RejectionNext.REDIRECT:
        if "redirect_site" not in d:
            raise Invalid("data.redirect_site is required to redirect", field="data.redirect_site")
        site = f.ident(d["redirect_site"], "data.redirect_site")
    else:
        for key in ("redirect_site", "route"):
            if key in d:
                raise Invalid(f"data.{key} is only for next = redirect", field=f"data.{key}")
    return Rejection(
        reason=f.long_text(d["reason"], "data.reason", max_len=1000),
        next=nxt,
        redirect_site=site,
        route=f.line_string(d["route"], "data.route") if "route" in d else None,
        mass_kg=_mass(d["mass_kg"], "data.mass_kg") if "mass_kg" in d else None,
        seal_id=f.ident(d["seal_id"], "data.seal_id") if "seal_id" in d else None,
    )


def _disposal(data: object) -> Disposal:
    d = f.obj(data, "data", required=("operation", "mass_kg"))
    return Disposal(
        operation=f.choice(d["operation"], "data.operation", DISPOSAL_OPERATIONS),
        mass_kg=_mass(d["mass_kg"], "data.mass_kg"),
    )


DATA_TYPES: Mapping[EventType, type[EventData]] = {
    EventType.FILED: Filing,
    EventType.CANCELLED: Cancellation,
    EventType.PICKED_UP: Pickup,
    EventType.HANDED_OVER: Handover,
    EventType.RECEIVED: Receipt,
    EventType.REJECTED: Rejection,
    EventType.DISPOSED: Disposal,
}

_PARSERS: Mapping[EventType, Callable[[object], EventData]] = {
    EventType.FILED: _filing,
    EventType.CANCELLED: _cancellation,
    EventType.PICKED_UP: _pickup,
    EventType.HANDED_OVER: _handover,
    EventType.RECEIVED: _receipt,
    EventType.REJECTED: _rejection,
    EventType.DISPOSED: _disposal,
}


def parse_event_data(event_type: str, data: Mapping[str, Any]) -> EventData:
    """Parse and strictly validate the ``data`` of an event of ``event_type``."""
    return _PARSERS[event_type_of(event_type)](data)
