"""An event cancelled mid on-sale: every paid order is refunded and its tickets revoked,
every unpaid order closed (its payment can no longer be made), an order whose sale was
being confirmed is refunded when the confirmation arrives — once, although the
``cancelled`` snapshot reaches booking before the cancellation itself."""

from __future__ import annotations

from marquee_contracts.inventory import SALE_CONFIRMED
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga

from .helpers import confirm, fan, first_seats, order_status, placed_order, start_payment


async def test_a_cancelled_event_refunds_paid_orders_and_closes_the_rest(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    seats = first_seats(event, 3)
    _, alice = fan(token_issuer)
    _, bob = fan(token_issuer)
    _, carol = fan(token_issuer)
    paid = await placed_order(saga, event.event_id, alice, seats=[{"seat_id": seats[0]}])
    await confirm(saga, await start_payment(saga, paid["order_id"], alice))
    await saga.pump()
    assert (await order_status(saga, paid["order_id"], alice))["status"] == "paid"
    pending = await placed_order(saga, event.event_id, bob, seats=[{"seat_id": seats[1]}])
    pending_payment = await start_payment(saga, pending["order_id"], bob)
    confirming = await placed_order(saga, event.event_id, carol, seats=[{"seat_id": seats[2]}])
    saga.held_back = lambda topic, _: topic == SALE_CONFIRMED.name
    await confirm(saga, await start_payment(saga, confirming["order_id"], carol))
    await saga.pump()
    assert (await order_status(saga, confirming["order_id"], carol))["status"] == "confirming"
    saga.held_back = None

    await saga.cancel_event(event, version=event.message.version + 1)
    await saga.release_parked()

    refunded = await order_status(saga, paid["order_id"], alice)
    assert (refunded["status"], refunded["refunded_minor"]) == ("refunded", refunded["paid_minor"])
    tickets = await saga.booking.client.get(
        f"/api/v1/orders/{paid['order_id']}/tickets?status=revoked", headers=alice
    )
    assert [ticket["revoked_reason"] for ticket in tickets.json()] == ["event-cancelled"]
    closed = await order_status(saga, pending["order_id"], bob)
    assert (closed["status"], closed["closed_reason"]) == ("cancelled", "event-cancelled")
    paying = await saga.payments.client.post(
        f"/api/v1/payments/simulator/intents/{pending_payment['provider_payment_id']}/confirm",
        json={"client_secret": pending_payment["client_secret"]},
    )
    assert paying.status_code == 422, paying.text  # its intent was cancelled
    late = await order_status(saga, confirming["order_id"], carol)
    assert late["status"] == "refunded", late
    assert (
        await saga.booking.client.get(
            f"/api/v1/orders/{confirming['order_id']}/tickets", headers=carol
        )
    ).json() == []
    # Delivered again, the cancellation refunds nothing twice.
    await saga.cancel_event(event, version=event.message.version + 1)
    again = await order_status(saga, paid["order_id"], alice)
    assert again["refunded_minor"] == again["paid_minor"]
