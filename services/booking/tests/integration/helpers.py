"""Steps of a purchase, as a fan's client takes them, for the booking tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from marquee_testing.fixtures import TokenIssuer
from marquee_testing.saga import Saga


def fan(token_issuer: TokenIssuer) -> tuple[str, dict[str, str]]:
    """A new signed-in customer (auth's user ids are UUIDs)."""
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
    saga: Saga,
    event_id: uuid.UUID,
    hold_id: str,
    headers: dict[str, str],
    *,
    key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    return await saga.booking.client.post(
        "/api/v1/orders",
        json={"event_id": str(event_id), "hold_id": hold_id, **extra},
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


async def placed_order(
    saga: Saga, event_id: uuid.UUID, headers: dict[str, str], **hold_body: Any
) -> dict[str, Any]:
    hold_id = await hold(saga, event_id, headers, **hold_body)
    response = await order(saga, event_id, hold_id, headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def start_payment(saga: Saga, order_id: str, headers: dict[str, str]) -> dict[str, Any]:
    started = await saga.payments.client.post(
        "/api/v1/payments", json={"order_id": order_id}, headers=headers
    )
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    return body


async def confirm(
    saga: Saga, payment: dict[str, Any], outcome: str = "succeed", card: str = "4242424242424242"
) -> dict[str, Any]:
    confirmed = await saga.payments.client.post(
        f"/api/v1/payments/simulator/intents/{payment['provider_payment_id']}/confirm",
        json={"client_secret": payment["client_secret"], "outcome": outcome, "card": card},
    )
    assert confirmed.status_code == 200, confirmed.text
    body: dict[str, Any] = confirmed.json()
    return body


async def order_status(saga: Saga, order_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await saga.booking.client.get(f"/api/v1/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def first_seats(event: Any, count: int) -> list[str]:
    return [seat.id for seat in event.message.seating.sections[0].rows[0].seats[:count]]
