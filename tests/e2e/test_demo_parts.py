"""The demo's parts that need no server: its data directory, scoring against the labels,
the sweep's clocks and the command's refusals."""

from __future__ import annotations

import json
import random
import socket
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devices.scenario_model import Corpus
from devices.scenarios import make_scenario
from devices.world import make_county
from waste.cli import app
from waste.clock import format_utc
from waste.demo.datadir import (
    MARKER,
    STATE_FILE,
    DataDirError,
    DemoState,
    prepare,
    save_state,
    write_tokens,
)
from waste.demo.options import DemoOptions, Restart, parse_kinds
from waste.demo.pace import Progress, watermark
from waste.demo.scoring import score
from waste.demo.stack import SweepClock, demo_broker_url

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)


def _state() -> DemoState:
    state = DemoState.new(seed=1, lat=29.31, lon=120.07, region_code="330782", name="x")
    state.days, state.tokens, state.ids = 1, {"regulator": "wst_a_b", "producer-0": "wst_c_d"}, {}
    return state


# -- the data directory --------------------------------------------------------------


def test_a_new_directory_starts_fresh_and_is_marked(tmp_path: Path) -> None:
    assert prepare(tmp_path / "d", Restart.ASK, own_database=True) is None
    assert (tmp_path / "d" / MARKER).exists()


def test_a_previous_demo_is_continued_asked_about_or_wiped(tmp_path: Path) -> None:
    d = tmp_path / "d"
    prepare(d, Restart.FRESH, own_database=True)
    save_state(d, _state())
    (d / "waste.db").write_text("db")
    with pytest.raises(DataDirError, match="--continue"):
        prepare(d, Restart.ASK, own_database=True)  # nobody to ask
    kept = prepare(d, Restart.ASK, own_database=True, ask=lambda: Restart.CONTINUE)
    assert kept is not None
    assert kept.tokens["regulator"] == "wst_a_b"
    assert (d / "waste.db").exists()
    assert prepare(d, Restart.FRESH, own_database=True) is None
    assert sorted(p.name for p in d.iterdir()) == [MARKER]


def test_fresh_never_wipes_a_directory_the_demo_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DataDirError, match="not made by the demo"):
        prepare(tmp_path, Restart.FRESH, own_database=True)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_fresh_refuses_with_an_outside_database_and_continue_needs_a_demo(
    tmp_path: Path,
) -> None:
    with pytest.raises(DataDirError, match="nothing to continue"):
        prepare(tmp_path / "e", Restart.CONTINUE, own_database=True)
    d = tmp_path / "d"
    prepare(d, Restart.FRESH, own_database=False)
    save_state(d, _state())
    with pytest.raises(DataDirError, match="database outside"):
        prepare(d, Restart.FRESH, own_database=False)
    assert (d / STATE_FILE).exists()


def test_a_damaged_state_file_is_refused_plainly(tmp_path: Path) -> None:
    prepare(tmp_path, Restart.FRESH, own_database=True)
    (tmp_path / STATE_FILE).write_text(json.dumps({"format": 1, "seed": "x"}))
    with pytest.raises(DataDirError, match="damaged"):
        prepare(tmp_path, Restart.CONTINUE, own_database=True)


def test_state_and_tokens_files_are_private(tmp_path: Path) -> None:
    state = _state()
    save_state(tmp_path, state)
    path = write_tokens(tmp_path, state, {"regulator": "Bureau"})
    assert (tmp_path / STATE_FILE).stat().st_mode & 0o777 == 0o600
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    assert lines[2] == "regulator\tBureau\twst_a_b"  # the regulator first, for the console
    assert DemoState.from_json(json.loads((tmp_path / STATE_FILE).read_text())) == state


# -- scoring -------------------------------------------------------------------------


def _payload(kind: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "kind": kind,
        "severity": "high",
        "state": "open",
        "manifest_id": kw.get("manifest_id"),
        "device_id": kw.get("device_id"),
        "vehicle": None,
        "at": format_utc(at),
        "raised_at": format_utc(at + timedelta(minutes=1)),
        "lat": None,
        "lon": None,
        "evidence": kw.get("evidence", {}),
    }


def test_alerts_are_scored_against_the_labels() -> None:
    county = make_county(random.Random(2))
    dump = make_scenario("dump_stop", seed=2, county=county, start=T0)
    honest = make_scenario("honest", seed=3, county=county, start=T0 + timedelta(hours=5))
    moved = make_scenario("unmanifested_movement", seed=4, county=county, start=T0)
    corpus = Corpus(county, (dump, honest, moved), 0)
    ids = {p.key: str(uuid.uuid4()) for s in corpus.scenarios for p in s.manifests}
    alerts = [
        _payload(e.kind, e.earliest + timedelta(seconds=1), manifest_id=ids[e.manifest])
        for e in dump.expected
        if e.required and e.manifest and e.kind != "unscheduled_stop"
    ]
    stop = next(e for e in dump.expected if e.kind == "unscheduled_stop")
    alerts.append(  # outside its window: false, and the label missed
        _payload(stop.kind, stop.latest + timedelta(hours=1), manifest_id=ids[stop.manifest])
    )
    (label,) = moved.expected
    alerts.append(_payload(label.kind, label.latest, device_id=label.device_id))
    h = ids[honest.manifests[0].key]
    alerts.append(_payload("signal_lost", honest.start, manifest_id=h))
    alerts.append(
        _payload("route_deviation", honest.start, manifest_id=h, evidence={"retracted": True})
    )
    alerts.append(_payload("route_deviation", honest.start, manifest_id=str(uuid.uuid4())))

    result = score(corpus, ids, alerts)

    assert result.planted == {dump.key: ("unscheduled_stop",), moved.key: ()}
    assert result.planted_detected == 1
    assert result.honest == {honest.key: ("signal_lost",)}
    assert result.honest_alerted == [honest.key]
    assert result.kinds["unscheduled_stop"].expected == 1
    assert result.kinds["unscheduled_stop"].false == 1
    assert result.kinds["unscheduled_stop"].recall == 0
    assert result.kinds["unmanifested_movement"].recall == 1
    assert result.kinds["route_deviation"].retracted == 1
    assert result.kinds["route_deviation"].false == 0
    assert len(result.matches) == len(alerts) - 1  # the foreign alert is not this corpus's
    assert result.by_kind()["route_deviation"] == result.kinds["route_deviation"].true


# -- clocks --------------------------------------------------------------------------


def test_the_sweep_clock_holds_follows_and_never_passes_the_wall() -> None:
    clock = SweepClock(T0)
    assert clock() == T0
    clock.follow(lambda: T0 + timedelta(hours=1), timedelta(minutes=10))
    assert clock() == T0 + timedelta(minutes=50)
    clock.follow(lambda: datetime(2999, 1, 1, tzinfo=UTC), timedelta(0))
    assert clock() < datetime(2999, 1, 1, tzinfo=UTC)
    clock.hold(T0)
    assert clock() == T0


def test_the_watermark_waits_for_the_records_judged() -> None:
    progress = Progress(T0)
    judged = [0]
    now = watermark(progress, lambda: judged[0], slack=timedelta(minutes=2))
    assert now() == T0 - timedelta(minutes=2)
    for minute in range(10):
        progress.record(T0 + timedelta(minutes=minute))
    progress.reached(T0 + timedelta(minutes=30))
    judged[0] = 4
    assert now() == T0 + timedelta(minutes=1)
    judged[0] = 10
    assert now() == T0 + timedelta(minutes=7)


def test_the_demo_broker_is_embedded_on_a_free_port_unless_named() -> None:
    url = demo_broker_url("embedded://", "demo-x")
    assert url.startswith("embedded://127.0.0.1:")
    assert int(url.rsplit(":", 1)[1]) > 0
    assert demo_broker_url("embedded://127.0.0.1:1999", "d") == "embedded://127.0.0.1:1999"
    real = demo_broker_url("mqtt://u:p@broker:1883?client_id=mine", "d")
    assert "client_id=mine" in real
    assert "session_expiry=300" in real


# -- options and the command ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trips": 0}, "--trips"),
        ({"incidents": 1.5}, "--incidents"),
        ({"speed": 0.5}, "--speed"),
        ({"lat": 89.0}, "--lat"),
        ({"lon": float("nan")}, "--lon"),
        ({"region_code": "33"}, "--region-code"),
        ({"kinds": ("teleport",)}, "incident kinds"),
    ],
)
def test_bad_options_are_refused_by_name(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(DemoOptions(), **change).check()


def test_the_speed_follows_the_minutes_unless_given() -> None:
    assert DemoOptions(minutes=2).speed_for(12 * 3600) == 360
    assert DemoOptions(speed=50).speed_for(12 * 3600) == 50
    assert parse_kinds("dump_stop, detour,") == ("dump_stop", "detour")


def test_the_command_refuses_before_starting_anything(tmp_path: Path) -> None:
    runner = CliRunner()
    d = str(tmp_path / "demo")
    both = runner.invoke(app, ["demo", "--fresh", "--continue", "--data-dir", d])
    assert both.exit_code == 2
    assert "exclude" in both.output
    bad = runner.invoke(app, ["demo", "--trips", "0", "--data-dir", d])
    assert bad.exit_code == 2
    assert "--trips" in bad.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = runner.invoke(app, ["demo", "--port", port, "--data-dir", d])
    assert busy.exit_code == 2
    assert "taken" in busy.output
    assert not (tmp_path / "demo").exists()
