"""The saga's other paths: a refused payment, a hold that lapses first, a payment that
arrives after its order expired (honoured when the seat is still free, refunded when it
was taken), webhooks delivered twice, out of order, forged or replayed."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from marquee_contracts.booking import ORDER_CLOSED
from marquee_payments.ledger import Ledger
from marquee_payments.models import Payment, ProviderEventRecord, SimulatedIntent, SimulatedWebhook
from marquee_payments.providers import stripe_shaped
from marquee_payments.providers.signature import sign_payload
from marquee_testing.events import Clock
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.saga import Saga

from .helpers import (
    confirm,
    fan,
    first_seats,
    hold,
    order_status,
    placed_order,
    start_payment,
)


async def seat_state(saga: Saga, event_id: uuid.UUID, seat: str) -> str:
    response = await saga.inventory.client.get(f"/api/v1/inventory/events/{event_id}/availability")
    state: str = response.json()["seats"][seat]
    return state


async def ledger_balances(saga: Saga) -> tuple[list[tuple[uuid.UUID, int]], int]:
    async with saga.payments.database.reading() as session:
        ledger = Ledger(session)
        unbalanced = await ledger.unbalanced_orders()
        from marquee_payments.models import LedgerEntry

        total = (
            await session.execute(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)))
        ).scalar_one()
        return unbalanced, int(total)


async def test_a_refused_payment_closes_the_order_and_frees_the_seat(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], headers)
    await confirm(saga, payment, outcome="fail")
    await saga.pump()
    order = await order_status(saga, placed["order_id"], headers)
    assert (order["status"], order["closed_reason"]) == ("failed", "payment-failed")
    assert await seat_state(saga, event.event_id, seat) == "available"
    assert await ledger_balances(saga) == ([], 0)


async def test_a_lapsed_hold_expires_the_order_and_cancels_its_payment(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], headers)
    clock.advance(timedelta(minutes=6))
    await saga.expire_holds()
    await saga.pump()
    order = await order_status(saga, placed["order_id"], headers)
    assert (order["status"], order["closed_reason"]) == ("expired", "expired")
    async with saga.payments.database.reading() as session:
        intent = await session.get(SimulatedIntent, payment["provider_payment_id"])
        assert intent is not None
        assert intent.status == "canceled"
    paying = await saga.payments.client.post(
        f"/api/v1/payments/simulator/intents/{payment['provider_payment_id']}/confirm",
        json={"client_secret": payment["client_secret"]},
    )
    assert paying.status_code == 422, paying.text


async def _pay_after_expiry(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock, *, taken: bool
) -> tuple[dict[str, str], dict[str, object], str]:
    """An order whose hold lapsed while its buyer was paying: the cancel is held back so
    the payment goes through after the order expired."""
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], headers)
    saga.held_back = lambda topic, _: topic == ORDER_CLOSED.name
    clock.advance(timedelta(minutes=6))
    await saga.expire_holds()
    await saga.pump()
    assert (await order_status(saga, placed["order_id"], headers))["status"] == "expired"
    if taken:
        _, someone_else = fan(token_issuer)
        await hold(saga, event.event_id, someone_else, seats=[{"seat_id": seat}])
    saga.held_back = None
    await confirm(saga, payment)
    await saga.pump()
    await saga.release_parked()
    return headers, placed, seat


async def test_a_payment_after_expiry_is_honoured_while_the_seat_is_free(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    headers, placed, seat = await _pay_after_expiry(saga, token_issuer, clock, taken=False)
    order = await order_status(saga, str(placed["order_id"]), headers)
    assert order["status"] == "paid"
    tickets = (await saga.booking.client.get("/api/v1/users/me/tickets", headers=headers)).json()
    assert [ticket["seat_id"] for ticket in tickets["items"]] == [seat]
    assert await ledger_balances(saga) == ([], 0)


async def test_a_payment_after_expiry_is_refunded_when_the_seat_was_taken(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    headers, placed, _ = await _pay_after_expiry(saga, token_issuer, clock, taken=True)
    order = await order_status(saga, str(placed["order_id"]), headers)
    assert order["status"] == "refunded", order
    assert order["refunded_minor"] == order["paid_minor"] == order["total_minor"]
    tickets = (await saga.booking.client.get("/api/v1/users/me/tickets", headers=headers)).json()
    assert tickets["items"] == []
    async with saga.payments.database.reading() as session:
        payment = (
            await session.execute(select(Payment).where(Payment.order_id == placed["order_id"]))
        ).scalar_one()
        assert (payment.status, payment.amount_refunded_minor) == ("refunded", payment.amount_minor)
    assert await ledger_balances(saga) == ([], 0)


async def _resend(saga: Saga, payload: str, *, signed_at: int | None = None) -> int:
    secret = saga.simulator.webhook_secret
    header = sign_payload(payload.encode(), secret, timestamp=signed_at or int(time.time()))
    response = await saga.payments.client.post(
        "/api/v1/payments/webhooks/simulated",
        content=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    return response.status_code


async def test_webhooks_twice_late_or_out_of_order_change_nothing(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], headers)
    await confirm(saga, payment)
    await saga.pump()
    assert (await order_status(saga, placed["order_id"], headers))["status"] == "paid"
    async with saga.payments.database.reading() as session:
        delivered = (await session.execute(select(SimulatedWebhook.payload))).scalars().all()
    # Every event again (Stripe retries), then a payment_failed signed days later than
    # the success it contradicts.
    for payload in delivered:
        assert await _resend(saga, payload) == 200
    late_failure = stripe_shaped.event_object(
        "payment_intent.payment_failed",
        stripe_shaped.payment_intent_object(
            amount=int(payment["amount_minor"]),
            currency="eur",
            intent_id=payment["provider_payment_id"],
            status="requires_payment_method",
            metadata={"order_id": placed["order_id"]},
        ),
        created=clock() - timedelta(days=3),
    )
    assert await _resend(saga, json.dumps(late_failure)) == 200
    carried = await saga.pump()
    assert carried == []
    order = await order_status(saga, placed["order_id"], headers)
    assert order["status"] == "paid"
    tickets = (await saga.booking.client.get("/api/v1/users/me/tickets", headers=headers)).json()
    assert len(tickets["items"]) == 1
    async with saga.payments.database.reading() as session:
        outcomes = dict(
            (
                await session.execute(
                    select(ProviderEventRecord.event_id, ProviderEventRecord.outcome)
                )
            ).all()
        )
        state = (
            await session.execute(
                select(Payment.status).where(Payment.order_id == placed["order_id"])
            )
        ).scalar_one()
    assert outcomes[late_failure["id"]].startswith("stale")
    assert state == "succeeded"
    assert await ledger_balances(saga) == ([], 0)


async def test_forged_or_replayed_webhooks_are_refused_and_change_nothing(
    saga: Saga, token_issuer: TokenIssuer
) -> None:
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], headers)
    await saga.pump()
    forged_success = json.dumps(
        stripe_shaped.event_object(
            "payment_intent.succeeded",
            stripe_shaped.payment_intent_object(
                amount=int(payment["amount_minor"]),
                currency="eur",
                intent_id=payment["provider_payment_id"],
                status="succeeded",
                metadata={"order_id": placed["order_id"]},
            ),
        )
    )
    wrong_key = sign_payload(forged_success.encode(), "whsec_not_ours", timestamp=int(time.time()))
    forged = await saga.payments.client.post(
        "/api/v1/payments/webhooks/simulated",
        content=forged_success,
        headers={"Content-Type": "application/json", "Stripe-Signature": wrong_key},
    )
    assert forged.status_code == 400, forged.text
    assert forged.headers["content-type"].startswith("application/problem+json")
    assert await _resend(saga, forged_success, signed_at=int(time.time()) - 3600) == 400
    unsigned = await saga.payments.client.post(
        "/api/v1/payments/webhooks/simulated", content=forged_success
    )
    assert unsigned.status_code == 400
    assert await saga.pump() == []
    async with saga.payments.database.reading() as session:
        assert (
            await session.execute(select(func.count()).select_from(ProviderEventRecord))
        ).scalar_one() == 0
    assert (await order_status(saga, placed["order_id"], headers))["status"] == "pending_payment"


async def test_a_late_failure_of_an_earlier_attempt_is_stale(
    saga: Saga, token_issuer: TokenIssuer, clock: Clock
) -> None:
    """3-D Secure started (requires_action, now); a payment_failed created a minute
    earlier arrives after it: stale, and the fan still completes the payment."""
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, headers = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, headers, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], headers)
    await confirm(saga, payment, outcome="three_d_secure")
    await saga.pump()
    earlier_failure = stripe_shaped.event_object(
        "payment_intent.payment_failed",
        stripe_shaped.payment_intent_object(
            amount=int(payment["amount_minor"]),
            currency="eur",
            intent_id=payment["provider_payment_id"],
            status="requires_payment_method",
            metadata={"order_id": placed["order_id"]},
        ),
        created=clock() - timedelta(minutes=1),
    )
    assert await _resend(saga, json.dumps(earlier_failure)) == 200
    await saga.pump()
    assert (await order_status(saga, placed["order_id"], headers))["status"] == "pending_payment"
    authenticated = await saga.payments.client.post(
        f"/api/v1/payments/simulator/intents/{payment['provider_payment_id']}/authenticate",
        json={"client_secret": payment["client_secret"], "approve": True},
    )
    assert authenticated.status_code == 200, authenticated.text
    await saga.pump()
    assert (await order_status(saga, placed["order_id"], headers))["status"] == "paid"
