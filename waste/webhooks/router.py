"""Thin HTTP routes for webhook subscriptions and their delivery history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from waste.auth.deps import ANY_PARTY, Allow, UoW
from waste.auth.tokens import Principal
from waste.clock import utcnow
from waste.webhooks import service
from waste.webhooks.schemas import (
    AttemptOut,
    CreatedSubscription,
    DeliveryOut,
    SubscriptionIn,
    SubscriptionOut,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])

Subscriber = Annotated[Principal, Depends(Allow(*ANY_PARTY))]


@router.post("/webhooks", status_code=201, response_model=CreatedSubscription)
def subscribe(body: SubscriptionIn, uow: UoW, principal: Subscriber) -> object:
    """Subscribe a URL to your party's manifest events; the secret is shown only here."""
    row, secret = service.create_subscription(
        uow=uow,
        principal=principal,
        url=body.url,
        topics=body.topics,
        description=body.description,
        party_id=body.party_id,
        now=utcnow(),
    )
    return {**SubscriptionOut.model_validate(row).model_dump(), "secret": secret}


@router.get("/webhooks", response_model=list[SubscriptionOut])
def list_subscriptions(
    uow: UoW, principal: Subscriber, party_id: Annotated[str | None, Query()] = None
) -> object:
    """Your party's subscriptions (admins: all, or one party's)."""
    return service.list_subscriptions(uow=uow, principal=principal, party_id=party_id)


@router.get("/webhooks/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(subscription_id: str, uow: UoW, principal: Subscriber) -> object:
    """One subscription."""
    return service.get_subscription(uow=uow, principal=principal, subscription_id=subscription_id)


@router.delete("/webhooks/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: str, uow: UoW, principal: Subscriber) -> Response:
    """Delete a subscription: nothing more is sent to it."""
    service.delete_subscription(
        uow=uow, principal=principal, subscription_id=subscription_id, now=utcnow()
    )
    return Response(status_code=204)


@router.get("/webhooks/{subscription_id}/deliveries", response_model=list[DeliveryOut])
def deliveries(
    subscription_id: str,
    uow: UoW,
    principal: Subscriber,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> object:
    """The subscription's deliveries, newest first, with every attempt."""
    rows = service.list_deliveries(
        uow=uow, principal=principal, subscription_id=subscription_id, limit=limit, offset=offset
    )
    return [
        DeliveryOut(
            id=d.id,
            topic=d.topic,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            body=d.body,
            history=[AttemptOut.model_validate(a) for a in attempts],
        )
        for d, attempts in rows
    ]
