"""Delivery bookkeeping: fan the outbox out, claim due deliveries, record each attempt.

Each step is one short transaction; the HTTP call happens between them, never
inside one (``worker``). A claimed delivery is leased for ``lease_s``: if the
worker dies mid-call the lease runs out and the delivery is tried again, so
delivery is at least once and receivers deduplicate on ``webhook-id``.
Failures are retried with exponential backoff; a subscription is disabled
after ``disable_after`` consecutive failed attempts, or at once on ``410 Gone``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from waste.clock import format_utc
from waste.uow import UnitOfWork
from waste.webhooks.models import (
    OutboxMessage,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from waste.webhooks.service import (
    DELIVERED,
    FAILED,
    PENDING,
    abandon_pending,
    topic_matches,
)


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retry schedule, lease and the failure count that disables a subscription."""

    max_attempts: int = 12
    base_delay_s: float = 30.0
    max_delay_s: float = 4 * 3600.0
    disable_after: int = 10
    lease_s: float = 60.0
    timeout_s: float = 10.0

    def delay_after(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt: base · 2^(n-1), capped."""
        return timedelta(seconds=min(self.base_delay_s * 2 ** (attempts - 1), self.max_delay_s))


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one worker: everything needed to send it without the database."""

    delivery_id: str
    url: str
    secret: str
    body: str
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt gave: a status code, or an error before any answer."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


def message_body(message: OutboxMessage) -> str:
    """The JSON body sent for an outbox message: ``{"type", "timestamp", "data"}``."""
    doc = {
        "type": message.topic,
        "timestamp": format_utc(message.created_at),
        "data": message.payload,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def dispatch(*, uow: UnitOfWork, now: datetime, batch: int = 100) -> int:
    """Turn undispatched outbox messages into deliveries for matching subscriptions."""
    messages = list(
        uow.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.dispatched_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    if not messages:
        return 0
    subs: dict[str, list[WebhookSubscription]] = {}
    for sub in uow.session.scalars(
        select(WebhookSubscription).where(
            WebhookSubscription.party_id.in_({m.party_id for m in messages}),
            WebhookSubscription.active.is_(True),
            WebhookSubscription.deleted_at.is_(None),
        )
    ):
        subs.setdefault(sub.party_id, []).append(sub)
    for message in messages:
        for sub in subs.get(message.party_id, []):
            if any(topic_matches(p, message.topic) for p in sub.topics):
                uow.session.add(
                    WebhookDelivery(
                        id=f"msg_{uuid.uuid4().hex}",
                        subscription_id=sub.id,
                        outbox_id=message.id,
                        topic=message.topic,
                        body=message_body(message),
                        status=PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        message.dispatched_at = now
    uow.commit()
    return len(messages)


def claim_due(
    *, uow: UnitOfWork, now: datetime, policy: DeliveryPolicy, batch: int = 50
) -> list[Claim]:
    """Lease the deliveries due now to this worker, oldest first."""
    rows = uow.session.execute(
        select(WebhookDelivery, WebhookSubscription)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
            (WebhookDelivery.locked_until.is_(None)) | (WebhookDelivery.locked_until < now),
            WebhookSubscription.active.is_(True),
            WebhookSubscription.deleted_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.outbox_id)
        .limit(batch)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ).all()
    claims = []
    for delivery, sub in rows:
        delivery.locked_until = now + timedelta(seconds=policy.lease_s)
        claims.append(Claim(delivery.id, sub.url, sub.secret, delivery.body, delivery.attempts + 1))
    if claims:
        uow.commit()
    return claims


def record_outcome(
    *, uow: UnitOfWork, claim: Claim, outcome: Outcome, now: datetime, policy: DeliveryPolicy
) -> str:
    """Record one attempt; retry later, give up, or disable the subscription; return the status."""
    delivery = uow.session.get(WebhookDelivery, claim.delivery_id, with_for_update=True)
    if delivery is None:  # pragma: no cover - deliveries are never deleted
        return FAILED
    sub = uow.session.get(WebhookSubscription, delivery.subscription_id, with_for_update=True)
    assert sub is not None
    delivery.attempts += 1
    uow.session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            at=now,
            status_code=outcome.status_code,
            error=None if outcome.error is None else outcome.error[:500],
            duration_ms=outcome.duration_ms,
        )
    )
    delivery.last_status_code = outcome.status_code
    delivery.last_error = None if outcome.error is None else outcome.error[:500]
    delivery.locked_until = None
    if delivery.status == PENDING:  # not abandoned meanwhile (subscription deleted or disabled)
        _settle(uow=uow, delivery=delivery, sub=sub, outcome=outcome, now=now, policy=policy)
    uow.flush()
    status = delivery.status
    uow.commit()
    return status


def _settle(
    *,
    uow: UnitOfWork,
    delivery: WebhookDelivery,
    sub: WebhookSubscription,
    outcome: Outcome,
    now: datetime,
    policy: DeliveryPolicy,
) -> None:
    if outcome.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DELIVERED, now, None
        sub.consecutive_failures = 0
        return
    sub.consecutive_failures += 1
    if outcome.status_code == 410:
        _disable(uow=uow, sub=sub, now=now, reason="the endpoint answered 410 Gone")
    elif sub.consecutive_failures >= policy.disable_after:
        reason = f"{sub.consecutive_failures} consecutive failed attempts"
        _disable(uow=uow, sub=sub, now=now, reason=reason)
    elif delivery.attempts >= policy.max_attempts:
        delivery.status, delivery.next_attempt_at = FAILED, None
    else:
        delivery.next_attempt_at = now + policy.delay_after(delivery.attempts)


def _disable(*, uow: UnitOfWork, sub: WebhookSubscription, now: datetime, reason: str) -> None:
    sub.active = False
    sub.disabled_at = now
    sub.disabled_reason = reason
    uow.flush()
    abandon_pending(uow=uow, subscription_id=sub.id, reason=f"subscription disabled: {reason}")
