"""Who may see a manifest: its parties, regulators of its parties' regions, and admins."""

from __future__ import annotations

from sqlalchemy import select

from waste.auth.tokens import Principal
from waste.errors import NotFound
from waste.manifests.models import Manifest, ManifestParty
from waste.registry.domain import Role, region_covers
from waste.registry.models import Party
from waste.uow import UnitOfWork


def party_ids_of(*, uow: UnitOfWork, manifest_id: str) -> set[str]:
    """Every party that has a role on the manifest."""
    query = select(ManifestParty.party_id).where(ManifestParty.manifest_id == manifest_id)
    return set(uow.session.scalars(query))


def can_see(*, uow: UnitOfWork, principal: Principal, manifest: Manifest) -> bool:
    """Whether ``principal`` may read ``manifest``."""
    if principal.role is Role.ADMIN:
        return True
    parties = party_ids_of(uow=uow, manifest_id=manifest.id) | {manifest.producer_id}
    if principal.role is Role.REGULATOR:
        regions = set(uow.session.scalars(select(Party.region_code).where(Party.id.in_(parties))))
        return any(region_covers(s, r) for s in principal.regions for r in regions)
    return principal.party_id in parties


def ensure_visible(*, uow: UnitOfWork, principal: Principal, manifest: Manifest) -> None:
    """Raise ``NotFound`` (not 403: existence is not disclosed) unless the caller may see it."""
    if not can_see(uow=uow, principal=principal, manifest=manifest):
        raise NotFound(f"no manifest {manifest.id}")
