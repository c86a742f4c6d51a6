"""Fraud checks: a charge the provider rates highest risk is held for an admin's review
(no tickets meanwhile); the admin approves it (tickets follow) or refunds it (the money
goes back, the order lapses unpaid); a burst of payments by one account is refused with
the decision recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marquee_payments.models import FraudDecision, Payment
from marquee_payments.simulator import HIGH_RISK_CARD
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga

from .helpers import confirm, fan, first_seats, order_status, placed_order, start_payment


@pytest.fixture
def payments_overrides() -> dict[str, object]:
    return {"max_orders_per_account": 2}


@pytest.mark.parametrize("decision", ["approve", "refund"])
async def test_a_risky_charge_waits_for_an_admin(
    saga: Saga, token_issuer: TokenIssuer, decision: str
) -> None:
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], headers)
    await confirm(saga, payment, card=HIGH_RISK_CARD)
    await saga.pump()
    assert (await order_status(saga, placed["order_id"], headers))["status"] == "pending_payment"
    admin = token_issuer.headers("admin-1", ("admin",))
    reviews = (await saga.payments.client.get("/api/v1/payments/reviews", headers=admin)).json()
    [held] = [review for review in reviews if review["payment"]["order_id"] == placed["order_id"]]
    assert any("highest" in reason for reason in held["reasons"]), held

    decided = await saga.payments.client.post(
        f"/api/v1/payments/reviews/{held['payment']['payment_id']}/{decision}", headers=admin
    )
    assert decided.status_code == 200, decided.text
    await saga.pump()
    order = await order_status(saga, placed["order_id"], headers)
    async with saga.payments.database.reading() as session:
        row = (
            await session.execute(select(Payment).where(Payment.order_id == placed["order_id"]))
        ).scalar_one()
        decisions = (
            (
                await session.execute(
                    select(FraudDecision.decision).where(FraudDecision.order_id == row.order_id)
                )
            )
            .scalars()
            .all()
        )
    if decision == "approve":
        assert order["status"] == "paid"
        assert (row.status, row.review) == ("succeeded", "approved")
    else:
        assert order["status"] == "pending_payment"  # it lapses unpaid with its hold
        assert (row.status, row.review, row.amount_refunded_minor) == (
            "refunded",
            "refunded",
            row.amount_minor,
        )
    assert list(decisions) == ["allow", "review", decision]
    again = await saga.payments.client.post(
        f"/api/v1/payments/reviews/{held['payment']['payment_id']}/approve", headers=admin
    )
    assert again.status_code == 404


async def test_too_many_payments_by_one_account_are_refused_and_recorded(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    seats = first_seats(event, 3)
    orders = [
        await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
        for seat in seats
    ]
    for placed in orders[:2]:
        await start_payment(saga, placed["order_id"], headers)
    refused = await saga.payments.client.post(
        "/api/v1/payments", json={"order_id": orders[2]["order_id"]}, headers=headers
    )
    assert refused.status_code == 429, refused.text
    assert refused.json()["type"].endswith("/payment-velocity")
    assert "Retry-After" in refused.headers
    async with saga.payments.database.reading() as session:
        recorded = (
            (
                await session.execute(
                    select(FraudDecision).where(FraudDecision.order_id == orders[2]["order_id"])
                )
            )
            .scalars()
            .all()
        )
    assert [(row.stage, row.decision) for row in recorded] == [("intent", "refuse")]
    assert "2 payments by this account" in recorded[0].reasons[0]
