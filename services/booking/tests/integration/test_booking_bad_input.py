"""What a client can get wrong gets a 4xx problem+json saying what to do, and loses
nothing: an expired or foreign hold, an unknown, expired or exhausted promo code, an
Idempotency-Key reused with another body, a malformed barcode."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from marquee_testing.events import Clock
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga

from .helpers import fan, first_seats, hold, order

ORGANIZER = "organizer-1"


def problem(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].rsplit("/", 1)[-1] == code, body
    detail: str = body["detail"]
    return detail


async def test_holds_that_cannot_be_ordered(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    seats = first_seats(event, 3)
    _, alice = fan(token_issuer)
    _, bob = fan(token_issuer)
    alices = await hold(saga, event.event_id, alice, seats=[{"seat_id": seats[0]}])

    detail = problem(await order(saga, event.event_id, alices, bob), 404, "hold-not-found")
    assert "hold the places again" in detail.lower()
    problem(await order(saga, event.event_id, "hld_" + "x" * 22, alice), 404, "hold-not-found")
    problem(await order(saga, uuid.uuid4(), alices, alice), 404, "hold-not-found")

    first = await order(saga, event.event_id, alices, alice)
    assert first.status_code == 201, first.text
    again = await order(saga, event.event_id, alices, alice)
    detail = problem(again, 409, "hold-already-ordered")
    assert again.json()["order_id"] == first.json()["order_id"]

    lapsing = await hold(saga, event.event_id, alice, seats=[{"seat_id": seats[1]}])
    clock.advance(timedelta(minutes=4, seconds=55))
    problem(await order(saga, event.event_id, lapsing, alice), 410, "hold-ending")
    clock.advance(timedelta(minutes=1))
    await saga.expire_holds()
    problem(await order(saga, event.event_id, lapsing, alice), 404, "hold-not-found")


async def test_promo_codes_that_do_not_apply(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=6, general_admission=10)
    await saga.publish(event.message)
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    promos = f"/api/v1/events/{event.event_id}/promo-codes"
    for body in (
        {"code": "ONCE", "kind": "amount", "value": 500, "currency": "EUR", "max_uses": 1},
        {
            "code": "LATER",
            "kind": "percent",
            "value": 1000,
            "valid_from": (clock() + timedelta(days=1)).isoformat(),
        },
        {
            "code": "STANDING",
            "kind": "percent",
            "value": 5000,
            "ticket_type_id": str(event.general_admission),
        },
        {"code": "MINE", "kind": "percent", "value": 1000, "max_uses_per_user": 1},
    ):
        made = await saga.booking.client.post(promos, json=body, headers=organizer)
        assert made.status_code == 201, made.text
    problem(
        await saga.booking.client.post(
            promos, json={"code": "bad", "kind": "percent", "value": 20000}, headers=organizer
        ),
        422,
        "invalid-request",
    )
    seats = first_seats(event, 6)
    _, alice = fan(token_issuer)
    _, bob = fan(token_issuer)

    async def try_code(headers: dict[str, str], hold_id: str, code: str) -> httpx.Response:
        return await order(saga, event.event_id, hold_id, headers, promo_code=code)

    alices = [
        await hold(saga, event.event_id, alice, seats=[{"seat_id": seat}]) for seat in seats[:2]
    ]
    bobs = [await hold(saga, event.event_id, bob, seats=[{"seat_id": seat}]) for seat in seats[2:4]]
    detail = problem(await try_code(alice, alices[0], "NOPE"), 422, "unknown-promo-code")
    assert "NOPE" in detail
    assert (await try_code(alice, alices[1], "once")).status_code == 201
    problem(await try_code(bob, bobs[0], "ONCE"), 422, "promo-code-exhausted")
    problem(await try_code(bob, bobs[0], "LATER"), 422, "promo-code-not-yet-valid")
    problem(await try_code(bob, bobs[0], "STANDING"), 422, "promo-code-not-applicable")
    assert (await try_code(bob, bobs[0], "MINE")).status_code == 201
    problem(await try_code(bob, bobs[1], "MINE"), 422, "promo-code-used-up-by-you")
    # A refused code took nothing: the hold is still orderable without it.
    problem(
        await order(saga, event.event_id, alices[0], alice, promo_code="NOPE"),
        422,
        "unknown-promo-code",
    )
    assert (await order(saga, event.event_id, alices[0], alice)).status_code == 201


async def test_an_idempotency_key_reused_with_another_body(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    seats = first_seats(event, 2)
    _, alice = fan(token_issuer)
    first_hold = await hold(saga, event.event_id, alice, seats=[{"seat_id": seats[0]}])
    second_hold = await hold(saga, event.event_id, alice, seats=[{"seat_id": seats[1]}])
    key = str(uuid.uuid4())
    first = await order(saga, event.event_id, first_hold, alice, key=key)
    assert first.status_code == 201
    replay = await order(saga, event.event_id, first_hold, alice, key=key)
    assert replay.status_code == 201
    assert replay.json()["order_id"] == first.json()["order_id"]
    assert replay.headers["idempotent-replayed"] == "true"
    problem(
        await order(saga, event.event_id, second_hold, alice, key=key),
        422,
        "idempotency-key-reused",
    )
    missing = await saga.booking.client.post(
        "/api/v1/orders",
        json={"event_id": str(event.event_id), "hold_id": second_hold},
        headers=alice,
    )
    assert missing.status_code == 422
    assert "Idempotency-Key" in missing.text


async def test_a_malformed_barcode_says_what_to_scan(saga: Saga, token_issuer: TokenIssuer) -> None:
    event = published_event(rows=1, seats_per_row=2)
    await saga.publish(event.message)
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    for barcode in ("hello", "MQ:" + "A" * 10, "MQ:" + "!" * 184, "🎟️", "\x00"):
        response = await saga.booking.client.post(
            f"/api/v1/events/{event.event_id}/checkins",
            json={"barcode": barcode},
            headers=organizer,
        )
        assert 400 <= response.status_code < 500, (barcode, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    detail = problem(
        await saga.booking.client.post(
            f"/api/v1/events/{event.event_id}/checkins",
            json={"barcode": "hello"},
            headers=organizer,
        ),
        422,
        "malformed-barcode",
    )
    assert "QR code" in detail
