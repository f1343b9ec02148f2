"""Every manifest's audit bundle, fetched over the API and verified offline.

The same verifier as ``waste audit verify`` (``waste.ledger.audit.verify_bundle``), with
the log's verifier key taken, as that command does by default, from the log's own key
file, and checked against the key the server publishes (``GET /v1/log/key``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waste.errors import Invalid
from waste.ledger.audit import BUNDLE_FORMAT, verify_bundle
from waste.ledger.canonical import loads_strict
from waste.ledger.checkpoint import NoteSigner
from waste.ledger.keys import private_key_from_bytes

__all__ = ["AuditResult", "audit_manifests", "log_vkey"]


@dataclass
class AuditResult:
    """How many bundles verified, and why the others did not."""

    verified: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    key_matches_server: bool = True

    @property
    def ok(self) -> bool:
        """Every bundle verified against the log's key, and the server serves that key."""
        return not self.failed and self.key_matches_server


def log_vkey(key_path: Path, origin: str) -> str:
    """The log's verifier key (``name+keyid+base64``) from its private key file."""
    return NoteSigner(origin, private_key_from_bytes(key_path.read_bytes())).vkey()


def audit_manifests(
    http: Any,
    token: str,
    manifest_ids: Iterable[str],
    vkey: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> AuditResult:
    """Download each manifest's bundle as ``token``'s holder and verify it offline."""
    result = AuditResult()
    served = http.get("/v1/log/key")
    result.key_matches_server = served.status_code == 200 and served.text.strip() == vkey
    headers = {"Authorization": f"Bearer {token}"}
    for n, manifest_id in enumerate(manifest_ids, 1):
        resp = http.get(f"/v1/manifests/{manifest_id}/bundle", headers=headers)
        if resp.status_code != 200:
            result.failed.append((manifest_id, f"bundle: HTTP {resp.status_code}"))
            continue
        try:
            bundle = loads_strict(resp.content)
        except Invalid as exc:
            result.failed.append((manifest_id, f"not JSON: {exc.detail}"))
            continue
        if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
            result.failed.append((manifest_id, "not an audit bundle"))
            continue
        report = verify_bundle(bundle, vkey)
        if report.ok:
            result.verified += 1
        else:
            why = "; ".join(f"{c.name}: {c.detail}" for c in report.failures[:3])
            result.failed.append((manifest_id, why or "not verified"))
        if progress is not None:
            progress(n)
    return result
