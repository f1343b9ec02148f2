"""Strict parsing of custody event data: types, bounds, unknown members and field paths."""

from __future__ import annotations

import copy
import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.manifests.builders import (
    REST_AREA,
    T0,
    disposal_data,
    filed_data,
    handover_data,
    pickup_data,
    receipt_data,
    ts,
)
from waste.errors import GeometryError, Invalid, WasteCodeError
from waste.manifests.events import (
    Disposal,
    Filing,
    Handover,
    Pickup,
    Receipt,
    Rejection,
    parse_event_data,
)
from waste.manifests.vocabulary import Hazard, PhysicalForm, RejectionNext


def field_of(event_type: str, data: Any) -> str | None:
    """The ``field`` of the ``Invalid`` that parsing ``data`` raises."""
    with pytest.raises(Invalid) as info:
        parse_event_data(event_type, data)
    return info.value.field


def test_filing_parses_into_a_frozen_dataclass() -> None:
    f = parse_event_data("filed", filed_data())
    assert isinstance(f, Filing)
    assert f.declared_kg == 1200.0
    assert f.waste_codes == ("900-041-49", "900-249-08")
    assert f.wastes[0].hazards == (Hazard.TOXICITY, Hazard.INFECTIVITY)
    assert f.wastes[1].form is PhysicalForm.LIQUID
    assert f.corridor_m == 100.0
    assert f.pickup_from == T0
    assert f.rest_areas[0]["type"] == "Polygon"
    with pytest.raises(AttributeError):
        f.producer = "x"  # type: ignore[misc]


def test_filing_defaults() -> None:
    data = filed_data()
    for key in ("corridor_m", "rest_areas", "notes"):
        del data[key]
    f = parse_event_data("filed", data)
    assert isinstance(f, Filing)
    assert (f.corridor_m, f.rest_areas, f.notes) == (50.0, (), None)
    assert f.restricted_zone_justification is None


def test_parsing_does_not_alias_the_input_route() -> None:
    data = filed_data()
    f = parse_event_data("filed", data)
    assert isinstance(f, Filing)
    data["route"]["coordinates"][0][0] = 0.0
    assert f.route["coordinates"][0][0] == 120.0752


def test_plates_are_upper_cased() -> None:
    p = parse_event_data("picked_up", pickup_data(vehicle="浙a12345"))
    assert isinstance(p, Pickup)
    assert p.vehicle == "浙A12345"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(extra=1), "data.extra"),
        (lambda d: d.pop("hauler"), "data.hauler"),
        (lambda d: d.update(producer=""), "data.producer"),
        (lambda d: d.update(hauler="P-1"), "data.hauler"),
        (lambda d: d.update(destination="H-1"), "data.destination"),
        (lambda d: d.update(vehicle="浙A 12345"), "data.vehicle"),
        (lambda d: d.update(wastes=[]), "data.wastes"),
        (lambda d: d.update(wastes={"code": "900-041-49"}), "data.wastes"),
        (lambda d: d["wastes"][1].update(mass_kg=0), "data.wastes[1].mass_kg"),
        (lambda d: d["wastes"][1].update(mass_kg=-3), "data.wastes[1].mass_kg"),
        (lambda d: d["wastes"][1].update(mass_kg=True), "data.wastes[1].mass_kg"),
        (lambda d: d["wastes"][1].update(mass_kg="400"), "data.wastes[1].mass_kg"),
        (lambda d: d["wastes"][1].update(mass_kg=math.nan), "data.wastes[1].mass_kg"),
        (lambda d: d["wastes"][1].update(mass_kg=math.inf), "data.wastes[1].mass_kg"),
        (lambda d: d["wastes"][0].update(mass_kg=100_001), "data.wastes[0].mass_kg"),
        (lambda d: d["wastes"][0].update(containers=0), "data.wastes[0].containers"),
        (lambda d: d["wastes"][0].update(containers=1.5), "data.wastes[0].containers"),
        (lambda d: d["wastes"][0].update(containers=False), "data.wastes[0].containers"),
        (lambda d: d["wastes"][0].update(hazards=["X"]), "data.wastes[0].hazards[0]"),
        (lambda d: d["wastes"][0].update(hazards=["T", "T"]), "data.wastes[0].hazards[1]"),
        (lambda d: d["wastes"][0].update(hazards=[]), "data.wastes[0].hazards"),
        (lambda d: d["wastes"][0].update(hazards="T"), "data.wastes[0].hazards"),
        (lambda d: d["wastes"][0].update(form="powder"), "data.wastes[0].form"),
        (lambda d: d["wastes"][0].update(name=" "), "data.wastes[0].name"),
        (lambda d: d["wastes"][0].update(colour="red"), "data.wastes[0].colour"),
        (lambda d: d["wastes"][0].pop("packaging"), "data.wastes[0].packaging"),
        (lambda d: d.update(corridor_m=5), "data.corridor_m"),
        (lambda d: d.update(corridor_m=2001), "data.corridor_m"),
        (lambda d: d.update(pickup_window={"from": ts(T0)}), "data.pickup_window.to"),
        (lambda d: d["pickup_window"].update(to=ts(T0)), "data.pickup_window.to"),
        (lambda d: d["pickup_window"].update(start=ts(T0)), "data.pickup_window.start"),
        (
            lambda d: d["pickup_window"].update({"from": "2026-11-23 08:00"}),
            "data.pickup_window.from",
        ),
        (lambda d: d.update(deliver_by=ts(T0 - timedelta(hours=1))), "data.deliver_by"),
        (lambda d: d.update(deliver_by="2026-11-23T08:00:00+08:00"), "data.deliver_by"),
        (lambda d: d.update(notes=""), "data.notes"),
        (lambda d: d.update(restricted_zone_justification=7), "data.restricted_zone_justification"),
        (lambda d: d.update(rest_areas=[REST_AREA] * 21), "data.rest_areas"),
    ],
)
def test_filing_errors_name_the_field(mutate: Any, field: str) -> None:
    data = copy.deepcopy(filed_data())
    mutate(data)
    assert field_of("filed", data) == field


@pytest.mark.parametrize(
    ("code", "field"),
    [
        ("900-041-4", "data.wastes[0].code"),
        ("900-041-99", "data.wastes[0].code"),
        ("900-041-41", "data.wastes[0].code"),
        ("HW08", "data.wastes[0].code"),
        (900041, "data.wastes[0].code"),
    ],
)
def test_waste_codes_are_checked(code: Any, field: str) -> None:
    data = filed_data()
    data["wastes"][0]["code"] = code
    with pytest.raises(WasteCodeError) as info:
        parse_event_data("filed", data)
    assert info.value.field == field


def test_general_industrial_waste_needs_no_hazard() -> None:
    data = filed_data()
    data["wastes"][0].update(code="SW02", hazards=[], name="Fly ash")
    assert isinstance(parse_event_data("filed", data), Filing)


def test_total_declared_mass_is_bounded() -> None:
    data = filed_data()
    data["wastes"] = [dict(data["wastes"][0], mass_kg=60_000)] * 2
    assert field_of("filed", data) == "data.wastes"


def test_at_most_fifty_waste_lines() -> None:
    data = filed_data()
    data["wastes"] = [dict(data["wastes"][0], mass_kg=10)] * 51
    assert field_of("filed", data) == "data.wastes"
    data["wastes"] = data["wastes"][:50]
    assert isinstance(parse_event_data("filed", data), Filing)


@pytest.mark.parametrize(
    ("route", "field"),
    [
        ({"type": "Point", "coordinates": [120.0, 29.0]}, "data.route.type"),
        ({"type": "LineString"}, "data.route.coordinates"),
        ({"type": "LineString", "coordinates": [[120.0, 29.0]]}, "data.route.coordinates"),
        ({"type": "LineString", "coordinates": [[1, 2], [1, 2]]}, "data.route.coordinates"),
        ({"type": "LineString", "coordinates": [[1, 2], [181, 2]]}, "data.route.coordinates[1][0]"),
        ({"type": "LineString", "coordinates": [[1, 2], [1, -91]]}, "data.route.coordinates[1][1]"),
        (
            {"type": "LineString", "coordinates": [[1, 2], [1, math.nan]]},
            "data.route.coordinates[1][1]",
        ),
        (
            {"type": "LineString", "coordinates": [[1, 2], [True, 3]]},
            "data.route.coordinates[1][0]",
        ),
        ({"type": "LineString", "coordinates": [[1, 2], [1]]}, "data.route.coordinates[1]"),
        ({"type": "LineString", "coordinates": [[1, 2], [3, 4]], "crs": {}}, "data.route.crs"),
        ("LINESTRING(1 2, 3 4)", "data.route"),
    ],
)
def test_route_must_be_a_valid_line_string(route: Any, field: str) -> None:
    with pytest.raises(GeometryError) as info:
        parse_event_data("filed", filed_data(route=route))
    assert info.value.field == field


def test_rest_areas_must_be_closed_polygons() -> None:
    ring = [[120.1, 29.3], [120.11, 29.3], [120.11, 29.31], [120.1, 29.31]]
    with pytest.raises(GeometryError) as info:
        parse_event_data(
            "filed", filed_data(rest_areas=[{"type": "Polygon", "coordinates": [ring]}])
        )
    assert info.value.field == "data.rest_areas[0].coordinates[0]"


def test_handover_parses_location_and_route() -> None:
    data = handover_data(
        "H-1", "H-2", location={"lat": 29.3, "lon": 120.1}, route=filed_data()["route"]
    )
    h = parse_event_data("handed_over", data)
    assert isinstance(h, Handover)
    assert h.location == (29.3, 120.1)
    assert h.route is not None


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [
        ("cancelled", {}, "data.reason"),
        ("cancelled", {"reason": "x", "why": "y"}, "data.why"),
        ("cancelled", [], "data"),
        ("picked_up", pickup_data(mass_kg=0), "data.mass_kg"),
        ("picked_up", pickup_data(seal_id="seal 1"), "data.seal_id"),
        ("picked_up", pickup_data(device_id=None), "data.device_id"),
        ("handed_over", handover_data("H-1", "H-1"), "data.to_hauler"),
        (
            "handed_over",
            handover_data("H-1", "H-2", location={"lat": 91, "lon": 0}),
            "data.location.lat",
        ),
        ("handed_over", handover_data("H-1", "H-2", location={"lat": 1}), "data.location.lon"),
        ("handed_over", handover_data("H-1", "H-2", mass_kg=math.inf), "data.mass_kg"),
        ("received", receipt_data(accepted_kg=1000), "data.accepted_kg"),
        ("received", receipt_data(refused_kg=-1, accepted_kg=1195), "data.refused_kg"),
        ("received", receipt_data(accepted_kg=0, refused_kg=1194), "data.accepted_kg"),
        ("received", receipt_data(seal_intact="yes"), "data.seal_intact"),
        ("received", receipt_data(seal_intact=1), "data.seal_intact"),
        ("received", receipt_data(mass_kg=False), "data.mass_kg"),
        ("received", receipt_data(waste_codes=[]), "data.waste_codes"),
        ("received", receipt_data(waste_codes=["900-041-49", "900-041-49"]), "data.waste_codes"),
        ("received", receipt_data(waste_codes=["900-041-49", "bad"]), "data.waste_codes[1]"),
        ("rejected", {"reason": "x", "next": "landfill"}, "data.next"),
        ("rejected", {"reason": "x", "next": "redirect"}, "data.redirect_site"),
        (
            "rejected",
            {"reason": "x", "next": "return_to_producer", "redirect_site": "S-2"},
            "data.redirect_site",
        ),
        ("rejected", {"reason": "x", "next": "return_to_producer", "route": {}}, "data.route"),
        ("rejected", {"reason": "", "next": "return_to_producer"}, "data.reason"),
        ("disposed", disposal_data(operation="D16"), "data.operation"),
        ("disposed", disposal_data(operation="d10"), "data.operation"),
        ("disposed", disposal_data(mass_kg=-1), "data.mass_kg"),
        ("disposed", {"operation": "R4"}, "data.mass_kg"),
        ("shipped", {}, "type"),
    ],
)
def test_event_data_errors_name_the_field(event_type: str, data: Any, field: str) -> None:
    assert field_of(event_type, data) == field


def test_receipt_tolerates_a_gram_of_rounding() -> None:
    r = parse_event_data("received", receipt_data(accepted_kg=1000.0, refused_kg=194.0005))
    assert isinstance(r, Receipt)
    assert r.refused_kg == 194.0005


def test_rejection_variants() -> None:
    back = parse_event_data("rejected", {"reason": "pH 1", "next": "return_to_producer"})
    assert isinstance(back, Rejection)
    assert back.next is RejectionNext.RETURN_TO_PRODUCER
    assert back.redirect_site is None
    redirect = parse_event_data(
        "rejected",
        {
            "reason": "Kiln down",
            "next": "redirect",
            "redirect_site": "S-2",
            "route": filed_data()["route"],
            "mass_kg": 1190,
            "seal_id": "SEAL-9",
        },
    )
    assert isinstance(redirect, Rejection)
    assert (redirect.redirect_site, redirect.mass_kg, redirect.seal_id) == ("S-2", 1190.0, "SEAL-9")


@pytest.mark.parametrize("op", [f"R{i}" for i in range(1, 14)] + [f"D{i}" for i in range(1, 16)])
def test_every_basel_operation_is_accepted(op: str) -> None:
    d = parse_event_data("disposed", disposal_data(operation=op))
    assert isinstance(d, Disposal)
    assert d.operation == op


@given(st.one_of(st.booleans(), st.text(max_size=5), st.none(), st.floats(allow_nan=True)))
def test_mass_is_a_finite_positive_number_or_rejected(value: Any) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, float)
        and math.isfinite(value)
        and 0 < value <= 100_000
    )
    if ok:
        p = parse_event_data("picked_up", pickup_data(mass_kg=value))
        assert isinstance(p, Pickup)
        assert p.mass_kg == value
    else:
        assert field_of("picked_up", pickup_data(mass_kg=value)) == "data.mass_kg"
