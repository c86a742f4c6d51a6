"""A ticket bought from hold to door: order (with a promo code) → simulated payment →
signed webhook → sale confirmed → tickets with barcodes → check-in → refund → the seat is
holdable again. Real PostgreSQL, Redis, apps and signed webhooks (marquee_testing.saga)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from marquee_booking import barcodes
from marquee_contracts.booking import ORDER_CONFIRMED, TICKET_CANCELLED, TICKET_ISSUED
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga, bodies


def buyer(token_issuer: TokenIssuer) -> tuple[str, dict[str, str]]:
    user_id = str(uuid.uuid4())
    return user_id, token_issuer.headers(user_id, ("customer",))


async def hold(saga: Saga, event_id: uuid.UUID, headers: dict[str, str], **body: Any) -> str:
    response = await saga.inventory.client.post(
        f"/api/v1/inventory/events/{event_id}/holds", json=body, headers=headers
    )
    assert response.status_code == 201, response.text
    hold_id: str = response.json()["hold_id"]
    return hold_id


async def order(
    saga: Saga, event_id: uuid.UUID, hold_id: str, headers: dict[str, str], **extra: Any
) -> httpx.Response:
    return await saga.booking.client.post(
        "/api/v1/orders",
        json={"event_id": str(event_id), "hold_id": hold_id, **extra},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )


async def pay(
    saga: Saga, order_id: str, headers: dict[str, str], outcome: str = "succeed"
) -> dict[str, Any]:
    started = await saga.payments.client.post(
        "/api/v1/payments", json={"order_id": order_id}, headers=headers
    )
    assert started.status_code == 201, started.text
    payment = started.json()
    confirmed = await saga.payments.client.post(
        f"/api/v1/payments/simulator/intents/{payment['provider_payment_id']}/confirm",
        json={"client_secret": payment["client_secret"], "outcome": outcome},
    )
    assert confirmed.status_code == 200, confirmed.text
    body: dict[str, Any] = payment
    return body


async def test_a_ticket_from_hold_to_door_and_back(saga: Saga, token_issuer: TokenIssuer) -> None:
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    organizer = token_issuer.headers("organizer-1", ("organizer",))
    promo = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/promo-codes",
        json={"code": "early", "kind": "percent", "value": 2000, "max_uses": 5},
        headers=organizer,
    )
    assert promo.status_code == 201, promo.text
    fee = await saga.booking.client.put(
        f"/api/v1/events/{event.event_id}/sales-settings",
        json={"service_fee_minor": 150, "buyer_refund_hours": 48},
        headers=organizer,
    )
    assert fee.status_code == 200, fee.text

    user_id, fan = buyer(token_issuer)
    seat = event.message.seating.sections[0].rows[0].seats[1].id  # type: ignore[index]
    hold_id = await hold(saga, event.event_id, fan, seats=[{"seat_id": seat}])
    placed = await order(saga, event.event_id, hold_id, fan, promo_code="EARLY")
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "pending_payment"
    # 50.00 seat - 20 % + 1.50 fee, priced by booking from the catalog.
    assert (body["subtotal_minor"], body["discount_minor"], body["fees_minor"]) == (5000, 1000, 150)
    assert body["total_minor"] == 4150

    payment = await pay(saga, body["order_id"], fan)
    assert payment["amount_minor"] == 4150
    carried = await saga.pump()
    confirmed = bodies(carried, ORDER_CONFIRMED.name)
    assert [message["order_id"] for message in confirmed] == [body["order_id"]]

    paid = await saga.booking.client.get(f"/api/v1/orders/{body['order_id']}", headers=fan)
    assert paid.json()["status"] == "paid"
    assert paid.json()["paid_minor"] == 4150
    tickets = (await saga.booking.client.get("/api/v1/users/me/tickets", headers=fan)).json()
    assert len(tickets["items"]) == 1
    ticket = tickets["items"][0]
    assert ticket["seat_id"] == seat
    claims = barcodes.read_barcode(ticket["barcode"])
    assert claims.ticket_id == uuid.UUID(ticket["ticket_id"])
    assert claims.holder_id == uuid.UUID(user_id)
    assert len(bodies(carried, TICKET_ISSUED.name)) == 1

    qr = await saga.booking.client.get(
        f"/api/v1/tickets/{ticket['ticket_id']}/qr?format=png", headers=fan
    )
    assert qr.status_code == 200
    assert qr.content.startswith(b"\x89PNG")

    # The door: valid, then already used (with when and where).
    first = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/checkins",
        json={"barcode": ticket["barcode"], "gate": "North"},
        headers=organizer,
    )
    assert first.json()["result"] == "valid", first.text
    again = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/checkins",
        json={"barcode": ticket["barcode"], "gate": "South"},
        headers=organizer,
    )
    assert again.json()["result"] == "already_used"
    assert again.json()["first_scan"]["gate"] == "North"

    # The organizer refunds it: the ticket is revoked, the money goes back, the seat is free.
    refund = await saga.booking.client.post(
        f"/api/v1/orders/{body['order_id']}/refunds", json={}, headers=organizer
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["amount_minor"] == 4150
    carried = await saga.pump()
    assert len(bodies(carried, TICKET_CANCELLED.name)) == 1
    refunded = await saga.booking.client.get(f"/api/v1/orders/{body['order_id']}", headers=fan)
    assert refunded.json()["status"] == "refunded"
    assert refunded.json()["refunded_minor"] == 4150
    revoked = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/checkins",
        json={"barcode": ticket["barcode"]},
        headers=organizer,
    )
    assert revoked.json()["result"] == "revoked"
    _, other_fan = buyer(token_issuer)
    assert await hold(saga, event.event_id, other_fan, seats=[{"seat_id": seat}])
