"""Webhook subscriptions: subscribe a URL, list, read, delete, and see the delivery history."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select, update

from waste.auth.tokens import Principal
from waste.errors import Conflict, Invalid, NotFound
from waste.registry.domain import Role
from waste.registry.models import Party
from waste.uow import UnitOfWork
from waste.webhooks import signing
from waste.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

MAX_SUBSCRIPTIONS_PER_PARTY = 10
MAX_URL_LENGTH = 2000
DEFAULT_TOPICS = ("manifest.*",)
_TOPIC = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")

PENDING, DELIVERED, FAILED, ABANDONED = "pending", "delivered", "failed", "abandoned"


def validate_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host and no credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(f"url is longer than {MAX_URL_LENGTH} characters", field="url")
    if _UNSAFE.search(url):
        raise Invalid("url must not contain spaces or control characters", field="url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Invalid("url must be an http:// or https:// URL", field="url")
    try:
        _port = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError as exc:
        raise Invalid("url has an invalid port", field="url") from exc
    if not parts.hostname:
        raise Invalid("url must name a host", field="url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url must not carry credentials; the signature authenticates", field="url")
    if parts.fragment:
        raise Invalid("url must not have a #fragment", field="url")
    return url


def validate_topics(topics: list[str] | None) -> list[str]:
    """Topic patterns: ``manifest.received``, ``manifest.*`` or ``*``; each once, at most 20."""
    if topics is None:
        return list(DEFAULT_TOPICS)
    if not topics or len(topics) > 20:
        raise Invalid("topics must list 1 to 20 patterns", field="topics")
    for i, topic in enumerate(topics):
        if len(topic) > 100 or not _TOPIC.match(topic):
            raise Invalid(
                f"topics[{i}] must look like manifest.received, manifest.* or *",
                field=f"topics[{i}]",
            )
    if len(set(topics)) != len(topics):
        raise Invalid("topics must not repeat a pattern", field="topics")
    return list(topics)


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether a subscription's topic ``pattern`` selects ``topic``."""
    if pattern in ("*", topic):
        return True
    return pattern.endswith(".*") and topic.startswith(pattern[:-1])


def _owner(*, uow: UnitOfWork, principal: Principal, party_id: str | None) -> str:
    if principal.role is Role.ADMIN:
        if party_id is None:
            raise Invalid("an admin must name the party_id that subscribes", field="party_id")
        if uow.session.get(Party, party_id) is None:
            raise NotFound(f"no party {party_id}", field="party_id")
        return party_id
    if party_id is not None and party_id != principal.party_id:
        raise Invalid("a party subscribes only for itself", field="party_id")
    assert principal.party_id is not None  # every non-admin token names its party
    return principal.party_id


def create_subscription(
    *,
    uow: UnitOfWork,
    principal: Principal,
    url: str,
    topics: list[str] | None,
    description: str,
    party_id: str | None,
    now: datetime,
) -> tuple[WebhookSubscription, str]:
    """Subscribe a URL to the party's messages; returns the row and the secret (shown once)."""
    owner = _owner(uow=uow, principal=principal, party_id=party_id)
    url = validate_url(url)
    patterns = validate_topics(topics)
    count = uow.session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.party_id == owner, WebhookSubscription.deleted_at.is_(None))
    )
    if (count or 0) >= MAX_SUBSCRIPTIONS_PER_PARTY:
        raise Conflict(f"a party may have at most {MAX_SUBSCRIPTIONS_PER_PARTY} subscriptions")
    secret = signing.new_secret()
    row = WebhookSubscription(
        id=str(uuid.uuid4()),
        party_id=owner,
        url=url,
        secret=secret,
        topics=patterns,
        description=description,
        active=True,
        consecutive_failures=0,
        created_at=now,
    )
    uow.session.add(row)
    uow.commit()
    return row, secret


def list_subscriptions(
    *, uow: UnitOfWork, principal: Principal, party_id: str | None = None
) -> list[WebhookSubscription]:
    """The caller's subscriptions (an admin's: every party's, or one party's)."""
    query = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))
    if principal.role is not Role.ADMIN:
        query = query.where(WebhookSubscription.party_id == principal.party_id)
    elif party_id is not None:
        query = query.where(WebhookSubscription.party_id == party_id)
    return list(uow.session.scalars(query.order_by(WebhookSubscription.created_at)))


def get_subscription(
    *, uow: UnitOfWork, principal: Principal, subscription_id: str
) -> WebhookSubscription:
    """One subscription of the caller's party (any, for an admin); else ``NotFound``."""
    row = uow.session.get(WebhookSubscription, subscription_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    if principal.role is not Role.ADMIN and row.party_id != principal.party_id:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return row


def delete_subscription(
    *, uow: UnitOfWork, principal: Principal, subscription_id: str, now: datetime
) -> None:
    """Stop sending to a subscription: forget its secret, abandon what is still pending."""
    row = get_subscription(uow=uow, principal=principal, subscription_id=subscription_id)
    row.deleted_at = now
    row.active = False
    row.secret = ""
    abandon_pending(uow=uow, subscription_id=row.id, reason="subscription deleted")
    uow.commit()


def abandon_pending(*, uow: UnitOfWork, subscription_id: str, reason: str) -> None:
    """Mark every pending delivery of a subscription abandoned (in the current transaction)."""
    uow.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .where(WebhookDelivery.status == PENDING)
        .values(status=ABANDONED, next_attempt_at=None, locked_until=None, last_error=reason)
    )


def list_deliveries(
    *, uow: UnitOfWork, principal: Principal, subscription_id: str, limit: int, offset: int
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """A subscription's deliveries, newest first, each with its attempts in order."""
    sub = get_subscription(uow=uow, principal=principal, subscription_id=subscription_id)
    deliveries = list(
        uow.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == sub.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.outbox_id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for a in uow.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
        ):
            attempts[a.delivery_id].append(a)
    return [(d, attempts[d.id]) for d in deliveries]
