"""The console's manifest page: the timeline with each event's signers and a "verified" badge
computed by the CLI's own offline verifier (``waste.ledger.audit.verify_bundle``) on the
manifest's audit bundle, and the trip on the map."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from waste.alerts import listing
from waste.alerts.models import Alert
from waste.auth.tokens import Principal
from waste.console import trips
from waste.ledger.audit import AuditReport, verify_bundle
from waste.ledger.service import LogKey
from waste.manifests import bundles, queries
from waste.registry.models import Party
from waste.uow import UnitOfWork

CHECK_ORDER = ("inclusion", "signature", "chain", "transition")


@dataclass(frozen=True)
class Signer:
    """One signature on an event: whose key, and the key id."""

    party_id: str | None
    name: str
    kind: str
    key_id: str


@dataclass(frozen=True)
class EventRow:
    """One event of the timeline with its verification outcome."""

    seq: int
    at: str
    type: str
    what: str
    state: str
    actor: str
    signers: list[Signer]
    leaf_index: int | None
    verified: bool
    passed: list[str]
    failures: list[str]


@dataclass
class ManifestView:
    """Everything the manifest page shows."""

    detail: dict[str, Any]
    events: list[EventRow]
    verified: bool
    verdict: str
    checkpoint_size: int | None
    failures: list[str]
    trip: trips.Trip
    alerts: list[Alert] = field(default_factory=list)

    @property
    def map(self) -> dict[str, Any]:
        """The map's GeoJSON."""
        return self.trip.map


def party_names_in(detail: dict[str, Any]) -> dict[str, str]:
    """Party id → name of every party a manifest detail names."""
    refs = [detail["producer"], detail["hauler"], detail["destination"], detail["filed_hauler"]]
    refs += detail["haulers"] + detail["destinations"]
    for entry in detail["timeline"]:
        refs += [entry["actor"], *entry["signers"]]
    return {r["id"]: r["name"] for r in refs if r and r.get("name")}


def readable(text: str, names: dict[str, str]) -> str:
    """``text`` with the party ids it mentions replaced by the parties' names."""
    for party_id, name in names.items():
        text = text.replace(party_id, name)
    return text


def verification(bundle: dict[str, Any], log_vkey: str) -> AuditReport:
    """The verdict of the offline verifier the CLI uses (``waste audit verify``)."""
    return verify_bundle(bundle, log_vkey)


def build(
    *, uow: UnitOfWork, principal: Principal, manifest_id: str, key: LogKey, now: datetime
) -> ManifestView:
    """The manifest page of a manifest ``principal`` may see (``NotFound`` otherwise)."""
    detail = queries.manifest_detail(
        uow=uow, principal=principal, manifest_id=manifest_id, now=now
    )
    bundle = bundles.build(uow=uow, principal=principal, manifest_id=manifest_id, key=key)
    report = verification(bundle, key.vkey)
    verified = (
        report.ok
        and report.final_state == detail["state"]
        and report.events == detail["head"]["seq"] + 1
    )
    events = _events(uow, detail, bundle, report)
    custody = queries.replay_many(uow=uow, manifest_ids=[manifest_id])[manifest_id]
    trip = trips.of_custody(uow=uow, custody=custody, now=now)
    condition = listing.visibility(principal)
    alert_q = select(Alert).where(Alert.manifest_id == manifest_id).order_by(Alert.at.desc())
    if condition is not None:
        alert_q = alert_q.where(condition)
    return ManifestView(
        detail=detail,
        events=events,
        verified=verified,
        verdict=report.render(),
        checkpoint_size=report.checkpoint_size,
        failures=[c.render() for c in report.failures],
        trip=trip,
        alerts=list(uow.session.scalars(alert_q.limit(100))),
    )


def _events(
    uow: UnitOfWork, detail: dict[str, Any], bundle: dict[str, Any], report: AuditReport
) -> list[EventRow]:
    keys = {k["key_id"]: k for k in bundle["keys"]}
    global_failures = [c.render() for c in report.failures if c.seq is None]
    signatures: dict[int, list[str]] = {}
    leaves: dict[int, int] = {}
    for item in bundle["entries"]:
        envelope = item["entry"]["payload"]
        seq = int(envelope["body"]["seq"])
        signatures[seq] = [s["key_id"] for s in envelope["signatures"]]
        leaves[seq] = int(item["leaf_index"])
    party_ids = {k["party_id"] for k in keys.values()}
    names: dict[str, Party] = queries.party_names(uow=uow, ids=party_ids)
    shown = party_names_in(detail)
    rows = []
    for entry in detail["timeline"]:
        seq = int(entry["seq"])
        mine = [c for c in report.checks if c.seq == seq]
        passed = [n for n in CHECK_ORDER if any(c.name == n and c.ok for c in mine)]
        failures = global_failures + [c.render() for c in mine if not c.ok]
        signers = []
        for key_id in signatures.get(seq, []):
            record = keys.get(key_id)
            party = None if record is None else names.get(record["party_id"])
            signers.append(
                Signer(
                    party_id=None if record is None else record["party_id"],
                    name=party.name if party else "unknown key",
                    kind=(party.kind if party else "").replace("_", " "),
                    key_id=key_id,
                )
            )
        actor = entry["actor"] or {}
        rows.append(
            EventRow(
                seq=seq,
                at=entry["at"],
                type=entry["type"],
                what=readable(entry["what"], shown),
                state=entry["state"],
                actor=actor.get("name") or actor.get("id") or "",
                signers=signers,
                leaf_index=leaves.get(seq),
                verified=not failures and "signature" in passed and "inclusion" in passed,
                passed=passed,
                failures=failures,
            )
        )
    return rows
