"""Edges found in review: a hold is ordered only under its own id (no alias of it makes a
second order), a free order is sold without a payment and refunds without money, a buyer
refunds only tickets they still hold and nobody used at the door."""

from __future__ import annotations

import uuid

import pytest

from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga

from .helpers import confirm, fan, first_seats, hold, order, order_status, start_payment
from .test_tickets import register

ORGANIZER = "organizer-1"


@pytest.mark.parametrize(
    "alias", ["%68{rest}", "{hold}?x=1", "{hold}#a", "{hold}/../../availability", "{hold}\n"]
)
async def test_a_hold_is_ordered_only_under_its_own_id(
    saga: Saga, token_issuer: TokenIssuer, alias: str
) -> None:
    event = published_event(rows=1, seats_per_row=2)
    await saga.publish(event.message)
    _, alice = fan(token_issuer)
    hold_id = await hold(saga, event.event_id, alice, seats=[{"seat_id": first_seats(event, 1)[0]}])
    first = await order(saga, event.event_id, hold_id, alice)
    assert first.status_code == 201, first.text
    aliased = alias.format(hold=hold_id, rest=hold_id[1:])
    second = await order(saga, event.event_id, aliased, alice)
    assert second.status_code in (404, 409, 422), second.text
    assert second.headers["content-type"].startswith("application/problem+json")


async def test_a_free_order_is_sold_without_payment_and_refunds_without_money(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=2)
    await saga.publish(event.message)
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    made = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/promo-codes",
        json={"code": "GUEST", "kind": "percent", "value": 10000},
        headers=organizer,
    )
    assert made.status_code == 201, made.text
    _, alice = fan(token_issuer)
    hold_id = await hold(saga, event.event_id, alice, seats=[{"seat_id": first_seats(event, 1)[0]}])
    placed = await order(saga, event.event_id, hold_id, alice, promo_code="GUEST")
    assert placed.json()["total_minor"] == 0, placed.text
    await saga.pump()
    assert (await order_status(saga, placed.json()["order_id"], alice))["status"] == "paid"
    refund = await saga.booking.client.post(
        f"/api/v1/orders/{placed.json()['order_id']}/refunds", json={}, headers=organizer
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["amount_minor"] == 0
    await saga.pump()
    assert (await order_status(saga, placed.json()["order_id"], alice))["status"] == "refunded"
    empty = await saga.booking.client.post(
        f"/api/v1/orders/{placed.json()['order_id']}/refunds",
        json={"ticket_ids": []},
        headers=organizer,
    )
    assert empty.status_code == 422


async def test_a_buyer_refunds_only_what_they_still_hold_unused(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    settings = await saga.booking.client.put(
        f"/api/v1/events/{event.event_id}/sales-settings",
        json={"service_fee_minor": 0, "buyer_refund_hours": 0},
        headers=organizer,
    )
    assert settings.status_code == 200
    _, alice = fan(token_issuer)
    friend = str(uuid.uuid4())
    await register(saga, friend, "friend@example.com")
    seats = first_seats(event, 3)
    hold_id = await hold(saga, event.event_id, alice, seats=[{"seat_id": seat} for seat in seats])
    placed = (await order(saga, event.event_id, hold_id, alice)).json()
    await confirm(saga, await start_payment(saga, placed["order_id"], alice))
    await saga.pump()
    given, used, kept = (
        await saga.booking.client.get(f"/api/v1/orders/{placed['order_id']}/tickets", headers=alice)
    ).json()
    moved = await saga.booking.client.post(
        f"/api/v1/tickets/{given['ticket_id']}/transfer",
        json={"email": "friend@example.com"},
        headers=alice,
    )
    assert moved.status_code == 201
    scanned = await saga.booking.client.post(
        f"/api/v1/events/{event.event_id}/checkins",
        json={"barcode": used["barcode"]},
        headers=organizer,
    )
    assert scanned.json()["result"] == "valid"
    for ticket in (moved.json(), used):
        refused = await saga.booking.client.post(
            f"/api/v1/orders/{placed['order_id']}/refunds",
            json={"ticket_ids": [ticket["ticket_id"]]},
            headers=alice,
        )
        assert refused.status_code == 409, refused.text
    whole = await saga.booking.client.post(
        f"/api/v1/orders/{placed['order_id']}/refunds", json={}, headers=alice
    )
    assert whole.status_code == 201, whole.text
    assert whole.json()["ticket_ids"] == [kept["ticket_id"]]
    await saga.pump()
    friend_tickets = (
        await saga.booking.client.get(
            "/api/v1/users/me/tickets", headers=token_issuer.headers(friend, ("customer",))
        )
    ).json()["items"]
    assert [ticket["status"] for ticket in friend_tickets] == ["valid"]
