"""The simulated payment provider of ``make dev``: Stripe's behaviour without Stripe.

It keeps its own state (``simulated_*`` tables, written in transactions of its own, as an
outside provider's would be), answers the :class:`PaymentProvider` calls with Stripe's
idempotency semantics, and tells payments what happened the way Stripe does: events in
Stripe's shapes, signed with Stripe's scheme, POSTed to the webhook endpoint and retried
with backoff until it answers 2xx. So the simulated path runs through the very same
signature check, event-id dedupe and state machine as Stripe's.

A buyer pays from a terminal or a browser, authenticated by the intent's client secret
(as Stripe.js is):

- ``POST /api/v1/payments/simulator/intents/{id}/confirm`` with ``outcome``:
  ``succeed``, ``fail`` (card declined), or ``three_d_secure`` (``requires_action`` until
  ``…/authenticate`` approves or refuses it); ``card`` picks a test card: ``4242…``
  normal risk, ``4000000000004954`` highest risk (held for review), like Stripe's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from marquee_payments.models import SimulatedIntent, SimulatedRefund, SimulatedWebhook
from marquee_payments.providers import stripe_shaped
from marquee_payments.providers.base import (
    ChargeRisk,
    InvalidWebhook,
    ProviderError,
    ProviderEvent,
    ProviderIntent,
    ProviderPayment,
    ProviderRefund,
    provider_event_from_stripe,
)
from marquee_payments.providers.signature import sign_payload, verify_signature
from marquee_platform.clock import Clock, utc_now
from marquee_platform.db import Database
from marquee_platform.errors import InvalidInput, NotFound

log = logging.getLogger("marquee.payments.simulator")

HIGH_RISK_CARD = "4000000000004954"
"""Stripe's test card whose charges are rated ``highest`` risk."""
DECLINED_CARD = "4000000000000002"


def _fingerprint(card: str) -> str:
    return hashlib.sha256(f"marquee-simulated-card:{card}".encode()).hexdigest()[:16]


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


class SimulatedProvider:
    """A :class:`PaymentProvider` over the simulator's own tables."""

    name = "simulated"

    def __init__(
        self,
        database: Database,
        *,
        webhook_secret: str,
        webhook_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
        tolerance_seconds: int = 300,
        owns_database: bool = False,
        lease_seconds: float = 60.0,
    ) -> None:
        self.lease = timedelta(seconds=lease_seconds)
        self.database = database
        self._owns_database = owns_database
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.clock = clock
        self.tolerance_seconds = tolerance_seconds
        self._http = httpx.AsyncClient(transport=transport, timeout=5.0)
        self._deliveries: set[asyncio.Task[Any]] = set()

    async def aclose(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self._http.aclose()
        if self._owns_database:
            await self.database.dispose()

    # ---- the provider calls --------------------------------------------------------------

    async def create_intent(
        self,
        *,
        order_id: uuid.UUID,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderIntent:
        if amount_minor <= 0:
            raise ProviderError("Amount must be positive.", code="amount_too_small")
        intent_id = stripe_shaped.new_object_id("pi")
        async with self.database.transaction() as session:
            await session.execute(
                insert(SimulatedIntent)
                .values(
                    id=intent_id,
                    idempotency_key=idempotency_key,
                    client_secret=f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
                    order_id=order_id,
                    amount_minor=amount_minor,
                    currency=currency.upper(),
                    description=description,
                    metadata_=dict(metadata),
                    status="requires_payment_method",
                    amount_refunded_minor=0,
                    created=self.clock(),
                )
                .on_conflict_do_nothing(index_elements=[SimulatedIntent.idempotency_key])
            )
            intent = (
                await session.execute(
                    select(SimulatedIntent).where(
                        SimulatedIntent.idempotency_key == idempotency_key
                    )
                )
            ).scalar_one()
            return self._intent(intent)

    async def retrieve_intent(self, intent_id: str) -> ProviderIntent:
        async with self.database.reading() as session:
            intent = await session.get(SimulatedIntent, intent_id)
            if intent is None:
                raise ProviderError(
                    f"No such payment_intent: '{intent_id}'", code="resource_missing"
                )
            return self._intent(intent)

    async def charge_risk(self, charge_id: str) -> ChargeRisk:
        async with self.database.reading() as session:
            intent = (
                await session.execute(
                    select(SimulatedIntent).where(SimulatedIntent.charge_id == charge_id)
                )
            ).scalar_one_or_none()
        if intent is None:
            raise ProviderError(f"No such charge: '{charge_id}'", code="resource_missing")
        risk = intent.risk_score or 20
        return ChargeRisk(
            risk_level="highest" if risk >= 75 else "elevated" if risk >= 65 else "normal",
            risk_score=risk,
            card_fingerprint=intent.card_fingerprint,
        )

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> ProviderIntent:
        queued: list[str] = []
        async with self.database.transaction() as session:
            intent = await session.get(SimulatedIntent, intent_id, with_for_update=True)
            if intent is None:
                raise ProviderError(
                    f"No such payment_intent: '{intent_id}'", code="resource_missing"
                )
            if intent.status not in ("succeeded", "canceled", "processing"):
                intent.status = "canceled"
                queued += await self._queue(
                    session, "payment_intent.canceled", self._intent_object(intent)
                )
            answer = self._intent(intent)
        self._deliver_soon(queued)
        return answer

    async def refund(
        self, *, intent_id: str, amount_minor: int, idempotency_key: str, reason: str | None
    ) -> ProviderRefund:
        queued: list[str] = []
        async with self.database.transaction() as session:
            seen = (
                await session.execute(
                    select(SimulatedRefund).where(
                        SimulatedRefund.idempotency_key == idempotency_key
                    )
                )
            ).scalar_one_or_none()
            if seen is not None:
                return self._refund(seen)
            intent = await session.get(SimulatedIntent, intent_id, with_for_update=True)
            if intent is None or intent.status != "succeeded" or intent.charge_id is None:
                raise ProviderError(
                    f"PaymentIntent {intent_id} has no successful charge to refund.",
                    code="charge_not_refundable",
                )
            if (
                amount_minor <= 0
                or amount_minor > intent.amount_minor - intent.amount_refunded_minor
            ):
                raise ProviderError(
                    f"Refund amount ({amount_minor}) is greater than unrefunded amount on "
                    f"charge ({intent.amount_minor - intent.amount_refunded_minor})",
                    code="amount_too_large",
                )
            made = SimulatedRefund(
                id=stripe_shaped.new_object_id("re"),
                idempotency_key=idempotency_key,
                intent_id=intent_id,
                amount_minor=amount_minor,
                currency=intent.currency,
                status="succeeded",
                created=self.clock(),
            )
            session.add(made)
            intent.amount_refunded_minor += amount_minor
            await session.flush()
            refunds = (
                await session.execute(
                    select(SimulatedRefund).where(SimulatedRefund.intent_id == intent_id)
                )
            ).scalars()
            queued += await self._queue(
                session, "charge.refunded", self._charge_object(intent, refunds=list(refunds))
            )
            answer = self._refund(made)
        self._deliver_soon(queued)
        return answer

    async def list_payments(self, *, since: datetime) -> AsyncIterator[ProviderPayment]:
        async with self.database.reading() as session:
            intents = (
                (
                    await session.execute(
                        select(SimulatedIntent)
                        .where(SimulatedIntent.created >= since)
                        .order_by(SimulatedIntent.created)
                    )
                )
                .scalars()
                .all()
            )
        for intent in intents:
            yield ProviderPayment(
                intent_id=intent.id,
                order_id=intent.order_id,
                amount_minor=intent.amount_minor,
                currency=intent.currency,
                status=intent.status,
                amount_refunded_minor=intent.amount_refunded_minor,
                created=intent.created,
            )

    async def list_refunds(self, *, since: datetime) -> AsyncIterator[ProviderRefund]:
        async with self.database.reading() as session:
            refunds = (
                (
                    await session.execute(
                        select(SimulatedRefund)
                        .where(SimulatedRefund.created >= since)
                        .order_by(SimulatedRefund.created)
                    )
                )
                .scalars()
                .all()
            )
        for refund in refunds:
            yield self._refund(refund)

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> ProviderEvent:
        verify_signature(
            payload,
            signature_header,
            [self.webhook_secret],
            tolerance_seconds=self.tolerance_seconds,
            now=_unix(self.clock()),
        )
        try:
            event = json.loads(payload)
        except ValueError as error:
            raise InvalidWebhook(f"the body is not JSON: {error}") from error
        if not isinstance(event, dict):
            raise InvalidWebhook("the body is not a JSON object")
        return provider_event_from_stripe(event)

    # ---- what a buyer does ---------------------------------------------------------------

    async def confirm(
        self, intent_id: str, client_secret: str, *, outcome: str, card: str
    ) -> ProviderIntent:
        queued: list[str] = []
        async with self.database.transaction() as session:
            intent = await self._owned(session, intent_id, client_secret)
            if intent.status in ("succeeded", "canceled"):
                raise InvalidInput(
                    f"This PaymentIntent is {intent.status}: it cannot be confirmed again.",
                    code="payment-intent-unexpected-state",
                )
            intent.card_fingerprint = _fingerprint(card)
            intent.risk_score = 80 if card == HIGH_RISK_CARD else 20
            if outcome == "fail" or card == DECLINED_CARD:
                intent.status = "requires_payment_method"
                intent.failure_message = "Your card was declined."
                queued += await self._queue(
                    session, "payment_intent.payment_failed", self._intent_object(intent)
                )
            elif outcome == "three_d_secure":
                intent.status = "requires_action"
                queued += await self._queue(
                    session, "payment_intent.requires_action", self._intent_object(intent)
                )
            else:
                queued += await self._succeed(session, intent)
            answer = self._intent(intent)
        self._deliver_soon(queued)
        return answer

    async def authenticate(
        self, intent_id: str, client_secret: str, *, approve: bool
    ) -> ProviderIntent:
        queued: list[str] = []
        async with self.database.transaction() as session:
            intent = await self._owned(session, intent_id, client_secret)
            if intent.status != "requires_action":
                raise InvalidInput(
                    f"This PaymentIntent is {intent.status}: there is nothing to authenticate.",
                    code="payment-intent-unexpected-state",
                )
            if approve:
                queued += await self._succeed(session, intent)
            else:
                intent.status = "requires_payment_method"
                intent.failure_message = "The cardholder did not authenticate the payment."
                queued += await self._queue(
                    session, "payment_intent.payment_failed", self._intent_object(intent)
                )
            answer = self._intent(intent)
        self._deliver_soon(queued)
        return answer

    async def dispute(self, intent_id: str) -> None:
        """What a bank does (dev and tests): dispute the whole charge."""
        queued: list[str] = []
        async with self.database.transaction() as session:
            intent = await session.get(SimulatedIntent, intent_id, with_for_update=True)
            if intent is None or intent.charge_id is None:
                raise NotFound(f"No charged PaymentIntent {intent_id}.", code="not-found")
            queued += await self._queue(
                session,
                "charge.dispute.created",
                stripe_shaped.dispute_object(
                    amount=intent.amount_minor,
                    currency=intent.currency.lower(),
                    charge=intent.charge_id,
                    payment_intent=intent.id,
                    created=self.clock(),
                ),
            )
        self._deliver_soon(queued)

    async def _owned(self, session: Any, intent_id: str, client_secret: str) -> SimulatedIntent:
        intent = await session.get(SimulatedIntent, intent_id, with_for_update=True)
        if intent is None or not secrets.compare_digest(
            intent.client_secret.encode(), client_secret.encode()
        ):
            raise NotFound(
                "No such PaymentIntent for that client secret.", code="payment-intent-not-found"
            )
        assert isinstance(intent, SimulatedIntent)
        return intent

    async def _succeed(self, session: Any, intent: SimulatedIntent) -> list[str]:
        intent.status = "succeeded"
        intent.charge_id = intent.charge_id or stripe_shaped.new_object_id("ch")
        intent.failure_message = None
        return await self._queue(session, "payment_intent.succeeded", self._intent_object(intent))

    # ---- Stripe's shapes -----------------------------------------------------------------

    def _charge_object(
        self, intent: SimulatedIntent, *, refunds: list[SimulatedRefund] | None = None
    ) -> dict[str, Any]:
        assert intent.charge_id is not None
        risk = intent.risk_score or 20
        return dict(
            stripe_shaped.charge_object(
                amount=intent.amount_minor,
                currency=intent.currency.lower(),
                payment_intent=intent.id,
                charge_id=intent.charge_id,
                created=intent.created,
                amount_refunded=intent.amount_refunded_minor,
                refunds=[
                    stripe_shaped.refund_object(
                        amount=refund.amount_minor,
                        currency=refund.currency.lower(),
                        payment_intent=intent.id,
                        charge=intent.charge_id,
                        refund_id=refund.id,
                        created=refund.created,
                    )
                    for refund in refunds or []
                ],
                metadata=intent.metadata_,
                risk_level="highest" if risk >= 75 else "elevated" if risk >= 65 else "normal",
                risk_score=risk,
                fingerprint=intent.card_fingerprint,
            )
        )

    def _intent_object(self, intent: SimulatedIntent) -> dict[str, Any]:
        charge: Any = self._charge_object(intent) if intent.charge_id else None
        error = (
            stripe_shaped.card_error_object(
                payment_method=stripe_shaped.payment_method_object(
                    fingerprint=intent.card_fingerprint
                ),
                message=intent.failure_message,
            )
            if intent.failure_message
            else None
        )
        return dict(
            stripe_shaped.payment_intent_object(
                amount=intent.amount_minor,
                currency=intent.currency.lower(),
                intent_id=intent.id,
                status=intent.status,
                created=intent.created,
                metadata=intent.metadata_,
                description=intent.description,
                client_secret=intent.client_secret,
                latest_charge=charge,
                last_payment_error=error,
                amount_received=intent.amount_minor if intent.status == "succeeded" else 0,
            )
        )

    def _intent(self, intent: SimulatedIntent) -> ProviderIntent:
        return ProviderIntent(
            id=intent.id,
            client_secret=intent.client_secret,
            amount_minor=intent.amount_minor,
            currency=intent.currency,
            status=intent.status,
            order_id=intent.order_id,
        )

    def _refund(self, refund: SimulatedRefund) -> ProviderRefund:
        return ProviderRefund(
            id=refund.id,
            intent_id=refund.intent_id,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            status=refund.status,
            created=refund.created,
        )

    # ---- webhooks ------------------------------------------------------------------------

    async def _queue(
        self, session: Any, event_type: str, data_object: Mapping[str, Any]
    ) -> list[str]:
        """Owe the webhook endpoint this event (in the caller's transaction); its id."""
        event = stripe_shaped.event_object(event_type, data_object, created=self.clock())
        session.add(
            SimulatedWebhook(
                event_id=event["id"],
                payload=json.dumps(event, separators=(",", ":")),
                attempts=0,
                next_attempt_at=self.clock(),
            )
        )
        return [event["id"]]

    def _deliver_soon(self, event_ids: list[str]) -> None:
        """Deliver what a call queued, now, in the background (the buyer's request does
        not wait for the webhook, as with Stripe)."""
        if not event_ids:
            return
        task = asyncio.get_running_loop().create_task(self.deliver_due(event_ids))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def settle(self) -> None:
        """Wait for the deliveries already on their way (tests: before looking)."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    async def deliver_due(self, event_ids: Sequence[str] | None = None) -> int:
        """POST the webhooks that are due (or just ``event_ids``), signed now; answers how
        many were delivered. Each is leased for a minute before the POST, so no database
        connection waits on the webhook endpoint and two deliverers never send one event
        at once; a failure is retried later with exponential backoff (at most an hour)."""
        now = self.clock()
        async with self.database.transaction() as session:
            statement = (
                select(SimulatedWebhook)
                .where(
                    SimulatedWebhook.delivered_at.is_(None),
                    SimulatedWebhook.next_attempt_at <= now,
                )
                .order_by(SimulatedWebhook.next_attempt_at)
                .limit(100)
                .with_for_update(skip_locked=True)
            )
            if event_ids is not None:
                statement = statement.where(SimulatedWebhook.event_id.in_(event_ids))
            due = (await session.execute(statement)).scalars().all()
            leased = []
            for webhook in due:
                webhook.attempts += 1
                webhook.next_attempt_at = now + self.lease
                leased.append((webhook.event_id, webhook.payload, webhook.attempts))
        if not leased:
            return 0
        outcomes = await asyncio.gather(*(self._post(payload) for _, payload, _ in leased))
        async with self.database.transaction() as session:
            for (event_id, _, attempts), error in zip(leased, outcomes, strict=True):
                values: dict[str, Any]
                if error is None:
                    values = {"delivered_at": self.clock(), "last_error": None}
                else:
                    backoff = min(3600.0, 2.0 ** min(attempts, 12))
                    values = {
                        "next_attempt_at": self.clock() + timedelta(seconds=backoff),
                        "last_error": error,
                    }
                    log.warning(
                        "simulated webhook %s not delivered (attempt %d): %s",
                        event_id,
                        attempts,
                        error,
                    )
                await session.execute(
                    update(SimulatedWebhook)
                    .where(SimulatedWebhook.event_id == event_id)
                    .values(**values)
                )
        return sum(1 for error in outcomes if error is None)

    async def _post(self, payload: str) -> str | None:
        """Send one signed event; None when the endpoint answered 2xx, else what failed."""
        body = payload.encode()
        header = sign_payload(body, self.webhook_secret, timestamp=_unix(self.clock()))
        try:
            response = await self._http.post(
                self.webhook_url,
                content=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": header},
            )
        except httpx.HTTPError as failure:
            return f"{type(failure).__name__}: {failure}"
        return None if 200 <= response.status_code < 300 else f"answered {response.status_code}"

    async def pending_webhooks(self) -> int:
        async with self.database.reading() as session:
            rows = await session.execute(
                select(SimulatedWebhook.event_id).where(SimulatedWebhook.delivered_at.is_(None))
            )
            return len(rows.all())

    async def retry_all_now(self) -> None:
        """Make every undelivered webhook due (tests, and `marquee payments` in dev)."""
        async with self.database.transaction() as session:
            await session.execute(
                update(SimulatedWebhook)
                .where(SimulatedWebhook.delivered_at.is_(None))
                .values(next_attempt_at=datetime(2000, 1, 1, tzinfo=UTC))
            )


# ---- the buyer's side, over HTTP -----------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Confirm(_Body):
    client_secret: str = Field(min_length=10, max_length=200)
    outcome: Literal["succeed", "fail", "three_d_secure"] = "succeed"
    card: str = Field(default="4242424242424242", pattern=r"^[0-9]{12,19}$")


class Authenticate(_Body):
    client_secret: str = Field(min_length=10, max_length=200)
    approve: bool = True


class SimulatedIntentRead(BaseModel):
    id: str
    status: str
    amount_minor: int
    currency: str
    order_id: uuid.UUID | None


def _read(intent: ProviderIntent) -> SimulatedIntentRead:
    return SimulatedIntentRead(
        id=intent.id,
        status=intent.status,
        amount_minor=intent.amount_minor,
        currency=intent.currency,
        order_id=intent.order_id,
    )


def _simulator(request: Request) -> SimulatedProvider:
    provider = request.app.state.provider
    if not isinstance(provider, SimulatedProvider):
        raise NotFound(
            "The simulated provider is off: this deployment takes real payments.",
            code="simulator-off",
        )
    return provider


simulator_routes = APIRouter(prefix="/api/v1/payments/simulator", tags=["simulated provider"])


@simulator_routes.get("/intents/{intent_id}", response_model=SimulatedIntentRead)
async def read_intent(
    intent_id: str,
    request: Request,
    client_secret: Annotated[str, Query(min_length=10, max_length=200)],
) -> SimulatedIntentRead:
    """**Who may call:** whoever has the intent's client secret (the buyer's browser)."""
    provider = _simulator(request)
    async with provider.database.reading() as session:
        intent = await session.get(SimulatedIntent, intent_id)
        if intent is None or not secrets.compare_digest(
            intent.client_secret.encode(), client_secret.encode()
        ):
            raise NotFound(
                "No such PaymentIntent for that client secret.", code="payment-intent-not-found"
            )
        return _read(provider._intent(intent))


@simulator_routes.post("/intents/{intent_id}/confirm", response_model=SimulatedIntentRead)
async def confirm_intent(intent_id: str, body: Confirm, request: Request) -> SimulatedIntentRead:
    """**Who may call:** whoever has the intent's client secret. Pay (or fail to pay) as
    a card would: the result reaches payments as a signed webhook, like Stripe's."""
    provider = _simulator(request)
    return _read(
        await provider.confirm(intent_id, body.client_secret, outcome=body.outcome, card=body.card)
    )


@simulator_routes.post("/intents/{intent_id}/authenticate", response_model=SimulatedIntentRead)
async def authenticate_intent(
    intent_id: str, body: Authenticate, request: Request
) -> SimulatedIntentRead:
    """**Who may call:** whoever has the intent's client secret. The 3-D Secure step."""
    provider = _simulator(request)
    return _read(await provider.authenticate(intent_id, body.client_secret, approve=body.approve))
