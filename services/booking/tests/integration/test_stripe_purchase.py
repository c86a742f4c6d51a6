"""The same purchase through the Stripe adapter against localstripe, with the real signed
webhooks it sends (``payment_intent.succeeded``) carried to the payments app byte for
byte; the events localstripe never sends (``charge.refunded``, ``payment_intent.canceled``)
are posted Stripe-shaped and signed with Stripe's scheme, including a retry days late.
Reconciliation against localstripe then finds nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import stripe
from aiohttp import web

from marquee_payments.providers import stripe_shaped
from marquee_payments.providers.signature import sign_payload
from marquee_payments.providers.stripe_adapter import StripeProvider
from marquee_payments.reconcile import reconcile
from marquee_testing.events import Clock
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.localstripe import LocalStripe, running_localstripe
from marquee_testing.saga import Saga, running_saga
from marquee_testing.waiting import wait_until

from .helpers import fan, first_seats, order_status, placed_order, start_payment

SECRET = "whsec_marquee_localstripe_saga"
ORGANIZER = "organizer-1"


@dataclass
class Inbox:
    """Our webhook endpoint as localstripe sees it: it records what arrives; the saga's
    rounds carry each delivery, unchanged, to the payments app."""

    url: str = ""
    arrived: list[tuple[bytes, str | None]] = field(default_factory=list)
    carried: int = 0
    types: list[str] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrived.append((body, request.headers.get("Stripe-Signature")))
        self.types.append(json.loads(body).get("type", "?"))
        return web.Response(status=200)


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    with running_localstripe(log_dir=Path(tmp_path_factory.mktemp("localstripe"))) as server:
        yield server


@pytest.fixture
async def stripe_saga(
    localstripe: LocalStripe,
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
    token_issuer: TokenIssuer,
    unique_name: Callable[[str], str],
    clock: Clock,
) -> AsyncIterator[tuple[Saga, Inbox]]:
    inbox = Inbox()
    app = web.Application()
    app.router.add_post("/webhook", inbox.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    inbox.url = f"http://{host}:{port}/webhook"
    localstripe.register_webhook(unique_name("saga"), url=inbox.url, secret=SECRET)
    provider = StripeProvider(localstripe.api_key, [SECRET], api_base=localstripe.url)
    try:
        async with running_saga(
            make_database=make_database,
            redis_url=redis_url,
            kafka_bootstrap=kafka_bootstrap,
            token_issuer=token_issuer,
            unique_name=unique_name,
            clock=clock,
            payments_overrides={"provider": "stripe"},
            provider=provider,
        ) as saga:

            async def carry() -> int:
                fresh = inbox.arrived[inbox.carried :]
                inbox.carried = len(inbox.arrived)
                for body, signature in fresh:
                    answer = await saga.payments.client.post(
                        "/api/v1/payments/webhooks/stripe",
                        content=body,
                        headers={
                            "Content-Type": "application/json",
                            **({"Stripe-Signature": signature} if signature else {}),
                        },
                    )
                    assert answer.status_code == 200, answer.text
                return len(fresh)

            saga.webhooks = carry
            yield saga, inbox
    finally:
        await provider.aclose()
        await runner.cleanup()


async def post_signed(saga: Saga, event: dict[str, object]) -> dict[str, object]:
    body = json.dumps(event).encode()
    answer = await saga.payments.client.post(
        "/api/v1/payments/webhooks/stripe",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(body, SECRET, timestamp=int(time.time())),
        },
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()
    return result


async def test_a_purchase_through_stripe_on_localstripe(
    stripe_saga: tuple[Saga, Inbox],
    localstripe: LocalStripe,
    token_issuer: TokenIssuer,
    clock: Clock,
) -> None:
    saga, inbox = stripe_saga
    event = published_event(rows=1, seats_per_row=3)
    await saga.publish(event.message)
    _, alice = fan(token_issuer)
    [seat] = first_seats(event, 1)
    placed = await placed_order(saga, event.event_id, alice, seats=[{"seat_id": seat}])
    payment = await start_payment(saga, placed["order_id"], alice)
    assert payment["provider"] == "stripe"
    assert payment["provider_payment_id"].startswith("pi_")
    assert payment["client_secret"]

    # What Stripe.js does in the fan's browser (payments never sees the card).
    http_client = stripe.HTTPXClient()
    browser = stripe.StripeClient(
        localstripe.api_key,
        base_addresses={"api": localstripe.url},
        http_client=http_client,
        max_network_retries=0,
    )
    intent_id = payment["provider_payment_id"]
    await browser.v1.payment_intents.update_async(intent_id, {"payment_method": "pm_card_visa"})
    await browser.v1.payment_intents.confirm_async(intent_id)
    await wait_until(
        lambda: "payment_intent.succeeded" in inbox.types,
        timeout=15,
        message="localstripe to post payment_intent.succeeded",
    )
    await saga.pump()
    order = await order_status(saga, placed["order_id"], alice)
    assert order["status"] == "paid", order

    # The organizer refunds: payments refunds at localstripe (synchronously succeeded).
    organizer = token_issuer.headers(ORGANIZER, ("organizer",))
    refund = await saga.booking.client.post(
        f"/api/v1/orders/{placed['order_id']}/refunds", json={}, headers=organizer
    )
    assert refund.status_code == 201, refund.text
    await saga.pump()
    assert (await order_status(saga, placed["order_id"], alice))["status"] == "refunded"

    # What localstripe never sends: charge.refunded (and its retry days late) and a late
    # payment_intent.canceled. Signed with Stripe's scheme; they change nothing now.
    charge = stripe_shaped.charge_object(
        amount=int(payment["amount_minor"]),
        currency="eur",
        payment_intent=intent_id,
        amount_refunded=int(payment["amount_minor"]),
        metadata={"order_id": placed["order_id"]},
    )
    refunded = stripe_shaped.event_object(
        "charge.refunded", charge, created=clock() - timedelta(days=3)
    )
    assert (await post_signed(saga, dict(refunded)))["outcome"] == "refund-known"
    assert (await post_signed(saga, dict(refunded)))["outcome"] == "duplicate"
    canceled = stripe_shaped.event_object(
        "payment_intent.canceled",
        stripe_shaped.payment_intent_object(
            amount=int(payment["amount_minor"]),
            currency="eur",
            intent_id=intent_id,
            status="canceled",
            metadata={"order_id": placed["order_id"]},
        ),
    )
    assert str((await post_signed(saga, dict(canceled)))["outcome"]).startswith("stale")
    assert await saga.pump() == []
    assert (await order_status(saga, placed["order_id"], alice))["status"] == "refunded"

    async with saga.payments.database.reading() as session:
        found = await reconcile(
            session=session,
            provider=saga.provider,
            since=clock() - timedelta(hours=1),
            now=clock() + timedelta(hours=1),
            grace=timedelta(0),
        )
    assert [d for d in found.differences if d.order_id == uuid.UUID(placed["order_id"])] == []
    await http_client.close_async()  # type: ignore[no-untyped-call]
