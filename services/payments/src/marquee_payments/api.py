"""The payments API: start paying for an order, the provider's webhooks, and the admins'
fraud reviews. Each summary says who may call it.

Webhook endpoints take no bearer token: the provider's signature over the raw body is
what authenticates them, and a forged, altered or replayed (signed more than the
tolerance ago) body is a 400 that changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from marquee_payments import handlers
from marquee_payments.booking_client import BookingClient
from marquee_payments.fraud import FraudPolicy
from marquee_payments.models import FraudDecision, KnownOrder, Payment
from marquee_payments.providers.base import InvalidWebhook, PaymentProvider, ProviderUnavailable
from marquee_payments.settings import PaymentsSettings
from marquee_platform.deps import ClockDep, DatabaseDep, OutboxDep
from marquee_platform.errors import BadRequest, NotFound, Unavailable
from marquee_platform.faults import crash_point
from marquee_platform.forwarding import client_address, parse_networks
from marquee_platform.http import ReadSessionDep, WriteSessionDep, router
from marquee_platform.idempotency import IdempotencyKey
from marquee_platform.security import CurrentUser, Principal, Role, require_roles

payment_routes = router(prefix="/api/v1/payments", tags=["payments"])
webhook_routes = router(prefix="/api/v1/payments/webhooks", tags=["webhooks"])
review_routes = router(prefix="/api/v1/payments/reviews", tags=["fraud reviews"])


async def _provider(request: Request) -> PaymentProvider:
    provider: PaymentProvider = request.app.state.provider
    return provider


async def _settings(request: Request) -> PaymentsSettings:
    settings: PaymentsSettings = request.app.state.settings
    return settings


def policy_of(settings: PaymentsSettings) -> FraudPolicy:
    return FraudPolicy(
        window=timedelta(seconds=settings.velocity_window_seconds),
        max_orders_per_account=settings.max_orders_per_account,
        max_orders_per_address=settings.max_orders_per_address,
        max_orders_per_card=settings.max_orders_per_card,
        review_risk_score=settings.review_risk_score,
    )


# ``async def`` dependencies: FastAPI runs a plain ``def`` one in its thread pool, a hop
# that costs more than they do.
ProviderDep = Annotated[PaymentProvider, Depends(_provider)]
SettingsDep = Annotated[PaymentsSettings, Depends(_settings)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaymentCreate(_Body):
    order_id: uuid.UUID


class PaymentRead(BaseModel):
    payment_id: uuid.UUID
    order_id: uuid.UUID
    provider: str = Field(description="'stripe' or 'simulated'")
    provider_payment_id: str = Field(description="The PaymentIntent id")
    client_secret: str | None = Field(
        description="For Stripe Elements (or the simulator) in the buyer's browser"
    )
    amount_minor: int
    currency: str
    status: str
    amount_refunded_minor: int
    review: str = Field(description="none, pending (held for an admin), approved, refunded")

    @classmethod
    def of(cls, payment: Payment, *, with_secret: bool = True) -> PaymentRead:
        return cls(
            payment_id=payment.id,
            order_id=payment.order_id,
            provider=payment.provider,
            provider_payment_id=payment.provider_payment_id,
            client_secret=payment.client_secret if with_secret else None,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            status=payment.status,
            amount_refunded_minor=payment.amount_refunded_minor,
            review=payment.review,
        )


@payment_routes.post("", status_code=201, response_model=PaymentRead)
async def start_payment(
    body: PaymentCreate,
    request: Request,
    user: CurrentUser,
    _key: IdempotencyKey,
    session: WriteSessionDep,
    provider: ProviderDep,
    settings: SettingsDep,
    clock: ClockDep,
    database: DatabaseDep,
) -> PaymentRead:
    """**Who may call:** the order's buyer.

    Makes the order's PaymentIntent (once: asking again answers the same one) for the
    amount booking priced, and answers its client secret for the browser. No card data
    ever reaches Marquee."""
    order = await _order_to_pay(body.order_id, request, user, session)
    peer = request.client.host if request.client else None
    address = client_address(
        peer,
        ",".join(request.headers.getlist("x-forwarded-for")) or None,
        parse_networks(settings.trusted_proxies),
    )
    payment = await handlers.start_payment(
        order,
        client_address=address,
        session=session,
        decisions=database,
        provider=provider,
        policy=policy_of(settings),
        clock=clock,
    )
    return PaymentRead.of(payment)


async def _order_to_pay(
    order_id: uuid.UUID, request: Request, user: Principal, session: WriteSessionDep
) -> handlers.OrderToPay:
    known = await session.get(KnownOrder, order_id)
    if known is not None:
        if known.user_id != user.user_id:
            raise NotFound(f"There is no order {order_id} of yours.", code="order-not-found")
        if known.state == "pending":
            return handlers.OrderToPay(
                order_id=known.order_id,
                user_id=known.user_id,
                event_id=known.event_id,
                status="pending_payment",
                total_minor=known.total_minor,
                fees_minor=known.fees_minor,
                currency=known.currency,
                expires_at=known.expires_at,
            )
    booking: BookingClient = request.app.state.booking_client
    order = await booking.order(order_id, authorization=request.headers.get("authorization", ""))
    if order.user_id != user.user_id:
        raise NotFound(f"There is no order {order_id} of yours.", code="order-not-found")
    return order


@payment_routes.get("/orders/{order_id}", response_model=PaymentRead)
async def read_payment(
    order_id: uuid.UUID, user: CurrentUser, session: ReadSessionDep
) -> PaymentRead:
    """**Who may call:** the order's buyer, admins."""
    payment = await handlers.payment_of_order(session, order_id)
    if payment is None or not (payment.user_id == user.user_id or user.is_admin):
        raise NotFound(
            f"There is no payment for order {order_id} of yours.", code="payment-not-found"
        )
    return PaymentRead.of(payment, with_secret=payment.user_id == user.user_id)


class WebhookAnswer(BaseModel):
    received: bool
    outcome: str


@webhook_routes.post("/{provider_name}", response_model=WebhookAnswer)
async def receive_webhook(
    provider_name: str,
    request: Request,
    session: WriteSessionDep,
    outbox: OutboxDep,
    provider: ProviderDep,
    settings: SettingsDep,
    clock: ClockDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookAnswer:
    """**Who may call:** the payment provider (``stripe``, or ``simulated`` in make dev),
    authenticated by the ``Stripe-Signature`` over the raw body.

    Each event id is applied once; a redelivery answers 200 and changes nothing, so the
    provider stops retrying."""
    if provider_name != provider.name:
        raise NotFound(
            f"This deployment takes payments through {provider.name}, not {provider_name}.",
            code="unknown-provider",
        )
    payload = await request.body()
    try:
        event = provider.parse_webhook(payload, stripe_signature)
    except InvalidWebhook as error:
        raise BadRequest(f"Webhook refused: {error.reason}.", code="invalid-webhook") from error
    try:
        outcome = await handlers.apply_provider_event(
            event,
            provider_name=provider.name,
            session=session,
            outbox=outbox,
            policy=policy_of(settings),
            clock=clock,
            provider=provider,
        )
    except ProviderUnavailable as error:
        # Nothing is kept (the transaction rolls back): the provider delivers it again.
        raise Unavailable(
            "The payment provider could not be asked about this event; deliver it again.",
            code="provider-unavailable",
        ) from error
    # Applied, not committed (the route commits after this returns): a crash here must
    # leave the provider to deliver the event again, and applying it then be exact.
    crash_point("payments.webhook-applied")
    return WebhookAnswer(received=True, outcome=outcome)


class ReviewRead(BaseModel):
    payment: PaymentRead
    reasons: list[str]


AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


@review_routes.get("", response_model=list[ReviewRead])
async def list_reviews(_: AdminUser, session: ReadSessionDep) -> list[ReviewRead]:
    """**Who may call:** admins. Payments that went through but wait for a decision."""
    payments = (
        (
            await session.execute(
                select(Payment).where(Payment.review == "pending").order_by(Payment.created_at)
            )
        )
        .scalars()
        .all()
    )
    reviews = []
    for payment in payments:
        decision = (
            await session.execute(
                select(FraudDecision)
                .where(FraudDecision.payment_id == payment.id, FraudDecision.decision == "review")
                .order_by(FraudDecision.decided_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        reviews.append(
            ReviewRead(
                payment=PaymentRead.of(payment, with_secret=False),
                reasons=[str(reason) for reason in (decision.reasons if decision else [])],
            )
        )
    return reviews


@review_routes.post("/{payment_id}/approve", response_model=PaymentRead)
async def approve(
    payment_id: uuid.UUID,
    admin: AdminUser,
    session: WriteSessionDep,
    outbox: OutboxDep,
    provider: ProviderDep,
    clock: ClockDep,
) -> PaymentRead:
    """**Who may call:** admins. Let the payment through: the tickets are issued."""
    payment = await handlers.decide_review(
        payment_id,
        approve=True,
        admin_id=admin.user_id,
        session=session,
        provider=provider,
        outbox=outbox,
        clock=clock,
    )
    return PaymentRead.of(payment, with_secret=False)


@review_routes.post("/{payment_id}/refund", response_model=PaymentRead)
async def refund_held(
    payment_id: uuid.UUID,
    admin: AdminUser,
    session: WriteSessionDep,
    outbox: OutboxDep,
    provider: ProviderDep,
    clock: ClockDep,
) -> PaymentRead:
    """**Who may call:** admins. Give the money back; the order then lapses unpaid."""
    payment = await handlers.decide_review(
        payment_id,
        approve=False,
        admin_id=admin.user_id,
        session=session,
        provider=provider,
        outbox=outbox,
        clock=clock,
    )
    return PaymentRead.of(payment, with_secret=False)


ROUTERS = (payment_routes, webhook_routes, review_routes)
