"""The printable manifest: an HTML page with every detail, the signature chain and a QR code.

The QR code opens the public verification page ``{base_url}/verify/{number}``;
its JSON twin is ``GET /v1/public/manifests/{number}`` (``public``).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import segno
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from waste.auth.tokens import Principal
from waste.clock import format_utc
from waste.manifests import queries, service
from waste.registry.service import key_records
from waste.uow import UnitOfWork


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("waste.manifests", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )


def verification_url(base_url: str, number: str) -> str:
    """The public verification URL printed on a manifest."""
    return f"{base_url.rstrip('/')}/verify/{number}"


def qr_svg(url: str) -> Markup:
    """An inline SVG QR code of ``url`` (medium error correction)."""
    svg: str = segno.make(url, error="m").svg_inline(scale=3, title=url)
    return Markup(svg)  # noqa: S704 - segno's own SVG of a server-made URL


def render_manifest(
    *, uow: UnitOfWork, principal: Principal, manifest_id: str, base_url: str, now: datetime
) -> str:
    """The printable HTML of a manifest the caller may see."""
    detail = queries.manifest_detail(uow=uow, principal=principal, manifest_id=manifest_id, now=now)
    events = service.events_of(uow=uow, manifest_id=manifest_id)
    keys = key_records(
        uow=uow, key_ids=sorted({s["key_id"] for e in events for s in e.envelope["signatures"]})
    )
    ids = {k.party_id for k in keys.values()} | {e.actor for e in events}
    ids |= {detail["producer"]["id"], detail["destination"]["id"], detail["filed_hauler"]["id"]}
    ids |= {h["id"] for h in detail["haulers"]} | {d["id"] for d in detail["destinations"]}
    parties = queries.party_names(uow=uow, ids=ids)
    chain: list[dict[str, Any]] = []
    for e in events:
        signatures = []
        for s in e.envelope["signatures"]:
            record = keys.get(s["key_id"])
            party = None if record is None else parties.get(record.party_id)
            signatures.append(
                {
                    "key_id": s["key_id"],
                    "sig": s["sig"],
                    "party": None if party is None else party.name,
                    "party_id": None if record is None else record.party_id,
                }
            )
        chain.append(
            {
                "seq": e.seq,
                "type": e.type,
                "at": format_utc(e.at),
                "accepted_at": format_utc(e.accepted_at),
                "event_hash": e.event_hash,
                "prev_hash": e.prev_hash,
                "leaf_index": e.leaf_index,
                "signatures": signatures,
            }
        )
    roles = [("产生单位 Producer", detail["producer"]["id"])]
    roles += [("运输单位 Hauler (filed)", detail["filed_hauler"]["id"])]
    roles += [("运输单位 Hauler", h["id"]) for h in detail["haulers"][1:]]
    roles += [("接受单位 Disposal site", d["id"]) for d in detail["destinations"][:1]]
    roles += [("接受单位 Redirect site", d["id"]) for d in detail["destinations"][1:]]
    url = verification_url(base_url, detail["number"])
    return (
        _templates()
        .get_template("manifest.html")
        .render(
            m=detail,
            party_rows=[(role, pid, parties.get(pid)) for role, pid in roles],
            chain=chain,
            verify_url=url,
            qr=qr_svg(url),
            printed_at=format_utc(now),
        )
    )
