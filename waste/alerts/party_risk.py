"""Per-party risk from the database: the alerts each party answers for, scored by
``waste.alerts.risk``, for one party or every visible party of a region."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import false, or_, select

from waste.alerts import risk
from waste.alerts.models import Alert
from waste.auth.service import visible_party
from waste.auth.tokens import Principal
from waste.clock import format_utc
from waste.errors import Invalid
from waste.registry.domain import PartyKind, Role, region_prefix
from waste.registry.models import Party
from waste.uow import UnitOfWork

MAX_RISK_PARTIES = 10_000


def _facts_by_party(
    uow: UnitOfWork, party_ids: list[str], now: datetime
) -> dict[str, list[risk.AlertFact]]:
    """Every scoring fact per party, from the alerts each party answers for."""
    facts: dict[str, list[risk.AlertFact]] = defaultdict(list)
    if not party_ids:
        return facts
    horizon = now - timedelta(days=risk.HORIZON_DAYS)
    columns = {"producer": Alert.producer_id, "hauler": Alert.hauler_id, "site": Alert.site_id}
    for chunk_start in range(0, len(party_ids), 500):
        chunk = set(party_ids[chunk_start : chunk_start + 500])
        query = select(
            Alert.kind,
            Alert.severity,
            Alert.at,
            Alert.resolution,
            Alert.producer_id,
            Alert.hauler_id,
            Alert.site_id,
        ).where(
            Alert.at >= horizon,
            or_(*(col.in_(sorted(chunk)) for col in columns.values())),
        )
        for kind, severity, at, resolution, producer, hauler, site in uow.session.execute(query):
            by_role = {"producer": producer, "hauler": hauler, "site": site}
            fact = risk.AlertFact(kind=kind, severity=severity, at=at, resolution=resolution)
            for role in risk.responsible_roles(kind):
                party = by_role[role]
                if party in chunk:
                    facts[party].append(fact)
    return facts


def _risk_item(party: Party, facts: list[risk.AlertFact], now: datetime) -> dict[str, Any]:
    result = risk.score(facts, now)
    return {
        "party_id": party.id,
        "name": party.name,
        "kind": party.kind,
        "region_code": party.region_code,
        "score": result.score,
        "code": str(result.code),
        "alerts_counted": result.counted,
        "as_of": format_utc(now),
    }


def party_risk(
    *, uow: UnitOfWork, principal: Principal, party_id: str, now: datetime
) -> dict[str, Any]:
    """A visible party's risk score and code, with the thresholds used."""
    party = visible_party(uow=uow, principal=principal, party_id=party_id)
    item = _risk_item(party, _facts_by_party(uow, [party.id], now)[party.id], now)
    item["thresholds"] = {"yellow_from": risk.YELLOW_FROM, "red_from": risk.RED_FROM}
    return item


def parties_risk(
    *,
    uow: UnitOfWork,
    principal: Principal,
    region: str | None,
    code: str | None,
    limit: int,
    offset: int,
    now: datetime,
) -> dict[str, Any]:
    """Risk of the visible producers, haulers and sites of a region, highest score first."""
    query = select(Party).where(Party.kind != str(PartyKind.REGULATOR))
    if principal.role is Role.REGULATOR:
        query = query.where(
            or_(*(Party.region_code.startswith(region_prefix(s)) for s in principal.regions))
            if principal.regions
            else false()
        )
    if region:
        query = query.where(Party.region_code.startswith(region, autoescape=True))
    parties = list(uow.session.scalars(query.order_by(Party.id).limit(MAX_RISK_PARTIES + 1)))
    if len(parties) > MAX_RISK_PARTIES:
        raise Invalid(f"more than {MAX_RISK_PARTIES} parties: narrow the region", field="region")
    facts = _facts_by_party(uow, [p.id for p in parties], now)
    items = [_risk_item(p, facts.get(p.id, []), now) for p in parties]
    if code is not None:
        items = [i for i in items if i["code"] == code]
    items.sort(key=lambda i: (-i["score"], i["party_id"]))
    return {
        "region": region,
        "code": code,
        "total": len(items),
        "items": items[offset : offset + limit],
        "thresholds": {"yellow_from": risk.YELLOW_FROM, "red_from": risk.RED_FROM},
    }
