"""The dashboard's figures: manifests by state, overdue ones, alerts over time, regions,
parties by risk code, and the transparency log's latest checkpoint."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select

from waste.alerts import listing
from waste.alerts import party_risk as risk_rollup
from waste.alerts.lifecycle import LIVE_STATES
from waste.alerts.models import Alert
from waste.auth.tokens import Principal
from waste.console import charts
from waste.errors import Invalid
from waste.ledger.service import latest_checkpoint
from waste.ledger.store import LogStore
from waste.manifests import queries
from waste.manifests.custody import ManifestState
from waste.manifests.models import Manifest
from waste.registry.domain import Role
from waste.uow import UnitOfWork

CHART_DAYS = 14
OVERDUE_SHOWN = 10


@dataclass(frozen=True)
class LogStatus:
    """The transparency log as the dashboard shows it."""

    size: int
    checkpoint_size: int | None
    checkpoint_at: datetime | None
    root_b64: str | None
    note: str | None


@dataclass(frozen=True)
class RegionRow:
    """Counts of one region code."""

    region_code: str
    manifests: int
    live: int
    open_alerts: int


@dataclass
class Board:
    """Everything the dashboard shows."""

    by_state: list[tuple[str, int]]
    manifests_total: int
    overdue: list[dict[str, Any]]
    overdue_more: bool
    chart: Markup
    chart_kinds: list[tuple[str, int, str]]
    chart_from: date
    regions: list[RegionRow]
    risk: dict[str, list[dict[str, Any]]] | None
    log: LogStatus
    open_alerts: int = 0
    chart_days: int = CHART_DAYS
    alerts_by_severity: list[tuple[str, int]] = field(default_factory=list)


def build(*, uow: UnitOfWork, principal: Principal, now: datetime) -> Board:
    """The dashboard of what ``principal`` may see."""
    visible = queries.visibility(principal)
    by_state_q = select(Manifest.state, func.count()).group_by(Manifest.state)
    if visible is not None:
        by_state_q = by_state_q.where(visible)
    counts = {state: int(n) for state, n in uow.session.execute(by_state_q)}
    by_state = [(str(s), counts.get(str(s), 0)) for s in ManifestState]
    overdue = queries.list_manifests(
        uow=uow,
        principal=principal,
        filters=queries.ManifestFilter(overdue_only=True),
        limit=OVERDUE_SHOWN,
        cursor=None,
        now=now,
    )
    days, per_day = _alerts_per_day(uow, principal, now)
    totals: Counter[str] = Counter()
    for kinds in per_day.values():
        totals.update(kinds)
    alert_vis = listing.visibility(principal)
    live = [str(s) for s in LIVE_STATES]
    sev_q = (
        select(Alert.severity, func.count()).where(Alert.state.in_(live)).group_by(Alert.severity)
    )
    if alert_vis is not None:
        sev_q = sev_q.where(alert_vis)
    by_severity = {s: int(n) for s, n in uow.session.execute(sev_q)}
    return Board(
        by_state=by_state,
        manifests_total=sum(counts.values()),
        overdue=overdue.items,
        overdue_more=overdue.next_cursor is not None,
        chart=charts.stacked_bars(days, per_day),
        chart_kinds=[(k, n, charts.kind_colour(k)) for k, n in totals.most_common()],
        chart_from=days[0],
        regions=_regions(uow, principal),
        risk=_risk(uow, principal, now),
        log=_log_status(uow),
        open_alerts=sum(by_severity.values()),
        alerts_by_severity=[
            (s, by_severity.get(s, 0)) for s in ("critical", "high", "medium", "low")
        ],
    )


def _alerts_per_day(
    uow: UnitOfWork, principal: Principal, now: datetime
) -> tuple[list[date], dict[date, dict[str, int]]]:
    today = now.date()
    days = [today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    visible = listing.visibility(principal)
    per_day: dict[date, dict[str, int]] = {}
    for day in days:  # one small indexed query per day: no dialect-specific date functions
        start = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo)
        query = (
            select(Alert.kind, func.count())
            .where(Alert.at >= start, Alert.at < start + timedelta(days=1))
            .group_by(Alert.kind)
        )
        if visible is not None:
            query = query.where(visible)
        per_day[day] = {kind: int(n) for kind, n in uow.session.execute(query)}
    return days, per_day


def _regions(uow: UnitOfWork, principal: Principal) -> list[RegionRow]:
    visible = queries.visibility(principal)
    live = [str(ManifestState.FILED), str(ManifestState.IN_TRANSIT)]
    total_q = select(Manifest.region_code, func.count()).group_by(Manifest.region_code)
    live_q = total_q.where(Manifest.state.in_(live))
    if visible is not None:
        total_q, live_q = total_q.where(visible), live_q.where(visible)
    totals = {code: int(n) for code, n in uow.session.execute(total_q)}
    lives = {code: int(n) for code, n in uow.session.execute(live_q)}
    alert_vis = listing.visibility(principal)
    alerts_q = (
        select(Alert.region_code, func.count())
        .where(Alert.state.in_([str(s) for s in LIVE_STATES]))
        .group_by(Alert.region_code)
    )
    if alert_vis is not None:
        alerts_q = alerts_q.where(alert_vis)
    alerts = {code: int(n) for code, n in uow.session.execute(alerts_q)}
    codes = sorted(set(totals) | set(alerts))
    return [
        RegionRow(code, int(totals.get(code, 0)), int(lives.get(code, 0)), int(alerts.get(code, 0)))
        for code in codes
    ]


def _risk(
    uow: UnitOfWork, principal: Principal, now: datetime
) -> dict[str, list[dict[str, Any]]] | None:
    """Parties by risk code (``waste.alerts.party_risk``, as ``GET /v1/risk/parties`` serves
    it); a party sees its own code only. None when the regions hold too many parties."""
    grouped: dict[str, list[dict[str, Any]]] = {"red": [], "yellow": [], "green": []}
    if principal.role in (Role.ADMIN, Role.REGULATOR):
        try:
            items = risk_rollup.parties_risk(
                uow=uow, principal=principal, region=None, code=None,
                limit=risk_rollup.MAX_RISK_PARTIES, offset=0, now=now,
            )["items"]  # fmt: skip
        except Invalid:  # more parties than one roll-up scores: see GET /v1/risk/parties
            return None
    elif principal.party_id is not None:
        own = principal.party_id
        items = [risk_rollup.party_risk(uow=uow, principal=principal, party_id=own, now=now)]
    else:
        items = []
    for item in items:
        grouped.setdefault(item["code"], []).append(item)
    return grouped


def _log_status(uow: UnitOfWork) -> LogStatus:
    size = LogStore(uow.session).size()
    cp = latest_checkpoint(uow=uow)
    if cp is None:
        return LogStatus(size, None, None, None, None)
    return LogStatus(
        size, cp.size, cp.created_at, base64.b64encode(cp.root_hash).decode(), cp.note
    )
