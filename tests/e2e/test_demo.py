"""The live demo, headless and compressed: a county registered through the API, a day of
trucks publishing over MQTT and custody posted by the parties, alerts scored against the
planted incidents, every manifest's audit bundle verified offline; then another day.

It runs on the test's own database (SQLite, or PostgreSQL with WASTE_TEST_DATABASE_URL)
and on the embedded broker, or the broker of WASTE_TEST_MQTT_URL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.brokers import broker_url_for_tests
from waste.config import Settings
from waste.demo import DemoOptions, run_demo
from waste.demo.datadir import STATE_FILE, TOKENS_FILE
from waste.demo.options import Restart

# Each incident kind the detector can be asked about in one short day: dumping (seal
# opened, then mass lost), a detour, jamming, tampering, a zone crossing, an
# unmanifested movement and a short delivery; honest trips (some multi-leg, some
# offline with a backlog) fill the rest.
KINDS = (
    "dump_stop",
    "detour",
    "signal_jamming",
    "seal_tamper",
    "restricted_zone",
    "partial_dump",
    "unmanifested_movement",
    "short_delivery",
)


def _settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": tmp_path / "demo",
            "mqtt_url": broker_url_for_tests() or "embedded://",
            "admin_token": None,  # the demo makes its own
        }
    )


@pytest.mark.broker
@pytest.mark.slow
def test_a_compressed_demo_day_alerts_every_planted_incident_and_no_honest_trip(
    settings: Settings, tmp_path: Path
) -> None:
    demo_settings = _settings(settings, tmp_path)
    options = DemoOptions(
        trips=16,
        incidents=0.5,
        kinds=KINDS,
        seed=11,
        speed=3000,
        port=0,
        headless=True,
        restart=Restart.FRESH,
    )
    summary = run_demo(demo_settings, options)

    assert not summary.stopped_early
    assert summary.custody_refused == []
    assert summary.undelivered == {}
    assert summary.records_stored == summary.records_sent > 0
    assert summary.trips_completed == summary.trips
    assert summary.movements == 1
    score = summary.score
    assert score is not None
    planted = {score.kinds_of[k] for k in score.planted}
    assert planted == set(KINDS)
    assert summary.missed == {}, summary.missed  # every planted incident, every required kind
    assert score.honest_alerted == [], [
        (m.alert.kind, m.scenario and m.scenario.key) for m in score.false_alerts
    ]
    assert len(score.honest) == 8
    for kind in (
        "seal_opened_off_site",
        "suspected_illegal_dumping",
        "route_deviation",
        "signal_lost",
        "seal_tamper",
        "restricted_zone_entry",
        "unmanifested_movement",
        "quantity_discrepancy",
        "unscheduled_stop",
    ):
        assert score.kinds[kind].detected == score.kinds[kind].expected > 0, kind
    audit = summary.audit
    assert audit is not None
    assert audit.failed == []
    assert audit.key_matches_server
    assert audit.verified == summary.manifests_filed == 15
    assert summary.ok
    tokens = demo_settings.data_dir / TOKENS_FILE
    assert tokens.stat().st_mode & 0o777 == 0o600
    assert (demo_settings.data_dir / STATE_FILE).stat().st_mode & 0o777 == 0o600
    assert "regulator" in tokens.read_text().split("\n", 2)[2]

    again = DemoOptions(
        trips=4,
        incidents=0.25,
        kinds=("dump_stop",),
        seed=11,
        speed=3000,
        port=0,
        headless=True,
        restart=Restart.CONTINUE,
    )
    second = run_demo(demo_settings, again)
    assert second.day == 2
    assert second.county == summary.county + " day 2"
    assert second.ok, (second.missed, second.custody_refused, second.audit)
    assert second.manifests_filed == 4
