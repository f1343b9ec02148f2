"""CSV exports and the per-party ledger (台账): contents, periods, and formula injection."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.support.manifests import add_producer, filing_from, handover, picked_up, receipt
from tests.support.world import World, build_world
from waste.manifests.exports import FORMULA_TRIGGERS, MANIFEST_COLUMNS, safe_cell, to_csv


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers)


def _today() -> tuple[str, str]:
    today = datetime.now(UTC).date()
    return str(today - timedelta(days=1)), str(today + timedelta(days=1))


def _rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")  # BOM for spreadsheets
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def _csv(world: World, path: str, headers: dict[str, str]) -> list[dict[str, str]]:
    resp = world.http.get(path, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    return _rows(resp.text)


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+SUM(A1:A9)", "-2+3", "@cmd", "\t=1", "\r=1", '=HYPERLINK("http://x","y")'],
)
def test_formula_cells_are_neutralised(value: str) -> None:
    cell = safe_cell(value)
    assert cell == "'" + value
    assert safe_cell("Oily rags") == "Oily rags"
    assert safe_cell(-3.5) == -3.5  # numbers stay numbers


def test_csv_injection_through_names_is_neutralised_end_to_end(world: World) -> None:
    evil = add_producer(world, name='=HYPERLINK("http://evil.example","click")')
    wastes = [{**world.filing()["wastes"][0], "name": "+cmd|' /C calc'!A0"}]
    mid = picked_up(world, evil, wastes=wastes)
    lo, hi = _today()
    rows = _csv(world, f"/v1/manifests/export.csv?from={lo}&to={hi}", evil._headers)
    assert [r["manifest_id"] for r in rows] == [mid]
    assert rows[0]["producer_name"] == '\'=HYPERLINK("http://evil.example","click")'
    ledger = _csv(world, f"/v1/parties/{evil.party_id}/ledger.csv?from={lo}&to={hi}", evil._headers)
    assert ledger[0]["waste_names"] == "'+cmd|' /C calc'!A0"
    for row in [*rows, *ledger]:
        for value in row.values():
            assert not value.startswith(FORMULA_TRIGGERS)


def test_export_lists_the_callers_manifests_of_the_period(world: World) -> None:
    p1, p2 = world.producer, add_producer(world)
    first = picked_up(world, p1)
    second = p1.file(filing_from(world, p1))["manifest_id"]
    p2.file(filing_from(world, p2))
    lo, hi = _today()
    rows = _csv(world, f"/v1/manifests/export.csv?from={lo}&to={hi}", p1._headers)
    assert [r["manifest_id"] for r in rows] == [second, first]
    assert rows[1]["state"] == "in_transit"
    assert rows[1]["waste_codes"] == "900-041-49"
    assert rows[1]["declared_kg"] == "800.0"
    assert rows[1]["hauler_name"].startswith("hauler")
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert {"number", "manifest_id", "state", "waste_codes", "declared_kg"} <= set(rows[0])
    old = _csv(world, "/v1/manifests/export.csv?from=2020-01-01&to=2020-12-31", p1._headers)
    assert old == []
    everything = _csv(world, f"/v1/manifests/export.csv?from={lo}&to={hi}", world.admin)
    assert len(everything) == 3


def test_ledger_per_party_kind(world: World) -> None:
    p = world.producer
    mid = picked_up(world, p)
    world.haulers[0].client.hand_over(
        mid, handover(world, 0, 1, mass_kg=793.0), cosigners=[world.haulers[1].client.key]
    )
    site = world.sites[0]
    site.receive(mid, receipt(world, hauler=1, mass=792.0, refused=12.0))
    site.dispose(mid, {"operation": "D10", "mass_kg": 780.0})
    p.file(filing_from(world, p))  # filed only: in nobody's ledger yet
    lo, hi = _today()
    period = f"from={lo}&to={hi}"

    out = p.get(f"/v1/parties/{p.party_id}/ledger?{period}")
    assert out["direction"] == "outgoing"
    assert [r["manifest_id"] for r in out["rows"]] == [mid]
    assert out["rows"][0]["weighed_kg"] == 795.0
    assert out["rows"][0]["accepted_kg"] == 780.0
    assert out["totals"]["declared_kg_by_waste_code"] == {"900-041-49": 800.0}

    first, second = world.haulers[0].client, world.haulers[1].client
    carried = first.get(f"/v1/parties/{first.party_id}/ledger?{period}")
    assert carried["direction"] == "transported"
    assert carried["rows"][0]["handed_to_id"] == second.party_id
    assert carried["rows"][0]["from_id"] == p.party_id
    taken_over = second.get(f"/v1/parties/{second.party_id}/ledger?{period}")
    assert taken_over["rows"][0]["from_id"] == first.party_id
    assert taken_over["rows"][0]["weighed_kg"] == 793.0
    assert taken_over["rows"][0]["leg_closed_by"] == "received"

    incoming = site.get(f"/v1/parties/{site.party_id}/ledger?{period}")
    assert incoming["direction"] == "incoming"
    row = incoming["rows"][0]
    assert (row["weighed_kg"], row["accepted_kg"], row["refused_kg"]) == (792.0, 780.0, 12.0)
    assert row["hauler_id"] == second.party_id
    assert row["disposal_operation"] == "D10"
    assert incoming["totals"]["accepted_kg"] == 780.0

    regulator = world.http.get(
        f"/v1/parties/{site.party_id}/ledger.csv?{period}", headers=world.regulator.headers
    )
    assert regulator.status_code == 200
    assert _rows(regulator.text)[0]["accepted_kg"] == "780.0"
    empty = site.get(f"/v1/parties/{site.party_id}/ledger?from=2020-01-01&to=2020-01-31")
    assert empty["rows"] == []
    assert empty["totals"]["loads"] == 0


BAD_PERIODS = {
    "to=2026-01-31": "query.from",
    "from=2026-01-01": "query.to",
    "from=2026-02-30&to=2026-03-01": "query.from",
    "from=2026-03-01&to=2026-02-01": "query.to",
    "from=2024-01-01&to=2026-01-01": "query.to",
    "from=last%20week&to=2026-01-01": "query.from",
    "from=2026-01-01T00:00:00&to=2026-01-02": "query.from",
}


def test_bad_periods_name_the_field(world: World) -> None:
    p = world.producer
    for query, field in BAD_PERIODS.items():
        for path in ("/v1/manifests/export.csv", f"/v1/parties/{p.party_id}/ledger"):
            resp = world.http.get(f"{path}?{query}", headers=p._headers)
            assert resp.status_code == 422, (query, resp.text)
            assert resp.json()["errors"][0]["field"] == field, (query, resp.text)


def test_to_csv_writes_crlf_and_joins_lists() -> None:
    text = to_csv(("a", "b"), [{"a": ["x", "y"], "b": None}])
    assert text == "\ufeffa,b\r\nx;y,\r\n"
