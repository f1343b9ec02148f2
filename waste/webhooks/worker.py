"""The webhook worker: a background thread in the API process that sends what the outbox holds.

Each round dispatches new outbox messages to subscriptions, claims the
deliveries due now, POSTs each one signed (Standard Webhooks), and records the
outcome. The HTTP transport is injectable (``httpx.MockTransport`` in tests),
and ``run_once`` drives one round without the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session, sessionmaker

from waste import __version__
from waste.clock import Clock, utcnow
from waste.uow import UnitOfWork
from waste.webhooks import delivery, signing
from waste.webhooks.delivery import Claim, DeliveryPolicy, Outcome

log = logging.getLogger("waste.webhooks")
USER_AGENT = f"waste-custody-webhooks/{__version__}"
DISPATCH_BATCH = 100
MAX_DISPATCH_BATCHES = 10


@dataclass(frozen=True)
class Round:
    """What one round did."""

    dispatched: int
    attempted: int
    delivered: int


class WebhookWorker:
    """Dispatches the outbox and delivers webhooks, with retries, on a background thread."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        transport: httpx.BaseTransport | None = None,
        policy: DeliveryPolicy | None = None,
        interval_s: float = 1.0,
        clock: Clock = utcnow,
    ) -> None:
        self._factory = session_factory
        self._transport = transport
        self.policy = policy or DeliveryPolicy()
        self._interval = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for the round in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.policy.timeout_s + 5)

    def run_once(self) -> Round:
        """One round: dispatch the outbox, then send every delivery due now."""
        dispatched = 0
        for _ in range(MAX_DISPATCH_BATCHES):  # catch up on a backlog, but keep rounds short
            with UnitOfWork(self._factory) as uow:
                count = delivery.dispatch(uow=uow, now=self._clock(), batch=DISPATCH_BATCH)
            dispatched += count
            if count < DISPATCH_BATCH:
                break
        with UnitOfWork(self._factory) as uow:
            claims = delivery.claim_due(uow=uow, now=self._clock(), policy=self.policy)
        delivered = 0
        if claims:
            with httpx.Client(
                transport=self._transport,
                timeout=self.policy.timeout_s,
                follow_redirects=False,
                trust_env=False,
            ) as http:
                for claim in claims:
                    outcome = self._send(http, claim)
                    with UnitOfWork(self._factory) as uow:
                        delivery.record_outcome(
                            uow=uow,
                            claim=claim,
                            outcome=outcome,
                            now=self._clock(),
                            policy=self.policy,
                        )
                    delivered += outcome.ok
        return Round(dispatched, len(claims), delivered)

    def _send(self, http: httpx.Client, claim: Claim) -> Outcome:
        body = claim.body.encode()
        timestamp = int(self._clock().timestamp())
        request_headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signing.headers(claim.secret, claim.delivery_id, timestamp, body),
        }
        started = time.monotonic()
        try:
            with http.stream("POST", claim.url, content=body, headers=request_headers) as resp:
                code = resp.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return Outcome(None, f"{type(exc).__name__}: {exc}", elapsed)
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(code, None if 200 <= code < 300 else f"HTTP {code}", elapsed)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database or network hiccup must not kill the worker
                log.exception("webhook round failed; retrying")
            self._stop.wait(self._interval)
