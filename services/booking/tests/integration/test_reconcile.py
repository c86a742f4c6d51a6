"""``marquee payments reconcile``: after purchases, refunds and a late payment it finds
nothing; each kind of difference it names is made here for real (at the provider or in
our tables) and found."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import update

from marquee_contracts.payments import PAYMENT_SUCCEEDED
from marquee_payments.models import KnownOrder, SimulatedIntent, SimulatedRefund
from marquee_payments.reconcile import Report, reconcile
from marquee_testing.events import Clock
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga

from .helpers import confirm, fan, first_seats, placed_order, start_payment

ORGANIZER = "organizer-1"


async def report(saga: Saga, clock: Clock, *, grace: timedelta = timedelta(0)) -> Report:
    async with saga.payments.database.reading() as session:
        return await reconcile(
            session=session,
            provider=saga.provider,
            since=clock() - timedelta(days=1),
            now=clock(),
            grace=grace,
        )


async def buy(saga: Saga, event_id: uuid.UUID, headers: dict[str, str], seat: str) -> str:
    placed = await placed_order(saga, event_id, headers, seats=[{"seat_id": seat}])
    await confirm(saga, await start_payment(saga, placed["order_id"], headers))
    await saga.pump()
    order_id: str = placed["order_id"]
    return order_id


async def test_reconcile_finds_nothing_after_a_day_of_sales(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    seats = first_seats(event, 3)
    _, alice = fan(token_issuer)
    kept = await buy(saga, event.event_id, alice, seats[0])
    refunded = await buy(saga, event.event_id, alice, seats[1])
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    answer = await saga.booking.client.post(
        f"/api/v1/orders/{refunded}/refunds", json={}, headers=organizer
    )
    assert answer.status_code == 201
    await saga.pump()
    failed = await placed_order(saga, event.event_id, alice, seats=[{"seat_id": seats[2]}])
    await confirm(saga, await start_payment(saga, failed["order_id"], alice), outcome="fail")
    await saga.pump()
    found = await report(saga, clock)
    assert found.differences == ()
    assert found.payments == 3
    assert found.provider_payments == 3
    assert found.provider_refunds == 1
    assert kept


async def test_reconcile_names_each_difference(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=5)
    await saga.publish(event.message)
    seats = first_seats(event, 5)
    _, alice = fan(token_issuer)
    # Booking never hears of this payment: money with no tickets.
    saga.held_back = lambda topic, _: topic == PAYMENT_SUCCEEDED.name
    unsold = await buy(saga, event.event_id, alice, seats[0])
    saga.held_back = None
    assert (await report(saga, clock, grace=timedelta(minutes=5))).differences == ()
    # A refund that the provider lost, a charge whose amount moved, a charge that vanished.
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    lost_refund = await buy(saga, event.event_id, alice, seats[1])
    await saga.booking.client.post(
        f"/api/v1/orders/{lost_refund}/refunds", json={}, headers=organizer
    )
    await saga.pump()
    changed = await buy(saga, event.event_id, alice, seats[2])
    vanished = await buy(saga, event.event_id, alice, seats[3])
    async with saga.payments.database.transaction() as session:
        await session.execute(update(SimulatedRefund).values(status="failed"))
        await session.execute(
            update(SimulatedIntent)
            .where(SimulatedIntent.order_id == lost_refund)
            .values(amount_refunded_minor=0)
        )
        await session.execute(
            update(SimulatedIntent)
            .where(SimulatedIntent.order_id == changed)
            .values(amount_minor=SimulatedIntent.amount_minor + 100)
        )
        await session.execute(
            update(SimulatedIntent)
            .where(SimulatedIntent.order_id == vanished)
            .values(status="canceled")
        )
        # And an order booking confirmed that payments never charged.
        await session.execute(
            update(KnownOrder).where(KnownOrder.order_id == unsold).values(state="confirmed")
        )
    found = await report(saga, clock)
    kinds = {(difference.kind, str(difference.order_id)) for difference in found.differences}
    assert ("refund-missing", lost_refund) in kinds
    assert ("amount-mismatch", changed) in kinds
    assert ("paid-order-without-charge", vanished) in kinds
    assert ("ledger-mismatch", vanished) in kinds
    async with saga.payments.database.transaction() as session:
        await session.execute(
            update(KnownOrder).where(KnownOrder.order_id == unsold).values(state="pending")
        )
    found = await report(saga, clock)
    assert ("charged-without-paid-order", unsold) in {
        (difference.kind, str(difference.order_id)) for difference in found.differences
    }
