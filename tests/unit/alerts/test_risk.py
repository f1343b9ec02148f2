"""Per-party risk scoring: documented figures, thresholds, and monotonicity (Hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waste.alerts.risk import (
    HALF_LIFE_DAYS,
    KIND_WEIGHT,
    RED_FROM,
    YELLOW_FROM,
    AlertFact,
    RiskCode,
    alert_weight,
    code_for,
    score,
)

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SEVERITIES = ["low", "medium", "high", "critical"]
RESOLUTIONS = [None, "confirmed_violation", "false_alarm", "other"]
CODE_RANK = {RiskCode.GREEN: 0, RiskCode.YELLOW: 1, RiskCode.RED: 2}

facts = st.builds(
    AlertFact,
    kind=st.sampled_from([*KIND_WEIGHT, "some_future_kind"]),
    severity=st.sampled_from(SEVERITIES),
    at=st.integers(-30 * 86400, 5 * 365 * 86400).map(lambda s: NOW - timedelta(seconds=s)),
    resolution=st.sampled_from(RESOLUTIONS),
)


def test_documented_examples() -> None:
    dumping = AlertFact("suspected_illegal_dumping", "critical", NOW)
    assert score([dumping], NOW).score == 16.0
    assert score([dumping], NOW).code is RiskCode.YELLOW
    confirmed = replace(dumping, resolution="confirmed_violation")
    assert score([confirmed], NOW).code is RiskCode.RED
    deviations = [AlertFact("route_deviation", "medium", NOW)] * 5
    assert score(deviations, NOW).score == 10.0
    assert score(deviations[:4], NOW).code is RiskCode.GREEN
    assert score(deviations, NOW).code is RiskCode.YELLOW
    assert score([], NOW) == score([], NOW)
    assert score([], NOW).code is RiskCode.GREEN


def test_false_alarms_weigh_nothing_and_age_halves_weight() -> None:
    alarm = AlertFact("seal_tamper", "critical", NOW, resolution="false_alarm")
    assert alert_weight(alarm, NOW) == 0.0
    assert score([alarm] * 100, NOW).score == 0.0
    assert score([alarm] * 100, NOW).counted == 0
    fresh = AlertFact("route_deviation", "high", NOW)
    old = replace(fresh, at=NOW - timedelta(days=HALF_LIFE_DAYS))
    assert alert_weight(old, NOW) == pytest.approx(alert_weight(fresh, NOW) / 2)
    future = replace(fresh, at=NOW + timedelta(days=3))
    assert alert_weight(future, NOW) == alert_weight(fresh, NOW)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0.0, RiskCode.GREEN),
        (YELLOW_FROM - 0.01, RiskCode.GREEN),
        (YELLOW_FROM, RiskCode.YELLOW),
        (RED_FROM - 0.01, RiskCode.YELLOW),
        (RED_FROM, RiskCode.RED),
        (1e9, RiskCode.RED),
    ],
)
def test_thresholds(value: float, code: RiskCode) -> None:
    assert code_for(value) is code


@given(st.lists(facts, max_size=30), facts)
def test_one_more_alert_never_lowers_the_score(alerts: list[AlertFact], extra: AlertFact) -> None:
    before, after = score(alerts, NOW), score([*alerts, extra], NOW)
    assert after.score >= before.score
    assert CODE_RANK[after.code] >= CODE_RANK[before.code]


@given(st.lists(facts, min_size=1, max_size=30), st.data())
def test_a_severer_alert_never_lowers_the_score(
    alerts: list[AlertFact], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(alerts) - 1))
    rank = SEVERITIES.index(alerts[i].severity)
    severer = data.draw(st.sampled_from(SEVERITIES[rank:]))
    raised = [*alerts[:i], replace(alerts[i], severity=severer), *alerts[i + 1 :]]
    assert score(raised, NOW).score >= score(alerts, NOW).score


@given(st.lists(facts, min_size=1, max_size=30), st.data())
def test_confirming_never_lowers_and_dismissing_never_raises(
    alerts: list[AlertFact], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(alerts) - 1))
    confirmed = [
        *alerts[:i],
        replace(alerts[i], resolution="confirmed_violation"),
        *alerts[i + 1 :],
    ]
    dismissed = [*alerts[:i], replace(alerts[i], resolution="false_alarm"), *alerts[i + 1 :]]
    assert score(confirmed, NOW).score >= score(alerts, NOW).score
    assert score(dismissed, NOW).score <= score(alerts, NOW).score


@given(st.lists(facts, max_size=30), st.integers(0, 10 * 365))
def test_time_passing_never_raises_the_score(alerts: list[AlertFact], days: int) -> None:
    later = NOW + timedelta(days=days)
    assert score(alerts, later).score <= score(alerts, NOW).score


@given(st.lists(facts, max_size=30), st.randoms())
def test_order_does_not_matter(alerts: list[AlertFact], rnd: object) -> None:
    shuffled = list(alerts)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert score(shuffled, NOW) == score(alerts, NOW)
