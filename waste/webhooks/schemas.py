"""Request and response bodies of the webhooks API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SubscriptionIn(BaseModel):
    """A URL to subscribe to the party's messages."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(
        max_length=2000,
        description="http(s) URL that receives POSTs signed per Standard Webhooks",
        examples=["https://erp.example.com/hooks/custody"],
    )
    topics: list[str] | None = Field(
        default=None,
        description="Topic patterns: manifest.received, manifest.* (the default) or *",
        examples=[["manifest.*"]],
    )
    description: str = Field(default="", max_length=200)
    party_id: str | None = Field(default=None, description="Admins only: the subscribing party")


class SubscriptionOut(BaseModel):
    """A webhook subscription (its secret is shown only when it is created)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    party_id: str
    url: str
    topics: list[str]
    description: str
    active: bool
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime


class CreatedSubscription(SubscriptionOut):
    """A new subscription with its signing secret, shown once."""

    secret: str = Field(description="whsec_<base64>: the HMAC key, base64 after the prefix")


class AttemptOut(BaseModel):
    """One HTTP attempt."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    """One message sent (or being sent) to a subscription."""

    id: str = Field(description="The webhook-id header: the same on every retry")
    topic: str
    status: str = Field(description="pending, delivered, failed (gave up) or abandoned")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    body: str = Field(description="The exact JSON body signed and sent")
    history: list[AttemptOut]
