"""Reconciliation: the provider's payments and refunds against our ledger and orders.

Every difference is named, one per order (or per provider object), so an operator can
act on each:

- ``charged-without-paid-order`` — the provider holds money for an order that booking
  did not confirm (no tickets) and that is not being refunded;
- ``paid-order-without-charge`` — booking confirmed an order (tickets issued) but the
  provider has no successful charge for it (or gave all of it back);
- ``amount-mismatch`` — the provider charged another amount than the order costs;
- ``refund-missing`` — money we recorded as refunded is not refunded at the provider, or
  a refund booking asked for has not happened after the grace period;
- ``ledger-mismatch`` — the ledger's provider account for an order is not what the
  provider holds for it (charged minus refunded);
- ``ledger-unbalanced`` — an order's ledger legs do not add up to zero;
- ``unknown-at-provider`` — a payment of ours whose PaymentIntent the provider does not
  list.

Things still moving are not differences: a charge younger than ``grace`` whose order is
being confirmed, a refund asked for less than ``grace`` ago.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_payments.ledger import Ledger
from marquee_payments.models import KnownOrder, LedgerEntry, Payment, RefundRecord
from marquee_payments.providers.base import PaymentProvider, ProviderPayment


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str
    order_id: uuid.UUID | None
    provider_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    provider_payments: int
    provider_refunds: int
    payments: int
    differences: tuple[Difference, ...]

    @property
    def clean(self) -> bool:
        return not self.differences


async def reconcile(
    *,
    session: AsyncSession,
    provider: PaymentProvider,
    since: datetime,
    now: datetime,
    grace: timedelta = timedelta(minutes=2),
) -> Report:
    at_provider: dict[str, ProviderPayment] = {}
    async for listed in provider.list_payments(since=since):
        at_provider[listed.intent_id] = listed
    refunded_at_provider: dict[str, int] = defaultdict(int)
    refund_count = 0
    async for refund in provider.list_refunds(since=since):
        refund_count += 1
        if refund.status == "succeeded":
            refunded_at_provider[refund.intent_id] += refund.amount_minor
    payments = {
        payment.provider_payment_id: payment
        for payment in (
            await session.execute(
                select(Payment).where(
                    Payment.created_at >= since, Payment.provider == provider.name
                )
            )
        ).scalars()
    }
    orders = {
        order.order_id: order
        for order in (
            await session.execute(select(KnownOrder).where(KnownOrder.updated_at >= since))
        ).scalars()
    }
    net_in_ledger = {
        row[0]: int(row[1])
        for row in await session.execute(
            select(LedgerEntry.order_id, func.sum(LedgerEntry.amount_minor))
            .where(LedgerEntry.account == f"provider:{provider.name}")
            .group_by(LedgerEntry.order_id)
        )
    }
    pending_refunds: defaultdict[uuid.UUID, list[RefundRecord]] = defaultdict(list)
    for refund_record in (
        await session.execute(select(RefundRecord).where(RefundRecord.status == "pending"))
    ).scalars():
        pending_refunds[refund_record.order_id].append(refund_record)

    differences: list[Difference] = []
    for intent_id, listed in at_provider.items():
        payment = payments.get(intent_id)
        order_id = listed.order_id or (payment.order_id if payment else None)
        refunded = max(listed.amount_refunded_minor, refunded_at_provider.get(intent_id, 0))
        held = (listed.amount_minor - refunded) if listed.status == "succeeded" else 0
        if payment is None:
            if held > 0:
                differences.append(
                    Difference(
                        "charged-without-paid-order",
                        order_id,
                        intent_id,
                        f"the provider holds {held} {listed.currency} for a PaymentIntent "
                        "payments never made or recorded",
                    )
                )
            continue
        if listed.status == "succeeded" and listed.amount_minor != payment.amount_minor:
            differences.append(
                Difference(
                    "amount-mismatch",
                    payment.order_id,
                    intent_id,
                    f"the provider charged {listed.amount_minor}, the order costs "
                    f"{payment.amount_minor} {payment.currency}",
                )
            )
        ledger_net = net_in_ledger.get(payment.order_id, 0)
        if ledger_net != held:
            differences.append(
                Difference(
                    "refund-missing" if ledger_net < held else "ledger-mismatch",
                    payment.order_id,
                    intent_id,
                    f"the ledger has {ledger_net} at the provider for this order, the "
                    f"provider holds {held} {payment.currency}",
                )
            )
        order = orders.get(payment.order_id)
        confirmed = order is not None and order.state == "confirmed"
        settling = (
            payment.succeeded_at is not None and now - payment.succeeded_at < grace
        ) or payment.review == "pending"
        being_refunded = any(
            now - pending.requested_at < grace for pending in pending_refunds[payment.order_id]
        )
        if held > 0 and not confirmed and not settling and not being_refunded:
            differences.append(
                Difference(
                    "charged-without-paid-order",
                    payment.order_id,
                    intent_id,
                    f"the provider holds {held} {payment.currency}; the order is "
                    f"{order.state if order else 'unknown to payments'}, with no refund asked",
                )
            )
        for pending in pending_refunds[payment.order_id]:
            if now - pending.requested_at >= grace:
                differences.append(
                    Difference(
                        "refund-missing",
                        payment.order_id,
                        intent_id,
                        f"refund {pending.id} of {pending.amount_minor} {pending.currency} was "
                        f"asked for at {pending.requested_at.isoformat()} and has not happened",
                    )
                )
    for order_id, order in orders.items():
        if order.state != "confirmed":
            continue
        paid = next(
            (payment for payment in payments.values() if payment.order_id == order_id), None
        )
        listed_payment = at_provider.get(paid.provider_payment_id) if paid else None
        if listed_payment is None or listed_payment.status != "succeeded":
            differences.append(
                Difference(
                    "paid-order-without-charge",
                    order_id,
                    paid.provider_payment_id if paid else None,
                    "booking issued tickets for this order, the provider has no successful "
                    "charge for it",
                )
            )
    for intent_id, payment in payments.items():
        if intent_id not in at_provider:
            differences.append(
                Difference(
                    "unknown-at-provider",
                    payment.order_id,
                    intent_id,
                    "the provider does not list this PaymentIntent",
                )
            )
    for order_id, balance in await Ledger(session).unbalanced_orders():
        differences.append(
            Difference(
                "ledger-unbalanced",
                order_id,
                None,
                f"the order's ledger legs add up to {balance}, not 0",
            )
        )
    return Report(
        since=since,
        provider_payments=len(at_provider),
        provider_refunds=refund_count,
        payments=len(payments),
        differences=tuple(differences),
    )
