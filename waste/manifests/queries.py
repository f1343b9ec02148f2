"""Manifest queries: list with filters and keyset pagination, detail, by number, overdue.

Visibility is the same rule as ``access``: a party sees the manifests it has
any role on, a regulator those with a party in its regions, an admin all.

Pagination is by cursor over a stable order, newest filing first
(``filed_at`` descending, then ``id`` descending): each page returns
``next_cursor`` (opaque) until the last; pass it back as ``cursor`` with the
same filters. Manifests filed meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, exists, false, or_, select

from waste.auth.tokens import Principal
from waste.clock import format_utc, parse_utc
from waste.errors import Invalid, NotFound
from waste.ledger.models import CustodyEvent
from waste.manifests import access, summaries
from waste.manifests.custody import Custody, ManifestState
from waste.manifests.deadlines import CONFIRM_WITHIN_WORKING_DAYS, OverdueFlag, overdue
from waste.manifests.domain import EventRecord, replay
from waste.manifests.models import Manifest, ManifestParty
from waste.registry.domain import Role, region_prefix
from waste.registry.models import Party
from waste.uow import UnitOfWork

MAX_LIMIT = 200
_LIVE = (str(ManifestState.FILED), str(ManifestState.IN_TRANSIT))


@dataclass(frozen=True)
class ManifestFilter:
    """What to list: states, a filing period [filed_from, filed_to), a code, a counterparty."""

    states: tuple[str, ...] = ()
    filed_from: datetime | None = None
    filed_to: datetime | None = None
    waste_code: str | None = None
    counterparty: str | None = None
    overdue_only: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a listing and the cursor of the next (None on the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(m: Manifest) -> str:
    """The opaque cursor that resumes a listing after ``m``."""
    raw = json.dumps([format_utc(m.filed_at), m.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, str]:
    """The position a cursor stands for; ``Invalid`` naming ``query.cursor`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        filed_at, manifest_id = json.loads(raw)
        if not isinstance(manifest_id, str) or len(manifest_id) > 36:
            raise ValueError("bad id")
        return parse_utc(filed_at, field="query.cursor"), manifest_id
    except (binascii.Error, ValueError, TypeError, Invalid) as exc:
        raise Invalid("cursor is not one this server issued", field="query.cursor") from exc


def visibility(principal: Principal) -> ColumnElement[bool] | None:
    """The SQL condition for the manifests ``principal`` may see (None: all of them)."""
    if principal.role is Role.ADMIN:
        return None
    if principal.role is Role.REGULATOR:
        if not principal.regions:
            return false()
        prefixes = [region_prefix(scope) for scope in principal.regions]
        in_region = or_(*(Party.region_code.startswith(p) for p in prefixes))
        with_party = select(ManifestParty.manifest_id).join(
            Party, Party.id == ManifestParty.party_id
        )
        return or_(
            or_(*(Manifest.region_code.startswith(p) for p in prefixes)),
            Manifest.id.in_(with_party.where(in_region)),
        )
    if principal.party_id is None:
        return false()
    return Manifest.id.in_(
        select(ManifestParty.manifest_id).where(ManifestParty.party_id == principal.party_id)
    )


def overdue_candidates(now: datetime) -> ColumnElement[bool]:
    """Manifests that may have missed a deadline at ``now`` (exact for delivery; a superset for
    confirmation, whose working-day rule ``deadlines.overdue`` then decides)."""
    received_long_ago = exists(
        select(CustodyEvent.seq).where(
            CustodyEvent.manifest_id == Manifest.id,
            CustodyEvent.seq == Manifest.head_seq,
            CustodyEvent.at < now - timedelta(days=CONFIRM_WITHIN_WORKING_DAYS),
        )
    )
    return or_(
        and_(Manifest.state.in_(_LIVE), Manifest.deliver_by < now),
        and_(Manifest.state == str(ManifestState.RECEIVED), received_long_ago),
    )


def filtered(principal: Principal, f: ManifestFilter, now: datetime) -> Select[Manifest]:
    """The listing query for ``principal`` and filter ``f``, in the stable order."""
    query = select(Manifest)
    visible = visibility(principal)
    if visible is not None:
        query = query.where(visible)
    if f.states:
        query = query.where(Manifest.state.in_(f.states))
    if f.filed_from is not None:
        query = query.where(Manifest.filed_at >= f.filed_from)
    if f.filed_to is not None:
        query = query.where(Manifest.filed_at < f.filed_to)
    if f.waste_code is not None:  # a validated code: digits, letters and hyphens only
        query = query.where(cast(Manifest.waste_codes, String).contains(f'"{f.waste_code}"'))
    if f.counterparty is not None:
        query = query.where(
            Manifest.id.in_(
                select(ManifestParty.manifest_id).where(ManifestParty.party_id == f.counterparty)
            )
        )
    if f.overdue_only:
        query = query.where(overdue_candidates(now))
    return query.order_by(Manifest.filed_at.desc(), Manifest.id.desc())


def after(query: Select[Manifest], position: tuple[datetime, str]) -> Select[Manifest]:
    """``query`` restricted to rows after ``position`` in the stable order."""
    filed_at, manifest_id = position
    return query.where(
        or_(
            Manifest.filed_at < filed_at,
            and_(Manifest.filed_at == filed_at, Manifest.id < manifest_id),
        )
    )


def list_manifests(
    *,
    uow: UnitOfWork,
    principal: Principal,
    filters: ManifestFilter,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> Page:
    """One page of the manifests the caller may see, newest filing first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be 1 to {MAX_LIMIT}", field="query.limit")
    position = None if cursor is None else decode_cursor(cursor)
    base = filtered(principal, filters, now)
    picked: list[tuple[Manifest, OverdueFlag | None]] = []
    while len(picked) <= limit:
        query = base if position is None else after(base, position)
        rows = list(uow.session.scalars(query.limit(limit + 1)))
        flags = overdue_flags(uow=uow, manifests=rows, now=now)
        for row in rows:
            position = (row.filed_at, row.id)
            if filters.overdue_only and flags.get(row.id) is None:
                continue
            picked.append((row, flags.get(row.id)))
            if len(picked) > limit:
                break
        if len(rows) <= limit:
            break
    more = len(picked) > limit
    picked = picked[:limit]
    names = party_names(uow=uow, ids={p for m, _ in picked for p in _row_parties(m)})
    return Page(
        items=[summaries.list_item(m, flag, names) for m, flag in picked],
        next_cursor=encode_cursor(picked[-1][0]) if more and picked else None,
    )


def scan(
    *, uow: UnitOfWork, principal: Principal, filters: ManifestFilter, now: datetime, cap: int
) -> list[tuple[Manifest, OverdueFlag | None]]:
    """Every manifest of a listing with its overdue flag, up to ``cap`` (``Invalid`` beyond)."""
    rows = list(uow.session.scalars(filtered(principal, filters, now).limit(cap + 1)))
    if len(rows) > cap:
        raise Invalid(f"more than {cap} manifests: narrow the period", field="query.to")
    flags = overdue_flags(uow=uow, manifests=rows, now=now)
    return [(m, flags.get(m.id)) for m in rows if not filters.overdue_only or m.id in flags]


def _row_parties(m: Manifest) -> tuple[str, str, str]:
    return (m.producer_id, m.hauler_id, m.destination_id)


def party_names(*, uow: UnitOfWork, ids: Iterable[str]) -> dict[str, Party]:
    """The registry rows of the given party ids (unknown ids are left out)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {p.id: p for p in uow.session.scalars(select(Party).where(Party.id.in_(wanted)))}


def replay_many(*, uow: UnitOfWork, manifest_ids: Sequence[str]) -> dict[str, Custody]:
    """The custody of each manifest, replayed from its events (one query for all)."""
    if not manifest_ids:
        return {}
    records: dict[str, list[EventRecord]] = {}
    query = (
        select(CustodyEvent)
        .where(CustodyEvent.manifest_id.in_(list(manifest_ids)))
        .order_by(CustodyEvent.manifest_id, CustodyEvent.seq)
    )
    for row in uow.session.scalars(query):
        records.setdefault(row.manifest_id, []).append(
            EventRecord(
                event_type=row.type,
                actor=row.actor,
                at=row.at,
                data=row.envelope["body"]["data"],
                signers=row.signers,
                manifest_id=row.manifest_id,
                seq=row.seq,
            )
        )
    return {mid: replay(events) for mid, events in records.items()}


def overdue_flags(
    *, uow: UnitOfWork, manifests: Sequence[Manifest], now: datetime
) -> dict[str, OverdueFlag]:
    """The missed deadline of each manifest that has one (replaying only the candidates)."""
    candidates = [
        m.id
        for m in manifests
        if (m.state in _LIVE and m.deliver_by < now) or m.state == str(ManifestState.RECEIVED)
    ]
    flags = {}
    for mid, custody in replay_many(uow=uow, manifest_ids=candidates).items():
        flag = overdue(custody, now)
        if flag is not None:
            flags[mid] = flag
    return flags


def manifest_detail(
    *, uow: UnitOfWork, principal: Principal, manifest_id: str, now: datetime
) -> dict[str, Any]:
    """A visible manifest's summary, derived state, deadline and readable timeline."""
    manifest = uow.session.get(Manifest, manifest_id)
    if manifest is None:
        raise NotFound(f"no manifest {manifest_id}")
    access.ensure_visible(uow=uow, principal=principal, manifest=manifest)
    custody = replay_many(uow=uow, manifest_ids=[manifest.id])[manifest.id]
    names = party_names(uow=uow, ids=summaries.party_ids(custody) | set(_row_parties(manifest)))
    return summaries.detail(manifest, custody, overdue(custody, now), names)


def find_by_number(*, uow: UnitOfWork, number: str) -> Manifest | None:
    """The manifest with this 14-digit number, if any (no access check)."""
    if len(number) != 14 or not number.isascii() or not number.isdigit():
        raise Invalid("a manifest number is 14 digits", field="number")
    return uow.session.scalar(select(Manifest).where(Manifest.number == number))


def manifest_by_number(
    *, uow: UnitOfWork, principal: Principal, number: str, now: datetime
) -> dict[str, Any]:
    """A visible manifest's summary, found by its number."""
    manifest = find_by_number(uow=uow, number=number)
    if manifest is None:
        raise NotFound(f"no manifest numbered {number}")
    return manifest_detail(uow=uow, principal=principal, manifest_id=manifest.id, now=now)
