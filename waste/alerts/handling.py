"""Closed-loop handling use cases: who may see and handle an alert, and transitions.

A transition (``waste.alerts.lifecycle``) is made by a regulator whose token's
region scope covers the alert's region. It is committed together with:

- the alert's new handling fields and ``version + 1`` (compare-and-swap on the
  version the caller last read, so two regulators never clobber each other);
- one transparency-log entry ``{"kind": "alert_transition", …}`` (``transition_entry``),
  appended under the log's lock, whose leaf index the transition row records:
  a handling step without a log entry cannot be committed;
- an ``alert.transitioned`` outbox message (and ``alert.escalated`` when the step
  raised the severity) for every party that may see the alert, so subscribed
  webhooks get a signed, retried delivery;
- ``publish_pending`` so the alert goes out again on ``waste/v1/alerts/{kind}``.

The overdue sweep (``escalate_overdue``) escalates an overdue alert one severity
step, once per due time, as actor ``system``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select, update

from waste.alerts import lifecycle
from waste.alerts.lifecycle import Action, AlertState, Command, Handling, Resolution
from waste.alerts.models import Alert, AlertTransition
from waste.alerts.payload import alert_payload
from waste.auth.tokens import Principal
from waste.clock import format_utc
from waste.errors import Conflict, Forbidden, NotFound
from waste.ledger.canonical import canonical_bytes
from waste.ledger.store import LogStore
from waste.manifests.models import ManifestParty
from waste.registry.domain import PartyKind, Role, region_covers
from waste.registry.models import Party
from waste.uow import UnitOfWork
from waste.webhooks import outbox

__all__ = [
    "ENTRY_KIND",
    "SYSTEM_ACTOR",
    "TOPIC_ESCALATED",
    "TOPIC_TRANSITIONED",
    "can_handle",
    "can_see",
    "escalate_overdue",
    "get_alert",
    "handling_of",
    "overdue_condition",
    "recipients",
    "transition",
    "transition_entry",
    "transitions_of",
]

ENTRY_KIND = "alert_transition"
TOPIC_TRANSITIONED = "alert.transitioned"
TOPIC_ESCALATED = "alert.escalated"
SYSTEM_ACTOR = "system"


def handling_of(alert: Alert) -> Handling:
    """The lifecycle view of an alert row."""
    return Handling(
        state=AlertState(alert.state),
        severity=alert.severity,
        raised_at=alert.raised_at,
        assignee=alert.assignee,
        department=alert.department,
        due_at=alert.due_at,
        resolution=None if alert.resolution is None else Resolution(alert.resolution),
        finding=alert.finding,
        closed_at=alert.closed_at,
    )


def _own_manifest(uow: UnitOfWork, party_id: str, manifest_id: str | None) -> bool:
    if manifest_id is None:
        return False
    query = select(ManifestParty.party_id).where(
        ManifestParty.manifest_id == manifest_id, ManifestParty.party_id == party_id
    )
    return uow.session.scalar(query.limit(1)) is not None


def can_see(*, uow: UnitOfWork, principal: Principal, alert: Alert) -> bool:
    """Admins all; regulators their regions; a party the alerts about its own manifests."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.REGULATOR:
        return any(region_covers(scope, alert.region_code) for scope in principal.regions)
    if principal.party_id is None:
        return False
    if principal.party_id in (alert.producer_id, alert.hauler_id, alert.site_id):
        return True
    return _own_manifest(uow, principal.party_id, alert.manifest_id)


def can_handle(principal: Principal, alert: Alert) -> bool:
    """Only a named regulator account whose region scope covers the alert's region."""
    return (
        principal.role is Role.REGULATOR
        and principal.party_id is not None
        and any(region_covers(scope, alert.region_code) for scope in principal.regions)
    )


def get_alert(*, uow: UnitOfWork, principal: Principal, alert_id: str) -> Alert:
    """The alert if it exists and the caller may see it; ``NotFound`` otherwise."""
    alert = uow.session.get(Alert, alert_id) if len(alert_id) <= 36 else None
    if alert is None or not can_see(uow=uow, principal=principal, alert=alert):
        raise NotFound(f"no alert {alert_id}")
    return alert


def transitions_of(*, uow: UnitOfWork, alert_id: str) -> list[AlertTransition]:
    """The alert's handling steps in order."""
    query = (
        select(AlertTransition)
        .where(AlertTransition.alert_id == alert_id)
        .order_by(AlertTransition.seq, AlertTransition.id)
    )
    return list(uow.session.scalars(query))


def transition_entry(
    *,
    alert: Alert,
    seq: int,
    command: Command,
    before: Handling,
    after: Handling,
    actor: str,
    account: str | None,
    at: datetime,
    prev_leaf_index: int | None,
) -> dict[str, Any]:
    """The transparency-log entry of one handling step."""
    return {
        "kind": ENTRY_KIND,
        "accepted_at": format_utc(at),
        "payload": {
            "alert_id": alert.id,
            "alert_kind": alert.kind,
            "manifest_id": alert.manifest_id,
            "region_code": alert.region_code,
            "seq": seq,
            "action": str(command.action),
            "from_state": str(before.state),
            "to_state": str(after.state),
            "severity": alert.severity,
            "changes": lifecycle.changes(before, after),
            "note": command.note.strip(),
            "actor": actor,
            "account": account,
            "evidence_sha256": hashlib.sha256(canonical_bytes(alert.evidence or {})).hexdigest(),
            "prev_leaf_index": prev_leaf_index,
        },
    }


def transition(
    *,
    uow: UnitOfWork,
    principal: Principal,
    alert_id: str,
    command: Command,
    expected_version: int,
    now: datetime,
) -> AlertTransition:
    """Apply one handling step for a regulator, log it, notify, and commit."""
    alert = get_alert(uow=uow, principal=principal, alert_id=alert_id)
    if not can_handle(principal, alert):
        raise Forbidden("only a regulator account of the alert's region may handle it")
    assert principal.party_id is not None
    row = _record(
        uow=uow,
        alert=alert,
        command=command,
        expected_version=expected_version,
        actor=principal.party_id,
        account=principal.token_id,
        now=now,
    )
    uow.commit()
    return row


def _record(
    *,
    uow: UnitOfWork,
    alert: Alert,
    command: Command,
    expected_version: int,
    actor: str,
    account: str | None,
    now: datetime,
) -> AlertTransition:
    """Check, then under the log lock swap the alert's version, append, record, enqueue."""
    if alert.version != expected_version:
        raise _stale(alert.version, alert.state)
    before = handling_of(alert)
    after = lifecycle.apply(before, command, at=now)
    session = uow.session
    store = LogStore(session)
    # The alert row before the log: detection's append path locks in that order too,
    # so the two never wait on each other crosswise (a deadlock on PostgreSQL).
    session.execute(select(Alert.id).where(Alert.id == alert.id).with_for_update())
    store.lock()  # serialises with every log writer; the swap below sees committed rows
    guards = [Alert.id == alert.id, Alert.version == expected_version]
    guards.append(Alert.state == str(before.state))
    if command.action is Action.ESCALATE:  # detection may raise the severity too: never lower it
        guards.append(Alert.severity == before.severity)
    swapped = session.execute(
        update(Alert)
        .where(*guards)
        .values(
            **_handling_values(after, command.action),
            version=Alert.version + 1,
            publish_pending=True,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(alert)  # now row-locked: detection's latest evidence and severity
    if swapped.rowcount != 1:  # type: ignore[attr-defined]
        raise _stale(alert.version, alert.state)
    last = session.execute(
        select(AlertTransition.seq, AlertTransition.log_index)
        .where(AlertTransition.alert_id == alert.id)
        .order_by(AlertTransition.seq.desc())
        .limit(1)
    ).first()
    seq = 1 if last is None else int(last.seq) + 1
    prev_leaf = None if last is None or last.log_index is None else int(last.log_index)
    entry = transition_entry(
        alert=alert,
        seq=seq,
        command=command,
        before=before,
        after=after,
        actor=actor,
        account=account,
        at=now,
        prev_leaf_index=prev_leaf,
    )
    leaf_index, _ = store.append(kind=ENTRY_KIND, subject=alert.id, entry=entry)
    details = {
        "action": str(command.action),
        "account": account,
        "severity": alert.severity,
        "changes": entry["payload"]["changes"],
    }
    row = AlertTransition(
        alert_id=alert.id,
        seq=seq,
        from_state=str(before.state),
        to_state=str(after.state),
        actor=actor,
        note=command.note.strip(),
        at=now,
        log_index=leaf_index,
        details=details,
    )
    session.add(row)
    uow.flush()
    message = {"alert": alert_payload(alert), "transition": transition_message(row)}
    parties = recipients(uow=uow, alert=alert)
    topics = [TOPIC_TRANSITIONED]
    if command.action is Action.ESCALATE:
        topics.append(TOPIC_ESCALATED)  # the same topic as detection's severity rises
    for topic in topics:
        outbox.enqueue_for(
            uow=uow, topic=topic, party_ids=parties, payload=message, now=now, subject=alert.id
        )
    return row


def _handling_values(after: Handling, action: Action) -> dict[str, Any]:
    """The columns a step writes: only its own, so detection's concurrent updates survive."""
    values: dict[str, Any] = {"state": str(after.state)}
    if action is Action.ESCALATE:
        values["severity"] = after.severity
    if action is Action.ASSIGN:
        values |= {"assignee": after.assignee, "department": after.department}
        values["due_at"] = after.due_at
    if action in (Action.RESOLVE, Action.REOPEN):
        values["resolution"] = None if after.resolution is None else str(after.resolution)
        values["finding"] = after.finding
    if action is Action.CLOSE:
        values["closed_at"] = after.closed_at
    return values


def _stale(version: int, state: str) -> Conflict:
    return Conflict(
        f"the alert changed meanwhile (now version {version}, {state}); read it again",
        current_version=version,
        state=state,
    )


def transition_message(row: AlertTransition) -> dict[str, Any]:
    """One handling step as parties see it (no notes or accounts)."""
    return {
        "seq": row.seq,
        "action": row.details.get("action"),
        "from_state": row.from_state,
        "to_state": row.to_state,
        "severity": row.details.get("severity"),
        "at": format_utc(row.at),
        "log_index": row.log_index,
    }


def recipients(*, uow: UnitOfWork, alert: Alert) -> set[str]:
    """Registered parties that may see the alert: its parties, those on its manifest, and
    regulator parties whose region covers the alert's region."""
    ids = {p for p in (alert.producer_id, alert.hauler_id, alert.site_id) if p}
    if alert.manifest_id is not None:
        ids |= set(
            uow.session.scalars(
                select(ManifestParty.party_id).where(ManifestParty.manifest_id == alert.manifest_id)
            )
        )
    known: set[str] = set()
    if ids:
        known = set(uow.session.scalars(select(Party.id).where(Party.id.in_(sorted(ids)))))
    regulators = uow.session.execute(
        select(Party.id, Party.region_code).where(
            Party.kind == str(PartyKind.REGULATOR),
            Party.region_code.startswith(alert.region_code[:2], autoescape=True),
        )
    )
    known |= {pid for pid, region in regulators if region_covers(region, alert.region_code)}
    return known


def overdue_condition(now: datetime) -> Any:
    """SQL: the alert is neither resolved nor closed and past its (effective) due time."""
    live = Alert.state.in_([str(s) for s in lifecycle.LIVE_STATES])
    by_default = [
        and_(Alert.due_at.is_(None), Alert.severity == severity, Alert.raised_at < now - limit)
        for severity, limit in lifecycle.DEFAULT_HANDLING.items()
    ]
    unknown = and_(
        Alert.due_at.is_(None),
        Alert.severity.not_in(list(lifecycle.DEFAULT_HANDLING)),
        Alert.raised_at < now - lifecycle.DEFAULT_HANDLING["low"],
    )
    assigned = and_(Alert.due_at.is_not(None), Alert.due_at < now)
    return and_(live, or_(assigned, *by_default, unknown))


def escalate_overdue(*, uow: UnitOfWork, now: datetime, limit: int = 100) -> list[AlertTransition]:
    """Escalate overdue alerts one severity step (once per due time) as ``system``; commit."""
    done: list[AlertTransition] = []
    candidates = uow.session.scalars(
        select(Alert)
        .where(overdue_condition(now), Alert.severity != "critical")
        .order_by(Alert.raised_at, Alert.id)
        .limit(limit)
    )
    for alert in list(candidates):
        handling = handling_of(alert)
        due = lifecycle.effective_due(handling)
        if _escalated_since(uow, alert.id, due):
            continue
        severity = lifecycle.next_severity(alert.severity)
        if severity is None:
            continue
        note = f"overdue since {format_utc(due)}: escalated automatically"
        command = Command(Action.ESCALATE, note=note, severity=severity)
        try:
            done.append(
                _record(
                    uow=uow,
                    alert=alert,
                    command=command,
                    expected_version=alert.version,
                    actor=SYSTEM_ACTOR,
                    account=None,
                    now=now,
                )
            )
        except Conflict:  # handled by a regulator meanwhile: the next sweep decides
            uow.session.rollback()
            return done
        uow.commit()
    return done


def _escalated_since(uow: UnitOfWork, alert_id: str, due: datetime) -> bool:
    query = select(
        exists().where(
            AlertTransition.alert_id == alert_id,
            AlertTransition.actor == SYSTEM_ACTOR,
            AlertTransition.at >= due,
        )
    )
    return bool(uow.session.scalar(query))
