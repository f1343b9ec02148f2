"""Per-party risk: alerts roll up into a score and a green / yellow / red code (pure).

An alert counts against the party that answers for it (``responsible_roles``): the
disposal site for ``unlicensed_receipt``, the hauler for every other kind (the
producer for none yet). Each alert weighs::

    weight = SEVERITY_WEIGHT[severity] × KIND_WEIGHT[kind] × RESOLUTION_FACTOR[resolution]
             × 0.5 ** (age_days / HALF_LIFE_DAYS)

- severity: low 1, medium 2, high 4, critical 8;
- kind: from 0.5 (``overdue_delivery``) to 2.0 (``suspected_illegal_dumping``), see
  ``KIND_WEIGHT``; an unknown kind weighs 1;
- resolution: a confirmed violation counts double, a false alarm counts nothing,
  ``other`` and not-yet-resolved alerts count once;
- age: from the alert's ``at`` (when it happened), halving every 90 days; an alert
  dated in the future counts as new, one older than ``HORIZON_DAYS`` (3 years) counts
  nothing.

The score is the exact sum (``math.fsum``) of the weights, rounded to 2 decimals,
and the code is ``green`` below 10, ``yellow`` from 10 and ``red`` from 25
(``YELLOW_FROM``, ``RED_FROM``). So one fresh unconfirmed dumping alert (16) makes a
party yellow, a confirmed one (32) red; five fresh medium route deviations (10)
make it yellow. More alerts, severer alerts, younger alerts and confirmations
never lower a score; false alarms never raise it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

SEVERITY_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 4.0, "critical": 8.0}
KIND_WEIGHT = {
    "suspected_illegal_dumping": 2.0,
    "seal_opened_off_site": 1.5,
    "seal_tamper": 1.5,
    "unlicensed_receipt": 1.5,
    "unmanifested_movement": 1.5,
    "restricted_zone_entry": 1.2,
    "quantity_discrepancy": 1.2,
    "route_deviation": 1.0,
    "unscheduled_stop": 1.0,
    "signal_lost": 0.8,
    "overdue_delivery": 0.5,
}
RESOLUTION_FACTOR = {"confirmed_violation": 2.0, "other": 1.0, "false_alarm": 0.0}
UNRESOLVED_FACTOR = 1.0
HALF_LIFE_DAYS = 90.0
HORIZON_DAYS = 3 * 365
YELLOW_FROM = 10.0
RED_FROM = 25.0
_DAY_S = 86_400.0


# Who answers for an alert of each kind: the party columns of the alert it counts
# against. Kinds not listed count against the hauler.
RESPONSIBLE: dict[str, tuple[str, ...]] = {"unlicensed_receipt": ("site",)}


def responsible_roles(kind: str) -> tuple[str, ...]:
    """The alert's party roles (``producer``, ``hauler``, ``site``) its weight counts against."""
    return RESPONSIBLE.get(kind, ("hauler",))


class RiskCode(StrEnum):
    """The party's code, as regulators issue it."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class AlertFact:
    """What scoring needs of one alert."""

    kind: str
    severity: str
    at: datetime
    resolution: str | None = None


@dataclass(frozen=True)
class RiskScore:
    """A party's score, its code, and how many alerts counted (weight above zero)."""

    score: float
    code: RiskCode
    counted: int


def alert_weight(fact: AlertFact, now: datetime) -> float:
    """How much one alert adds to its party's score at ``now``."""
    factor = (
        UNRESOLVED_FACTOR
        if fact.resolution is None
        else RESOLUTION_FACTOR.get(fact.resolution, UNRESOLVED_FACTOR)
    )
    base = SEVERITY_WEIGHT.get(fact.severity, SEVERITY_WEIGHT["low"]) * KIND_WEIGHT.get(
        fact.kind, 1.0
    )
    age_days = max(0.0, (now - fact.at).total_seconds() / _DAY_S)
    if age_days > HORIZON_DAYS:
        return 0.0
    decay: float = 0.5 ** (age_days / HALF_LIFE_DAYS)
    return base * factor * decay


def code_for(score: float) -> RiskCode:
    """The code of a score: green below ``YELLOW_FROM``, red from ``RED_FROM``."""
    if score >= RED_FROM:
        return RiskCode.RED
    if score >= YELLOW_FROM:
        return RiskCode.YELLOW
    return RiskCode.GREEN


def score(facts: Iterable[AlertFact], now: datetime) -> RiskScore:
    """The score and code of a party with these alerts, at ``now``."""
    weights = [alert_weight(f, now) for f in facts]
    total = round(math.fsum(weights), 2)
    return RiskScore(score=total, code=code_for(total), counted=sum(1 for w in weights if w > 0))
