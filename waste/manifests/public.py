"""Public verification of a manifest by its number, for anyone holding the paper or its QR code.

It says whether the manifest exists, its state, its waste categories and
masses rounded to two significant figures, and whether its chain verifies:
the server builds a fresh audit bundle and checks it with
``waste.ledger.audit.verify_bundle`` against the log's own key (signatures,
hash links, inclusion proofs, the state machine). It never shows party names,
addresses, routes, vehicles or ids.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from waste.auth.tokens import Principal
from waste.clock import format_utc
from waste.ledger.audit import verify_bundle
from waste.ledger.service import LogKey
from waste.manifests import bundles, queries
from waste.registry.domain import Role
from waste.registry.waste_codes import CATEGORIES, category_of
from waste.uow import UnitOfWork

# The server verifying its own log on behalf of the public: it reads every manifest.
_SERVER = Principal(role=Role.ADMIN)


def approx_kg(kg: float | None) -> float | None:
    """A mass rounded to two significant figures (795.4 → 800, 12 345 → 12 000, 5.34 → 5.3)."""
    if kg is None or kg <= 0:
        return kg
    digits = 1 - math.floor(math.log10(kg))
    rounded = round(kg, digits)
    return float(int(rounded)) if digits <= 0 else rounded


def verify_number(*, uow: UnitOfWork, number: str, key: LogKey, now: datetime) -> dict[str, Any]:
    """The public verification answer for a manifest number."""
    manifest = queries.find_by_number(uow=uow, number=number)
    if manifest is None:
        return {"number": number, "exists": False, "checked_at": format_utc(now)}
    bundle = bundles.build(uow=uow, principal=_SERVER, manifest_id=manifest.id, key=key)
    report = verify_bundle(bundle, key.vkey)
    custody = queries.replay_many(uow=uow, manifest_ids=[manifest.id])[manifest.id]
    verified = (
        report.ok
        and report.final_state == manifest.state
        and report.events == manifest.head_seq + 1
    )
    by_category: dict[str, float] = {}
    for w in custody.filing.wastes:
        code = category_of(w.code).code
        by_category[code] = by_category.get(code, 0.0) + w.mass_kg
    masses = custody.masses
    return {
        "number": number,
        "exists": True,
        "state": manifest.state,
        "waste_categories": [
            {
                "category": code,
                "name_zh": CATEGORIES[code].name_zh,
                "name_en": CATEGORIES[code].name_en,
                "approx_declared_kg": approx_kg(kg),
            }
            for code, kg in sorted(by_category.items())
        ],
        "approx_masses_kg": {
            "declared": approx_kg(masses.declared_kg),
            "received": approx_kg(masses.received_kg),
            "accepted": approx_kg(masses.accepted_kg),
            "disposed": approx_kg(masses.disposed_kg),
        },
        "chain": {
            "verified": verified,
            "events": report.events,
            "checkpoint_size": report.checkpoint_size,
            "failed_checks": [{"check": c.name, "seq": c.seq} for c in report.failures],
        },
        "checked_at": format_utc(now),
    }
