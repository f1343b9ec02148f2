"""Alert queries: the list with filters and keyset pagination, detail, per-region summary.

Visibility is ``handling.can_see`` in SQL: admins all alerts, regulators those of
their regions, a party those about its own manifests. Pagination is by cursor over
a stable order (the sort key, then the alert id): alerts raised while paging never
shift a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select

from waste.alerts import lifecycle
from waste.alerts.handling import (
    can_handle,
    get_alert,
    handling_of,
    overdue_condition,
    transition_message,
    transitions_of,
)
from waste.alerts.models import Alert, AlertTransition
from waste.alerts.payload import alert_payload
from waste.auth.tokens import Principal
from waste.clock import format_utc, parse_day_or_utc, parse_utc
from waste.errors import Invalid
from waste.manifests.models import ManifestParty
from waste.registry.domain import Role, region_prefix
from waste.uow import UnitOfWork

MAX_LIMIT = 200
MAX_RISK_PARTIES = 10_000
_SEVERITY_RANK = case(
    *((Alert.severity == s, i) for i, s in enumerate(lifecycle.SEVERITIES)), else_=-1
)
SORTS: dict[str, Any] = {"raised_at": Alert.raised_at, "at": Alert.at, "severity": _SEVERITY_RANK}
SORT_NAMES = tuple(name for key in SORTS for name in (key, f"-{key}"))


@dataclass(frozen=True)
class AlertFilter:
    """What to list; every member narrows the listing (empty: no narrowing)."""

    kinds: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    region: str | None = None
    party: str | None = None
    manifest_id: str | None = None
    vehicle: str | None = None
    assignee: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None
    overdue: bool | None = None


def parse_bound(value: str | None, field: str, *, end: bool) -> datetime | None:
    """``YYYY-MM-DD`` (a whole UTC day; ``to`` includes it) or an RFC 3339 timestamp."""
    return None if value is None else parse_day_or_utc(value, field=field, end=end)


def visibility(principal: Principal) -> ColumnElement[bool] | None:
    """The SQL condition for the alerts ``principal`` may see (None: all of them)."""
    if principal.role is Role.ADMIN:
        return None
    if principal.role is Role.REGULATOR:
        if not principal.regions:
            return false()
        return or_(*(Alert.region_code.startswith(region_prefix(s)) for s in principal.regions))
    if principal.party_id is None:
        return false()
    return _about_party(principal.party_id)


def _about_party(party_id: str) -> ColumnElement[bool]:
    own = select(ManifestParty.manifest_id).where(ManifestParty.party_id == party_id)
    return or_(
        Alert.producer_id == party_id,
        Alert.hauler_id == party_id,
        Alert.site_id == party_id,
        Alert.manifest_id.in_(own),
    )


def filtered(principal: Principal, f: AlertFilter, now: datetime) -> Select[Alert]:
    """The listing query of ``principal`` and ``f`` (unordered)."""
    query = select(Alert)
    visible = visibility(principal)
    if visible is not None:
        query = query.where(visible)
    conditions: list[ColumnElement[bool]] = []
    if f.kinds:
        conditions.append(Alert.kind.in_(f.kinds))
    if f.severities:
        conditions.append(Alert.severity.in_(f.severities))
    if f.states:
        conditions.append(Alert.state.in_(f.states))
    if f.region:
        conditions.append(Alert.region_code.startswith(f.region, autoescape=True))
    if f.party:
        conditions.append(_about_party(f.party))
    if f.manifest_id:
        conditions.append(Alert.manifest_id == f.manifest_id)
    if f.vehicle:
        conditions.append(Alert.vehicle == f.vehicle)
    if f.assignee:
        conditions.append(Alert.assignee == f.assignee)
    if f.at_from is not None:
        conditions.append(Alert.at >= f.at_from)
    if f.at_to is not None:
        conditions.append(Alert.at < f.at_to)
    if f.overdue is not None:
        late = overdue_condition(now)
        conditions.append(late if f.overdue else ~late)
    return query.where(*conditions) if conditions else query


def _encode_cursor(sort: str, value: Any, alert_id: str) -> str:
    raw = json.dumps([sort, value, alert_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str, sort: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        name, value, alert_id = json.loads(raw)
        if name != sort or not isinstance(alert_id, str) or len(alert_id) > 36:
            raise ValueError("not this listing's cursor")
        if sort.lstrip("-") == "severity":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("bad rank")
            return value, alert_id
        return parse_utc(value, field="query.cursor"), alert_id
    except (binascii.Error, ValueError, TypeError, Invalid) as exc:
        raise Invalid("cursor is not one this listing issued", field="query.cursor") from exc


def _sort_value(alert: Alert, sort: str) -> Any:
    key = sort.lstrip("-")
    if key == "severity":
        return (
            lifecycle.SEVERITIES.index(alert.severity)
            if alert.severity in (lifecycle.SEVERITIES)
            else -1
        )
    moment: datetime = getattr(alert, key)
    return format_utc(moment)


def list_alerts(
    *,
    uow: UnitOfWork,
    principal: Principal,
    filters: AlertFilter,
    sort: str,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> dict[str, Any]:
    """One page of the alerts the caller may see, in ``sort`` order; ``next_cursor`` or None."""
    if sort not in SORT_NAMES:
        raise Invalid(f"sort must be one of {', '.join(SORT_NAMES)}", field="query.sort")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be 1 to {MAX_LIMIT}", field="query.limit")
    column = SORTS[sort.lstrip("-")]
    descending = sort.startswith("-")
    query = filtered(principal, filters, now)
    if cursor is not None:
        value, last_id = _decode_cursor(cursor, sort)
        if descending:
            query = query.where(or_(column < value, and_(column == value, Alert.id < last_id)))
        else:
            query = query.where(or_(column > value, and_(column == value, Alert.id > last_id)))
    order = (column.desc(), Alert.id.desc()) if descending else (column.asc(), Alert.id.asc())
    rows = list(uow.session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [alert_item(a, now=now, full=_full(principal)) for a in rows],
        "next_cursor": _encode_cursor(sort, _sort_value(rows[-1], sort), rows[-1].id)
        if more
        else None,
    }


def _full(principal: Principal) -> bool:
    """Regulators and admins see who handles an alert and the notes; parties do not."""
    return principal.role in (Role.ADMIN, Role.REGULATOR)


def alert_item(alert: Alert, *, now: datetime, full: bool) -> dict[str, Any]:
    """The protocol object of the alert plus a ``handling`` member."""
    h = handling_of(alert)
    handling: dict[str, Any] = {
        "version": alert.version,
        "region_code": alert.region_code,
        "resolution": alert.resolution,
        "finding": alert.finding,
        "closed_at": None if alert.closed_at is None else format_utc(alert.closed_at),
        "due": format_utc(lifecycle.effective_due(h)),
        "overdue": lifecycle.is_overdue(h, now),
        "ended_at": None if alert.ended_at is None else format_utc(alert.ended_at),
        "updated_at": format_utc(alert.updated_at),
    }
    if full:
        handling |= {
            "assignee": alert.assignee,
            "department": alert.department,
            "due_at": None if alert.due_at is None else format_utc(alert.due_at),
            "producer_id": alert.producer_id,
            "hauler_id": alert.hauler_id,
            "site_id": alert.site_id,
        }
    return {**alert_payload(alert), "handling": handling}


def transition_item(row: AlertTransition, *, full: bool) -> dict[str, Any]:
    """One handling step as the API shows it (parties see no notes or accounts)."""
    item = transition_message(row)
    if full:
        item |= {
            "actor": row.actor,
            "account": row.details.get("account"),
            "note": row.note,
            "changes": row.details.get("changes", {}),
        }
    return item


def alert_detail(
    *, uow: UnitOfWork, principal: Principal, alert_id: str, now: datetime
) -> dict[str, Any]:
    """The alert, its handling, its transitions with their log indices, and what the caller
    may do next."""
    alert = get_alert(uow=uow, principal=principal, alert_id=alert_id)
    full = _full(principal)
    item = alert_item(alert, now=now, full=full)
    item["transitions"] = [
        transition_item(t, full=full) for t in transitions_of(uow=uow, alert_id=alert.id)
    ]
    allowed = lifecycle.allowed_actions(lifecycle.AlertState(alert.state))
    item["allowed_actions"] = (
        sorted(str(a) for a in allowed) if can_handle(principal, alert) else []
    )
    return item


def summary(
    *,
    uow: UnitOfWork,
    principal: Principal,
    region: str | None,
    at_from: datetime | None,
    at_to: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """Counts of the visible alerts per region: by kind, state and severity, and overdue."""
    f = AlertFilter(region=region, at_from=at_from, at_to=at_to)
    base = filtered(principal, f, now).subquery()
    grouped = select(
        base.c.region_code, base.c.kind, base.c.state, base.c.severity, func.count()
    ).group_by(base.c.region_code, base.c.kind, base.c.state, base.c.severity)
    overdue_only = AlertFilter(region=region, at_from=at_from, at_to=at_to, overdue=True)
    late_query = filtered(principal, overdue_only, now).subquery()
    late: dict[str, int] = dict(
        uow.session.execute(
            select(late_query.c.region_code, func.count()).group_by(late_query.c.region_code)
        ).all()
    )
    regions: dict[str, dict[str, Any]] = {}
    for region_code, kind, state, severity, count in uow.session.execute(grouped):
        entry = regions.setdefault(region_code, _empty_counts())
        _add(entry, kind, state, severity, int(count))
    total = _empty_counts()
    rows = []
    for region_code in sorted(set(regions) | set(late)):
        entry = regions.get(region_code, _empty_counts())
        entry["overdue"] = int(late.get(region_code, 0))
        rows.append({"region_code": region_code, **entry})
        for name in ("by_kind", "by_state", "by_severity"):
            for key, value in entry[name].items():
                total[name][key] = total[name].get(key, 0) + value
        total["total"] += entry["total"]
        total["open"] += entry["open"]
        total["overdue"] += entry["overdue"]
    for name in ("by_kind", "by_state", "by_severity"):
        total[name] = dict(sorted(total[name].items()))
    return {
        "region": region,
        "from": None if at_from is None else format_utc(at_from),
        "to": None if at_to is None else format_utc(at_to),
        "as_of": format_utc(now),
        **total,
        "regions": rows,
    }


def _empty_counts() -> dict[str, Any]:
    return {"total": 0, "open": 0, "overdue": 0, "by_kind": {}, "by_state": {}, "by_severity": {}}


def _add(entry: dict[str, Any], kind: str, state: str, severity: str, count: int) -> None:
    entry["total"] += count
    if state in {str(s) for s in lifecycle.LIVE_STATES}:
        entry["open"] += count
    for name, key in (("by_kind", kind), ("by_state", state), ("by_severity", severity)):
        entry[name][key] = entry[name].get(key, 0) + count
        entry[name] = dict(sorted(entry[name].items()))
