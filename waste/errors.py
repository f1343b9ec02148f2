"""The one error hierarchy of the system.

Every error the domain, the services or the adapters raise on purpose is a
``WasteError``. The HTTP layer maps each to an RFC 9457 problem-details
response with the status below; the CLI prints its ``detail`` and exits 2.

    WasteError                      500  base; never raised directly
    ├── Invalid                     422  malformed or impossible input (names the field)
    │   ├── CanonicalJSONError      422  not representable in RFC 8785 (NaN, |int| > 2^53, …)
    │   ├── WasteCodeError          422  unknown or retired waste code
    │   ├── GeometryError           422  not a valid GeoJSON geometry of the expected type
    │   ├── TransitionNotAllowed    422  the manifest's state does not allow this event
    │   ├── SignatureError          422  a signature is bad, missing, or by the wrong key
    │   │   ├── UnknownKey          422  the key id is not registered
    │   │   ├── KeyNotValid         422  the key was not valid at the time that counts
    │   │   └── SignerNotAllowed    422  the key's party may not sign this event type
    │   └── FilingRejected          422  a filing check failed (permit, capacity, route, …)
    ├── ProofError                  422  a Merkle proof or checkpoint does not verify
    ├── Unauthenticated             401  no token, or a bad / expired / revoked one
    ├── Forbidden                   403  authenticated, but this role or party may not
    ├── NotFound                    404  no such resource (or not visible to the caller)
    ├── Conflict                    409  the resource already exists or changed meanwhile
    │   ├── ChainConflict           409  wrong seq / prev_hash: someone else appended first
    │   └── AlertTransitionRefused  409  the alert's handling state does not allow this action
    ├── RateLimited                 429  too many attempts
    └── Unavailable                 503  a dependency (database, broker) is down; retry later
"""

from __future__ import annotations

from typing import Any, ClassVar


class WasteError(Exception):
    """Base of every deliberate error; carries an HTTP status and a problem type."""

    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem-details body for this error."""
        body: dict[str, Any] = {
            "type": f"https://waste-custody.org/problems/{self.type_slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            body["errors"] = [{"field": self.field, "message": self.detail}]
        body.update(self.extra)
        return body


class Invalid(WasteError):
    """Malformed or impossible input; ``field`` names the offending field."""

    status = 422
    type_slug = "invalid"
    title = "Invalid input"


class CanonicalJSONError(Invalid):
    """A value that RFC 8785 cannot represent exactly."""

    type_slug = "non-canonical"
    title = "Not canonical JSON"


class WasteCodeError(Invalid):
    """An unknown or retired waste code."""

    type_slug = "waste-code"
    title = "Unknown waste code"


class GeometryError(Invalid):
    """Not a valid GeoJSON geometry of the expected type."""

    type_slug = "geometry"
    title = "Invalid geometry"


class TransitionNotAllowed(Invalid):
    """The manifest's current state does not allow this event type."""

    type_slug = "transition"
    title = "Transition not allowed"


class SignatureError(Invalid):
    """A signature is bad, missing, or made with a key that may not sign."""

    type_slug = "signature"
    title = "Signature rejected"


class UnknownKey(SignatureError):
    """The key id is not registered to any party."""

    type_slug = "unknown-key"
    title = "Unknown key"


class KeyNotValid(SignatureError):
    """The key was not within its validity window at the time that counts."""

    type_slug = "key-not-valid"
    title = "Key not valid at that time"


class SignerNotAllowed(SignatureError):
    """The key belongs to a party that may not sign this event type."""

    type_slug = "signer-not-allowed"
    title = "Signer not allowed"


class FilingRejected(Invalid):
    """A manifest filing check failed (permit, capacity, route, vehicle, …)."""

    type_slug = "filing-rejected"
    title = "Filing rejected"


class ProofError(WasteError):
    """A Merkle proof, checkpoint or bundle does not verify."""

    status = 422
    type_slug = "proof"
    title = "Proof does not verify"


class Unauthenticated(WasteError):
    """No credentials, or credentials that are bad, expired or revoked."""

    status = 401
    type_slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(WasteError):
    """Authenticated, but this role or party may not do this."""

    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class NotFound(WasteError):
    """No such resource, or not visible to the caller."""

    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(WasteError):
    """The resource already exists, or changed meanwhile."""

    status = 409
    type_slug = "conflict"
    title = "Conflict"


class ChainConflict(Conflict):
    """Wrong ``seq`` or ``prev_hash``: someone else appended first."""

    type_slug = "chain-conflict"
    title = "Chain head moved"


class AlertTransitionRefused(Conflict):
    """The alert's handling state does not allow this action (e.g. closing an open alert)."""

    type_slug = "alert-transition"
    title = "Alert transition refused"


class RateLimited(WasteError):
    """Too many attempts in too short a time."""

    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"


class Unavailable(WasteError):
    """A dependency (database, broker) is unavailable; retry later."""

    status = 503
    type_slug = "unavailable"
    title = "Service unavailable"
