"""A refund whose payments transaction died after the provider refunded: the provider's
webhook finds the money first (it is settled as a refund made at the provider, and
booking matches it to its request by amount); the redelivered request then adopts that
refund. The money is counted once everywhere and reconciliation is clean."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from marquee_contracts import REGISTRY
from marquee_contracts.booking import REFUND_REQUESTED, RefundRequested
from marquee_payments import handlers
from marquee_payments.models import LedgerEntry, Payment, RefundRecord
from marquee_payments.reconcile import reconcile
from marquee_platform.outbox import Outbox
from marquee_testing.events import Clock
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga

from .helpers import confirm, fan, first_seats, order_status, placed_order, start_payment


class Crash(Exception):
    pass


async def test_a_refund_that_crashed_before_its_commit_is_counted_once(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=2)
    await saga.publish(event.message)
    _, alice = fan(token_issuer)
    placed = await placed_order(
        saga, event.event_id, alice, seats=[{"seat_id": first_seats(event, 1)[0]}]
    )
    await confirm(saga, await start_payment(saga, placed["order_id"], alice))
    await saga.pump()
    saga.held_back = lambda topic, _: topic == REFUND_REQUESTED.name
    organizer = token_issuer.headers("organizer-1", ("organizer",))
    asked = await saga.booking.client.post(
        f"/api/v1/orders/{placed['order_id']}/refunds", json={}, headers=organizer
    )
    assert asked.status_code == 201, asked.text
    await saga.pump()
    [(_, request)] = saga.parked
    saga.held_back = None

    # The payments consumer refunds at the provider, then dies before its commit.
    message = REGISTRY.parse_data(request)
    assert isinstance(message, RefundRequested)
    try:
        async with saga.payments.database.transaction() as session:
            await handlers.refund(
                message,
                session=session,
                provider=saga.provider,
                outbox=Outbox(session, source="/marquee/payments"),
                clock=clock,
            )
            raise Crash
    except Crash:
        pass
    await saga.pump()  # the provider's charge.refunded arrives first
    await saga.release_parked()  # then the request, redelivered

    order = await order_status(saga, placed["order_id"], alice)
    assert (order["status"], order["refunded_minor"]) == ("refunded", order["paid_minor"])
    async with saga.payments.database.reading() as session:
        payment = (
            await session.execute(select(Payment).where(Payment.order_id == placed["order_id"]))
        ).scalar_one()
        records = (
            (
                await session.execute(
                    select(RefundRecord).where(RefundRecord.order_id == payment.order_id)
                )
            )
            .scalars()
            .all()
        )
        legs = (
            await session.execute(
                select(func.count()).where(
                    LedgerEntry.order_id == payment.order_id, LedgerEntry.kind == "refund"
                )
            )
        ).scalar_one()
        report = await reconcile(
            session=session,
            provider=saga.provider,
            since=clock() - timedelta(hours=1),
            now=clock(),
            grace=timedelta(0),
        )
    assert payment.amount_refunded_minor == payment.amount_minor
    assert [(r.status, str(r.booking_refund_id)) for r in records] == [
        ("succeeded", asked.json()["refund_id"])
    ]
    assert legs == 2  # one refund movement: provider and organizer (no service fee here)
    assert report.differences == ()
