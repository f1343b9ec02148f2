"""Build a manifest's offline audit bundle from the log."""

from __future__ import annotations

import json
from typing import Any

from waste.auth.tokens import Principal
from waste.ledger.audit import assemble_bundle
from waste.ledger.service import LogKey, publish_checkpoint
from waste.ledger.store import LogStore
from waste.manifests import service
from waste.registry.service import key_records
from waste.uow import UnitOfWork


def build(
    *, uow: UnitOfWork, principal: Principal, manifest_id: str, key: LogKey
) -> dict[str, Any]:
    """Every event of the manifest with inclusion proofs against one signed checkpoint."""
    manifest = service.get_manifest(uow=uow, principal=principal, manifest_id=manifest_id)
    events = service.events_of(uow=uow, manifest_id=manifest.id)
    needed = max(e.leaf_index for e in events) + 1
    checkpoint = publish_checkpoint(uow=uow, key=key, min_size=needed)
    store = LogStore(uow.session)
    entries = [(e.leaf_index, json.loads(store.entry(e.leaf_index).entry)) for e in events]
    proofs = [store.inclusion_proof(e.leaf_index, checkpoint.size) for e in events]
    key_ids = {s["key_id"] for e in events for s in e.envelope["signatures"]}
    keys = key_records(uow=uow, key_ids=sorted(key_ids))
    return assemble_bundle(
        manifest_id=manifest.id,
        entries=entries,
        proofs=proofs,
        keys=list(keys.values()),
        checkpoint_note=checkpoint.note,
        log_vkey=key.vkey,
    )
