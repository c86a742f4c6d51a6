"""What payments does: make a PaymentIntent for an order, apply the provider's webhook
events once and in any order, refund, cancel, and let an admin decide a held payment.

None commits: the request's or the consumed message's transaction does, with the outbox
events written here. A call to the provider inside a transaction carries an idempotency
key derived from what it is for (``order-<id>``, ``refund-<id>``, ``cancel-<id>``), so the
retry after a crash or a timeout finds the same intent or refund instead of a second.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_contracts.booking import OrderClosed, OrderConfirmed, OrderCreated, RefundRequested
from marquee_contracts.payments import (
    DISPUTE_OPENED,
    PAYMENT_FAILED,
    PAYMENT_HELD_FOR_REVIEW,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    DisputeOpened,
    PaymentFailed,
    PaymentHeldForReview,
    PaymentSucceeded,
    RefundFailed,
    RefundSucceeded,
)
from marquee_payments import fraud
from marquee_payments.fraud import FraudPolicy
from marquee_payments.ledger import Ledger
from marquee_payments.models import KnownOrder, Payment, ProviderEventRecord, RefundRecord
from marquee_payments.providers.base import (
    PaymentProvider,
    ProviderError,
    ProviderEvent,
    ProviderUnavailable,
)
from marquee_payments.state import EVENT_STATUS, IN_FLIGHT, next_status
from marquee_platform.clock import Clock
from marquee_platform.db import Database
from marquee_platform.errors import Conflict, NotFound, RateLimited, Unavailable
from marquee_platform.outbox import Outbox

log = logging.getLogger("marquee.payments")


# ---- orders as booking announced them ------------------------------------------------------


async def remember_order(created: OrderCreated, *, session: AsyncSession, clock: Clock) -> None:
    statement = insert(KnownOrder).values(
        order_id=created.order_id,
        user_id=created.user_id,
        event_id=created.event_id,
        total_minor=created.total_minor,
        fees_minor=created.fees_minor,
        currency=created.currency,
        expires_at=created.expires_at,
        state="pending",
        updated_at=clock(),
    )
    await session.execute(statement.on_conflict_do_nothing())


async def order_confirmed(
    confirmed: OrderConfirmed, *, session: AsyncSession, clock: Clock
) -> None:
    order = await session.get(KnownOrder, confirmed.order_id, with_for_update=True)
    if order is not None:
        order.state = "confirmed"
        order.updated_at = clock()


# ---- a payment for an order --------------------------------------------------------------


async def payment_of_order(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> Payment | None:
    """The order's payment (there is at most one: ``payments.order_id`` is unique)."""
    statement = select(Payment).where(Payment.order_id == order_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


class OrderNotPayable(Conflict):
    pass


@dataclass(frozen=True, slots=True)
class OrderToPay:
    """What booking says about the order (read as the buyer, or from its topic)."""

    order_id: uuid.UUID
    user_id: str
    event_id: uuid.UUID
    status: str
    total_minor: int
    fees_minor: int
    currency: str
    expires_at: datetime


async def start_payment(
    order: OrderToPay,
    *,
    client_address: str | None,
    session: AsyncSession,
    decisions: Database,
    provider: PaymentProvider,
    policy: FraudPolicy,
    clock: Clock,
) -> Payment:
    """The order's payment, made once: asking again answers the same PaymentIntent."""
    existing = await payment_of_order(session, order.order_id)
    if existing is not None:
        return existing
    now = clock()
    if order.status != "pending_payment":
        raise OrderNotPayable(
            f"Order {order.order_id} is {order.status}: there is nothing to pay.",
            code="order-not-payable",
        )
    if order.expires_at <= now:
        raise OrderNotPayable(
            f"Order {order.order_id} lapsed at {order.expires_at.isoformat()}: hold the "
            "places again.",
            code="order-expired",
        )
    if order.total_minor <= 0:
        raise OrderNotPayable(
            "This order costs nothing: there is no payment to make.", code="order-is-free"
        )
    reasons = await fraud.check_before_intent(
        session, policy, user_id=order.user_id, client_address=client_address, now=now
    )
    if reasons:
        # The refusal rolls the request back: its record commits on its own.
        async with decisions.transaction() as own:
            await fraud.record(
                own,
                order_id=order.order_id,
                payment_id=None,
                stage="intent",
                decision="refuse",
                reasons=reasons,
                decided_by="policy",
                now=now,
            )
        raise RateLimited(
            "Too many payments in a short time: " + "; ".join(reasons) + ". Try again later.",
            retry_after_seconds=int(policy.window.total_seconds()),
            code="payment-velocity",
        )
    try:
        intent = await provider.create_intent(
            order_id=order.order_id,
            amount_minor=order.total_minor,
            currency=order.currency,
            idempotency_key=f"order-{order.order_id}",
            description=f"Marquee order {order.order_id}",
            metadata={"order_id": str(order.order_id), "event_id": str(order.event_id)},
        )
    except ProviderUnavailable as error:
        raise Unavailable(
            "The payment provider cannot be reached; try again in a moment.",
            code="provider-unavailable",
        ) from error
    payment = Payment(
        id=uuid.uuid4(),
        order_id=order.order_id,
        user_id=order.user_id,
        event_id=order.event_id,
        provider=provider.name,
        provider_payment_id=intent.id,
        client_secret=intent.client_secret,
        amount_minor=order.total_minor,
        fees_minor=order.fees_minor,
        currency=order.currency,
        status=intent.status,
        amount_refunded_minor=0,
        disputed_minor=0,
        client_address=client_address,
        review="none",
        success_reported=False,
        created_at=now,
        updated_at=now,
    )
    # Two concurrent first calls for one order: the provider's idempotency key gave both
    # the same intent, and the unique order id lets one row in.
    inserted = await session.execute(
        insert(Payment)
        .values(
            **{column.key: getattr(payment, column.key) for column in Payment.__table__.columns}
        )
        .on_conflict_do_nothing()
        .returning(Payment.id)
    )
    if inserted.first() is None:
        stored = await payment_of_order(session, order.order_id)
        assert stored is not None, "the order's payment row was just written"
        return stored
    await fraud.record(
        session,
        order_id=order.order_id,
        payment_id=payment.id,
        stage="intent",
        decision="allow",
        reasons=[],
        decided_by="policy",
        now=now,
    )
    stored = await payment_of_order(session, order.order_id)
    assert stored is not None, "the order's payment row was just written"
    return stored


# ---- webhooks ----------------------------------------------------------------------------


async def apply_provider_event(
    event: ProviderEvent,
    *,
    provider_name: str,
    session: AsyncSession,
    outbox: Outbox,
    policy: FraudPolicy,
    clock: Clock,
    provider: PaymentProvider | None = None,
) -> str:
    """Apply one verified webhook event, once. Answers what was done (for the log and
    the webhook's answer); a duplicate changes nothing."""
    now = clock()
    claimed = await session.execute(
        insert(ProviderEventRecord)
        .values(
            provider=provider_name,
            event_id=event.event_id,
            type=event.type,
            provider_payment_id=event.intent_id,
            outcome="applying",
            created=event.created,
            received_at=now,
        )
        .on_conflict_do_nothing()
        .returning(ProviderEventRecord.event_id)
    )
    if claimed.first() is None:
        return "duplicate"
    payment = await _payment_of(session, event)
    if payment is None:
        outcome = "unknown-payment"
        log.warning("webhook %s (%s) names no payment of ours", event.event_id, event.type)
    elif event.type in EVENT_STATUS:
        outcome = await _apply_intent_event(
            payment,
            event,
            session=session,
            outbox=outbox,
            policy=policy,
            now=now,
            provider=provider,
        )
    elif event.type == "charge.refunded":
        outcome = await _apply_refunded(payment, event, session=session, outbox=outbox, now=now)
    elif event.type in ("refund.created", "refund.updated", "charge.refund.updated"):
        outcome = await _apply_refund_object(
            payment, event, session=session, outbox=outbox, now=now
        )
    elif event.type == "charge.dispute.created":
        outcome = await _apply_dispute(payment, event, session=session, outbox=outbox, now=now)
    else:
        outcome = "ignored"
    record = await session.get(ProviderEventRecord, (provider_name, event.event_id))
    assert record is not None
    record.outcome = outcome
    return outcome


async def _payment_of(session: AsyncSession, event: ProviderEvent) -> Payment | None:
    if event.intent_id is not None:
        found = (
            await session.execute(
                select(Payment)
                .where(Payment.provider_payment_id == event.intent_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if found is not None:
            return found
    if event.order_id is not None:
        return await payment_of_order(session, event.order_id, for_update=True)
    return None


async def _apply_intent_event(
    payment: Payment,
    event: ProviderEvent,
    *,
    session: AsyncSession,
    outbox: Outbox,
    policy: FraudPolicy,
    now: datetime,
    provider: PaymentProvider | None,
) -> str:
    incoming = EVENT_STATUS[event.type]
    if (
        incoming in IN_FLIGHT
        and payment.last_event_at is not None
        and event.created < payment.last_event_at
    ):
        # Older than what already moved the payment: a failure of an attempt the buyer
        # has since retried, say. Money events (succeeded) are never stale.
        return f"stale: older than the last event applied, {payment.status} stays"
    status = next_status(payment.status, incoming)
    if status is None:
        return f"stale: {payment.status} stays"
    payment.status = status
    payment.updated_at = now
    payment.last_event_at = max(payment.last_event_at or event.created, event.created)
    if status == "failed":
        payment.failure_reason = event.failure_message or "the payment was refused"
        await outbox.add(
            PAYMENT_FAILED.name,
            PaymentFailed(
                payment_id=payment.id,
                order_id=payment.order_id,
                provider=payment.provider,
                provider_payment_id=payment.provider_payment_id,
                reason=payment.failure_reason,
                failed_at=event.created,
            ),
            key=payment.order_id,
        )
        return "failed"
    if status != "succeeded":
        return status
    payment.succeeded_at = event.created
    payment.risk_level = event.risk_level
    payment.risk_score = event.risk_score
    payment.card_fingerprint = event.payment_method_fingerprint
    if (
        provider is not None
        and event.charge_id is not None
        and event.risk_level is None
        and event.payment_method_fingerprint is None
    ):
        # Stripe's success event names its charge by id: the fraud checks need its risk
        # evaluation and card. A provider that cannot answer now fails the webhook, and
        # the provider delivers it again.
        try:
            risk = await provider.charge_risk(event.charge_id)
        except ProviderUnavailable:
            raise
        except ProviderError as error:
            log.warning(
                "payment %s: no risk data for charge %s: %s", payment.id, event.charge_id, error
            )
        else:
            payment.risk_level = risk.risk_level
            payment.risk_score = risk.risk_score
            payment.card_fingerprint = risk.card_fingerprint
    if event.amount_minor is not None and event.amount_minor != payment.amount_minor:
        log.error(
            "payment %s: provider took %s, the order costs %s",
            payment.id,
            event.amount_minor,
            payment.amount_minor,
        )
    await Ledger(session).post_charge(payment, now)
    if payment.amount_refunded_minor >= payment.amount_minor:
        # Its refund overtook the success (events out of order): nothing to sell.
        payment.status = "refunded"
        return "succeeded-after-refund"
    reasons = await fraud.check_charge(session, policy, payment, now=now)
    if reasons:
        payment.review = "pending"
        await fraud.record(
            session,
            order_id=payment.order_id,
            payment_id=payment.id,
            stage="charge",
            decision="review",
            reasons=reasons,
            decided_by="policy",
            now=now,
        )
        await outbox.add(
            PAYMENT_HELD_FOR_REVIEW.name,
            PaymentHeldForReview(
                payment_id=payment.id, order_id=payment.order_id, reasons=reasons, held_at=now
            ),
            key=payment.order_id,
        )
        return "held-for-review"
    await fraud.record(
        session,
        order_id=payment.order_id,
        payment_id=payment.id,
        stage="charge",
        decision="allow",
        reasons=[],
        decided_by="policy",
        now=now,
    )
    await _report_success(payment, outbox=outbox)
    return "succeeded"


async def _report_success(payment: Payment, *, outbox: Outbox) -> None:
    if payment.success_reported:
        return
    payment.success_reported = True
    assert payment.succeeded_at is not None
    await outbox.add(
        PAYMENT_SUCCEEDED.name,
        PaymentSucceeded(
            payment_id=payment.id,
            order_id=payment.order_id,
            provider=payment.provider,
            provider_payment_id=payment.provider_payment_id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            succeeded_at=payment.succeeded_at,
        ),
        key=payment.order_id,
    )


async def _apply_refunded(
    payment: Payment,
    event: ProviderEvent,
    *,
    session: AsyncSession,
    outbox: Outbox,
    now: datetime,
) -> str:
    """``charge.refunded`` carries the charge's refunded total: each refund it lists that
    the ledger has not seen is settled; whatever is left unexplained came from the
    provider's dashboard and is settled as a refund of its own."""
    total = event.amount_refunded_minor or 0
    if total <= payment.amount_refunded_minor:
        return "refund-known"
    known = {
        refund.provider_refund_id: refund
        for refund in (
            await session.execute(select(RefundRecord).where(RefundRecord.payment_id == payment.id))
        ).scalars()
        if refund.provider_refund_id is not None
    }
    for provider_refund_id in event.refund_ids:
        refund = known.get(provider_refund_id)
        if refund is not None and refund.status != "succeeded":
            await _settle_refund(payment, refund, session=session, outbox=outbox, now=now)
    # Stripe's charge.refunded lists no refunds any more: money no listed refund explains
    # is first our own refunds still pending (answered "pending" by the provider),
    # oldest first, and only what is left a refund made at the provider itself.
    for pending in sorted(
        (refund for refund in known.values() if refund.status == "pending"),
        key=lambda refund: refund.requested_at,
    ):
        if pending.amount_minor <= total - payment.amount_refunded_minor:
            await _settle_refund(payment, pending, session=session, outbox=outbox, now=now)
    unexplained = total - payment.amount_refunded_minor
    if unexplained > 0:
        refund_key = next(
            (refund_id for refund_id in event.refund_ids if refund_id not in known),
            f"{event.charge_id or payment.provider_payment_id}:{total}",
        )
        outside = RefundRecord(
            id=uuid.uuid4(),
            booking_refund_id=None,
            payment_id=payment.id,
            order_id=payment.order_id,
            amount_minor=unexplained,
            currency=payment.currency,
            reason="at-provider",
            status="pending",
            provider_refund_id=refund_key,
            requested_at=now,
        )
        session.add(outside)
        await session.flush()
        await _settle_refund(payment, outside, session=session, outbox=outbox, now=now)
    return "refunded"


async def _apply_refund_object(
    payment: Payment,
    event: ProviderEvent,
    *,
    session: AsyncSession,
    outbox: Outbox,
    now: datetime,
) -> str:
    """A refund of ours that the provider first answered ``pending`` settles (or fails)
    when its own event says so."""
    if not event.refund_ids:
        return "ignored"
    refund = (
        await session.execute(
            select(RefundRecord)
            .where(RefundRecord.provider_refund_id == event.refund_ids[0])
            .with_for_update()
        )
    ).scalar_one_or_none()
    if refund is None or refund.status != "pending":
        return "refund-known"
    if event.status == "succeeded":
        await _settle_refund(payment, refund, session=session, outbox=outbox, now=now)
        return "refunded"
    if event.status in ("failed", "canceled"):
        await _refund_failed(
            refund,
            payment,
            event.failure_message or f"the refund is {event.status}",
            outbox=outbox,
            now=now,
        )
        return "refund-failed"
    return "refund-pending"


async def _settle_refund(
    payment: Payment,
    refund: RefundRecord,
    *,
    session: AsyncSession,
    outbox: Outbox,
    now: datetime,
) -> None:
    assert refund.provider_refund_id is not None
    if not await Ledger(session).post_refund(
        payment, refund.provider_refund_id, refund.amount_minor, now
    ):
        refund.status = "succeeded"
        return
    refund.status = "succeeded"
    refund.settled_at = now
    payment.amount_refunded_minor = min(
        payment.amount_minor, payment.amount_refunded_minor + refund.amount_minor
    )
    if payment.amount_refunded_minor >= payment.amount_minor and payment.status == "succeeded":
        payment.status = "refunded"
    payment.updated_at = now
    await outbox.add(
        REFUND_SUCCEEDED.name,
        RefundSucceeded(
            payment_id=payment.id,
            order_id=payment.order_id,
            refund_id=refund.booking_refund_id,
            provider_refund_id=refund.provider_refund_id,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            refunded_at=now,
        ),
        key=payment.order_id,
    )


async def _apply_dispute(
    payment: Payment,
    event: ProviderEvent,
    *,
    session: AsyncSession,
    outbox: Outbox,
    now: datetime,
) -> str:
    dispute_id = event.dispute_id or event.event_id
    amount = event.amount_minor or payment.amount_minor
    if not await Ledger(session).post_dispute(payment, dispute_id, amount, now):
        return "dispute-known"
    payment.disputed_minor += amount
    payment.updated_at = now
    await outbox.add(
        DISPUTE_OPENED.name,
        DisputeOpened(
            payment_id=payment.id,
            order_id=payment.order_id,
            provider_dispute_id=dispute_id,
            amount_minor=amount,
            currency=payment.currency,
            reason=event.reason or "unknown",
            opened_at=event.created,
        ),
        key=payment.order_id,
    )
    return "disputed"


# ---- refunds and cancellations (from booking's topics) -------------------------------------


async def refund(
    requested: RefundRequested,
    *,
    session: AsyncSession,
    provider: PaymentProvider,
    outbox: Outbox,
    clock: Clock,
) -> str:
    """Give the money back at the provider (idempotent by booking's refund id). Raises
    :class:`ProviderUnavailable` to have the message retried later."""
    now = clock()
    record = (
        await session.execute(
            select(RefundRecord)
            .where(RefundRecord.booking_refund_id == requested.refund_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if record is not None and record.status != "pending":
        return record.status
    payment = await payment_of_order(session, requested.order_id, for_update=True)
    if record is None:
        record = RefundRecord(
            id=requested.refund_id,
            booking_refund_id=requested.refund_id,
            payment_id=payment.id if payment is not None else None,
            order_id=requested.order_id,
            amount_minor=requested.amount_minor,
            currency=requested.currency,
            reason=requested.reason,
            status="pending",
            requested_at=now,
        )
        session.add(record)
        await session.flush()
    if payment is None or payment.status not in ("succeeded", "refunded"):
        return await _refund_failed(
            record, payment, "no charge to refund for this order", outbox=outbox, now=now
        )
    amount = min(requested.amount_minor, payment.amount_minor - payment.amount_refunded_minor)
    if amount <= 0:
        # Refunded in full already, perhaps by this very request before a crash: ask the
        # provider with the same idempotency key, which answers that refund if it made it
        # (adopted below) and refuses otherwise (failed).
        amount = requested.amount_minor
    record.amount_minor = amount
    try:
        made = await provider.refund(
            intent_id=payment.provider_payment_id,
            amount_minor=amount,
            idempotency_key=f"refund-{requested.refund_id}",
            reason="requested_by_customer",
        )
    except ProviderUnavailable:
        raise
    except ProviderError as error:
        return await _refund_failed(record, payment, str(error), outbox=outbox, now=now)
    settled_already = (
        await session.execute(
            select(RefundRecord)
            .where(RefundRecord.provider_refund_id == made.id, RefundRecord.id != record.id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if settled_already is not None:
        # A crash after the provider refunded and before our commit: its webhook found the
        # money first and settled it as a refund made at the provider (booking matched it
        # to this request by amount). It is this refund: adopt it, post nothing twice.
        await session.delete(record)
        await session.flush()
        settled_already.booking_refund_id = requested.refund_id
        settled_already.reason = requested.reason
        return settled_already.status
    record.provider_refund_id = made.id
    if made.status == "succeeded":
        await _settle_refund(payment, record, session=session, outbox=outbox, now=now)
    elif made.status in ("failed", "canceled"):
        return await _refund_failed(
            record, payment, f"the provider's refund is {made.status}", outbox=outbox, now=now
        )
    return record.status


async def _refund_failed(
    record: RefundRecord,
    payment: Payment | None,
    reason: str,
    *,
    outbox: Outbox,
    now: datetime,
) -> str:
    record.status = "failed"
    record.last_error = reason
    record.settled_at = now
    log.error("refund %s of order %s failed: %s", record.id, record.order_id, reason)
    await outbox.add(
        REFUND_FAILED.name,
        RefundFailed(
            payment_id=payment.id if payment is not None else None,
            order_id=record.order_id,
            refund_id=record.booking_refund_id or record.id,
            reason=reason,
            failed_at=now,
        ),
        key=record.order_id,
    )
    return "failed"


async def order_closed(
    closed: OrderClosed, *, session: AsyncSession, provider: PaymentProvider, clock: Clock
) -> str:
    """An unpaid order ended: cancel its PaymentIntent so the buyer cannot pay it now.
    If the money went through anyway (a race with the cancel), the success webhook comes
    and the saga honours or refunds it."""
    # Upserted: order-closed (keyed by event) can overtake order-created (keyed by order);
    # the closed row then stays closed when the creation arrives.
    statement = insert(KnownOrder).values(
        order_id=closed.order_id,
        user_id=closed.user_id,
        event_id=closed.event_id,
        total_minor=0,
        fees_minor=0,
        currency="XXX",
        expires_at=closed.closed_at,
        state="closed",
        updated_at=clock(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[KnownOrder.order_id],
            set_={"state": "closed", "updated_at": statement.excluded.updated_at},
        )
    )
    payment = await payment_of_order(session, closed.order_id, for_update=True)
    if payment is None or payment.status in ("succeeded", "refunded", "canceled"):
        return "nothing-to-cancel"
    intent = await provider.cancel_intent(
        payment.provider_payment_id, idempotency_key=f"cancel-{payment.order_id}"
    )
    if intent.status == "canceled":
        status = next_status(payment.status, "canceled")
        if status is not None:
            payment.status = status
            payment.updated_at = clock()
    return intent.status


# ---- fraud review --------------------------------------------------------------------------


async def decide_review(
    payment_id: uuid.UUID,
    *,
    approve: bool,
    admin_id: str,
    session: AsyncSession,
    provider: PaymentProvider,
    outbox: Outbox,
    clock: Clock,
) -> Payment:
    payment = await session.get(Payment, payment_id, with_for_update=True)
    if payment is None or payment.review != "pending":
        raise NotFound(
            f"There is no payment {payment_id} waiting for review.", code="review-not-found"
        )
    if approve and (payment.status != "succeeded" or payment.amount_refunded_minor > 0):
        raise Conflict(
            f"Payment {payment_id} is {payment.status} with {payment.amount_refunded_minor} "
            "refunded: there is no money left to let through. Refund it instead.",
            code="review-money-returned",
        )
    now = clock()
    await fraud.record(
        session,
        order_id=payment.order_id,
        payment_id=payment.id,
        stage="review",
        decision="approve" if approve else "refund",
        reasons=[f"decided by admin {admin_id}"],
        decided_by=admin_id,
        now=now,
    )
    if approve:
        payment.review = "approved"
        await _report_success(payment, outbox=outbox)
        return payment
    payment.review = "refunded"
    refund_id = uuid.uuid5(payment.id, "review-refund")
    record = RefundRecord(
        id=refund_id,
        booking_refund_id=None,
        payment_id=payment.id,
        order_id=payment.order_id,
        amount_minor=payment.amount_minor - payment.amount_refunded_minor,
        currency=payment.currency,
        reason="fraud-review",
        status="pending",
        requested_at=now,
    )
    session.add(record)
    await session.flush()
    made = await provider.refund(
        intent_id=payment.provider_payment_id,
        amount_minor=record.amount_minor,
        idempotency_key=f"refund-{refund_id}",
        reason="fraudulent",
    )
    record.provider_refund_id = made.id
    if made.status == "succeeded":
        await _settle_refund(payment, record, session=session, outbox=outbox, now=now)
    return payment
