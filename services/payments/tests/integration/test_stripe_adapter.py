"""The Stripe adapter over real HTTP: against localstripe (a real process) for what Stripe
does, and against a small recording server standing in for Stripe where localstripe
cannot show what the adapter sent (idempotency keys, list filters, errors Stripe gives).

localstripe is started with its gaps filled (see marquee_testing.localstripe); one test
runs it untouched to record those gaps. Tests share one localstripe: each makes its own
objects and looks only at those.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe
from aiohttp import web

from marquee_payments.providers.base import (
    InvalidWebhook,
    ProviderError,
    ProviderEvent,
    ProviderIntent,
    ProviderUnavailable,
)
from marquee_payments.providers.signature import sign_payload
from marquee_payments.providers.stripe_adapter import StripeProvider
from marquee_payments.providers.stripe_shaped import (
    charge_object,
    dispute_object,
    event_object,
    payment_intent_object,
    refund_object,
    webhook_body,
)
from marquee_testing.localinfra import free_port
from marquee_testing.localstripe import LocalStripe, running_localstripe
from marquee_testing.waiting import wait_until

pytestmark = pytest.mark.filterwarnings(
    # stripe 16's HTTPXClient posts with httpx's deprecated data=<bytes>; not ours to fix.
    "ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"
)

WEBHOOK_SECRET = "whsec_marquee_adapter_tests"
WEBHOOK_DELIVERY_TIMEOUT = 15.0
"""localstripe posts a webhook one second after the change."""


# ---- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    with running_localstripe(log_dir=tmp_path_factory.mktemp("localstripe")) as server:
        yield server


@pytest.fixture(scope="module")
def untouched_localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    log_dir = tmp_path_factory.mktemp("localstripe-untouched")
    with running_localstripe(log_dir=log_dir, fill_gaps=False) as server:
        yield server


@dataclass(frozen=True)
class Delivery:
    body: bytes
    signature: str | None

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class WebhookReceiver:
    """Our webhook endpoint, reduced to recording what arrives (raw bytes and header)."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        self.deliveries.append(
            Delivery(await request.read(), request.headers.get("Stripe-Signature"))
        )
        return web.Response(status=200)

    def find(self, event_type: str, object_id: str) -> Delivery | None:
        for delivery in self.deliveries:
            event = delivery.event
            if event.get("type") == event_type and event["data"]["object"]["id"] == object_id:
                return delivery
        return None

    async def wait_for(self, event_type: str, object_id: str) -> Delivery:
        await wait_until(
            lambda: self.find(event_type, object_id) is not None,
            timeout=WEBHOOK_DELIVERY_TIMEOUT,
            message=lambda: (
                f"localstripe to post {event_type} for {object_id} (received: "
                f"{[delivery.event.get('type') for delivery in self.deliveries]})"
            ),
        )
        delivery = self.find(event_type, object_id)
        assert delivery is not None
        return delivery


async def serve_on_localhost(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture(scope="module")
async def webhook_receiver(localstripe_server: LocalStripe) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/webhooks/stripe", receiver.receive)
    runner, base = await serve_on_localhost(app)
    receiver.url = f"{base}/webhooks/stripe"
    localstripe_server.register_webhook("marquee-payments", url=receiver.url, secret=WEBHOOK_SECRET)
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
async def provider(localstripe_server: LocalStripe) -> AsyncIterator[StripeProvider]:
    async with StripeProvider(
        localstripe_server.api_key,
        [WEBHOOK_SECRET],
        api_base=localstripe_server.url,
        max_network_retries=0,
        list_page_size=2,  # so a handful of intents spans several pages
    ) as adapter:
        yield adapter


@pytest.fixture
async def browser(localstripe_server: LocalStripe) -> AsyncIterator[stripe.StripeClient]:
    """What Stripe.js does in the customer's browser (confirming), which the payments
    service never does itself."""
    http_client = stripe.HTTPXClient()
    yield stripe.StripeClient(
        localstripe_server.api_key,
        base_addresses={"api": localstripe_server.url},
        http_client=http_client,
        max_network_retries=0,
    )
    await http_client.close_async()  # type: ignore[no-untyped-call]


async def new_intent(
    provider: StripeProvider, *, amount_minor: int = 4250, currency: str = "EUR"
) -> ProviderIntent:
    return await provider.create_intent(
        order_id=uuid.uuid4(),
        amount_minor=amount_minor,
        currency=currency,
        idempotency_key=f"order-{uuid.uuid4()}",
        description="Marquee order",
        metadata={"event_id": "evt-42"},
    )


async def pay(browser: stripe.StripeClient, intent_id: str, card: str = "pm_card_visa") -> None:
    # localstripe refuses payment_method on confirm (500 "Not implemented"), so the card
    # is attached first; Stripe.js would pass it to confirm.
    await browser.v1.payment_intents.update_async(intent_id, {"payment_method": card})
    await browser.v1.payment_intents.confirm_async(intent_id)


# ---- intents on localstripe ------------------------------------------------------------------


async def test_an_intent_round_trips_amount_currency_and_metadata(
    provider: StripeProvider, browser: stripe.StripeClient
) -> None:
    order_id = uuid.uuid4()

    intent = await provider.create_intent(
        order_id=order_id,
        amount_minor=4250,
        currency="EUR",
        idempotency_key=f"order-{order_id}",
        description="2 tickets, Marquee order",
        metadata={"event_id": "evt-42", "order_id": "someone else's"},
    )

    assert intent.id.startswith("pi_")
    assert intent.client_secret is not None
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    assert (intent.amount_minor, intent.currency) == (4250, "EUR")
    assert intent.status == "requires_payment_method"
    assert intent.order_id == order_id
    assert await provider.retrieve_intent(intent.id) == intent
    # What Stripe itself holds: minor units, lower-case currency, our metadata.
    stored = await browser.v1.payment_intents.retrieve_async(intent.id)
    assert (stored.amount, stored.currency, stored.description) == (
        4250,
        "eur",
        "2 tickets, Marquee order",
    )
    assert stored.metadata.to_dict() == {"event_id": "evt-42", "order_id": str(order_id)}


async def test_localstripe_ignores_idempotency_keys_so_the_same_key_makes_two_intents(
    provider: StripeProvider,
) -> None:
    """Real Stripe answers the second create with the first intent. localstripe does not
    look at the header at all; test_every_write_sends_our_idempotency_key shows the
    adapter sends it."""
    order_id = uuid.uuid4()
    arguments: dict[str, Any] = {
        "order_id": order_id,
        "amount_minor": 1500,
        "currency": "GBP",
        "idempotency_key": f"order-{order_id}",
        "description": "Marquee order",
        "metadata": {},
    }

    first = await provider.create_intent(**arguments)
    second = await provider.create_intent(**arguments)

    assert first.id != second.id
    assert first.order_id == second.order_id == order_id


async def test_a_test_card_payment_succeeds(
    provider: StripeProvider, browser: stripe.StripeClient
) -> None:
    intent = await new_intent(provider)

    await pay(browser, intent.id)

    paid = await provider.retrieve_intent(intent.id)
    assert paid.status == "succeeded"
    assert (paid.amount_minor, paid.currency, paid.order_id) == (4250, "EUR", intent.order_id)


async def test_a_declined_card_leaves_the_intent_waiting_for_another_payment_method(
    provider: StripeProvider, browser: stripe.StripeClient
) -> None:
    intent = await new_intent(provider)

    with pytest.raises(stripe.CardError, match="Your card was declined"):
        await pay(browser, intent.id, card="pm_card_chargeCustomerFail")

    assert (await provider.retrieve_intent(intent.id)).status == "requires_payment_method"


async def test_cancelling_a_fresh_intent_cancels_it_and_cancelling_again_is_no_error(
    provider: StripeProvider,
) -> None:
    intent = await new_intent(provider)

    canceled = await provider.cancel_intent(intent.id, idempotency_key=f"cancel-{intent.id}")
    # localstripe answers 400 to the second cancel (as Stripe does, without Stripe's
    # payment_intent_unexpected_state code): the adapter reads the state instead.
    again = await provider.cancel_intent(intent.id, idempotency_key=f"cancel-again-{intent.id}")

    assert canceled.status == again.status == "canceled"
    assert again.id == intent.id


async def test_cancelling_a_succeeded_intent_returns_it_succeeded(
    provider: StripeProvider, browser: stripe.StripeClient
) -> None:
    intent = await new_intent(provider)
    await pay(browser, intent.id)

    state = await provider.cancel_intent(intent.id, idempotency_key=f"cancel-{intent.id}")

    assert state.status == "succeeded"


async def test_an_unknown_intent_is_a_provider_error(provider: StripeProvider) -> None:
    with pytest.raises(ProviderError) as refused:
        await provider.retrieve_intent("pi_doesnotexist")

    assert not isinstance(refused.value, ProviderUnavailable)
    assert refused.value.http_status == 404


# ---- refunds and listings on localstripe -----------------------------------------------------


async def test_a_refund_is_made_against_the_intent(
    provider: StripeProvider, browser: stripe.StripeClient
) -> None:
    intent = await new_intent(provider)
    await pay(browser, intent.id)

    refund = await provider.refund(
        intent_id=intent.id,
        amount_minor=1000,
        idempotency_key=f"refund-{intent.id}-1",
        reason="requested_by_customer",
    )

    assert refund.id.startswith("re_")
    assert (refund.intent_id, refund.amount_minor, refund.currency) == (intent.id, 1000, "EUR")
    assert refund.status == "succeeded"
    assert refund.charge_id is not None
    assert refund.charge_id.startswith("ch_")
    stored = await browser.v1.refunds.retrieve_async(refund.id)
    assert stored.reason == "requested_by_customer"


async def test_a_refund_reason_stripe_does_not_know_is_refused_before_asking(
    provider: StripeProvider,
) -> None:
    with pytest.raises(ProviderError, match="requested_by_customer"):
        await provider.refund(
            intent_id="pi_any", amount_minor=100, idempotency_key="refund-x", reason="sold out"
        )


async def test_listing_payments_since_follows_every_page_with_refunded_amounts(
    provider: StripeProvider, browser: stripe.StripeClient
) -> None:
    since = datetime.fromtimestamp(int(time.time()), UTC)
    intents = [await new_intent(provider, amount_minor=1000 + index) for index in range(5)]
    await pay(browser, intents[0].id)
    await provider.refund(
        intent_id=intents[0].id, amount_minor=300, idempotency_key="refund-list-1", reason=None
    )
    await provider.refund(
        intent_id=intents[0].id, amount_minor=200, idempotency_key="refund-list-2", reason=None
    )

    listed = {payment.intent_id: payment async for payment in provider.list_payments(since=since)}
    later = [payment async for payment in provider.list_payments(since=since + timedelta(hours=1))]

    ours = {intent.id for intent in intents}
    assert ours <= listed.keys()  # five of ours at two per page: at least three pages
    paid = listed[intents[0].id]
    assert (paid.status, paid.amount_minor, paid.amount_refunded_minor) == ("succeeded", 1000, 500)
    assert paid.order_id == intents[0].order_id
    assert paid.created >= since
    assert all(listed[intent.id].amount_refunded_minor == 0 for intent in intents[1:])
    assert not ours & {payment.intent_id for payment in later}


async def test_listing_refunds_since_follows_every_page(
    provider: StripeProvider, browser: stripe.StripeClient
) -> None:
    since = datetime.fromtimestamp(int(time.time()), UTC)
    intent = await new_intent(provider, amount_minor=9000)
    await pay(browser, intent.id)
    made = [
        await provider.refund(
            intent_id=intent.id,
            amount_minor=1000,
            idempotency_key=f"refund-{intent.id}-{index}",
            reason="duplicate",
        )
        for index in range(3)
    ]

    listed = [refund async for refund in provider.list_refunds(since=since)]
    later = [refund async for refund in provider.list_refunds(since=since + timedelta(hours=1))]

    by_id = {refund.id: refund for refund in listed}
    assert {refund.id for refund in made} <= by_id.keys()
    assert all(by_id[refund.id] == refund for refund in made)
    assert not {refund.id for refund in made} & {refund.id for refund in later}


async def test_what_untouched_localstripe_refuses_that_stripe_accepts(
    untouched_localstripe: LocalStripe,
) -> None:
    """Why marquee_testing.localstripe fills gaps: localstripe 1.15.10 on its own refuses a
    description, a refund's reason, and the created filter of both listings the
    reconciliation relies on."""
    since = datetime.now(UTC) - timedelta(minutes=1)
    http_client = stripe.HTTPXClient()
    browser = stripe.StripeClient(
        untouched_localstripe.api_key,
        base_addresses={"api": untouched_localstripe.url},
        http_client=http_client,
    )
    async with StripeProvider(
        untouched_localstripe.api_key,
        [WEBHOOK_SECRET],
        api_base=untouched_localstripe.url,
        max_network_retries=0,
    ) as adapter:
        with pytest.raises(ProviderError, match="Unexpected description"):
            await new_intent(adapter)
        # An intent made without a description, to refund with a reason.
        bare = await browser.v1.payment_intents.create_async(
            {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa"}
        )
        await browser.v1.payment_intents.confirm_async(bare.id)
        with pytest.raises(ProviderError, match="Unexpected reason"):
            await adapter.refund(
                intent_id=bare.id, amount_minor=100, idempotency_key="refund", reason="duplicate"
            )
        assert (
            await adapter.refund(
                intent_id=bare.id, amount_minor=100, idempotency_key="refund", reason=None
            )
        ).amount_minor == 100
        with pytest.raises(ProviderError, match="Unexpected created") as intents_refused:
            _ = [payment async for payment in adapter.list_payments(since=since)]
        # Refunds: localstripe's list handler does not take the argument at all, a 500.
        with pytest.raises(ProviderUnavailable):
            _ = [refund async for refund in adapter.list_refunds(since=since)]
    await http_client.close_async()  # type: ignore[no-untyped-call]

    assert not isinstance(intents_refused.value, ProviderUnavailable)


# ---- webhooks from localstripe ---------------------------------------------------------------


async def test_localstripe_signed_payment_intent_succeeded_is_verified_and_normalized(
    provider: StripeProvider, browser: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    intent = await new_intent(provider, amount_minor=6600, currency="USD")
    await pay(browser, intent.id)

    delivery = await webhook_receiver.wait_for("payment_intent.succeeded", intent.id)
    event = provider.parse_webhook(delivery.body, delivery.signature)

    assert event.event_id.startswith("evt_")
    assert event.type == "payment_intent.succeeded"
    assert (event.intent_id, event.order_id) == (intent.id, intent.order_id)
    assert (event.amount_minor, event.currency, event.status) == (6600, "USD", "succeeded")
    assert event.charge_id is not None
    assert event.charge_id.startswith("ch_")
    assert abs(event.created - datetime.now(UTC)) < timedelta(minutes=1)
    assert event.failure_message is None
    # localstripe's charges carry no Radar outcome and no payment_method_details, so it
    # gives neither a risk assessment nor a card fingerprint. (Real Stripe puts neither in
    # a PaymentIntent event either: they come with charge.* events.)
    assert (event.risk_level, event.risk_score, event.payment_method_fingerprint) == (
        None,
        None,
        None,
    )
    card = await browser.v1.payment_methods.retrieve_async(
        delivery.event["data"]["object"]["latest_charge"]["payment_method"]
    )
    assert card.card is not None
    assert card.card.fingerprint  # only the PaymentMethod has it in localstripe


async def test_a_tampered_replayed_or_unsigned_localstripe_webhook_is_refused(
    provider: StripeProvider, browser: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    intent = await new_intent(provider, amount_minor=5000)
    await pay(browser, intent.id)
    delivery = await webhook_receiver.wait_for("payment_intent.succeeded", intent.id)
    provider.parse_webhook(delivery.body, delivery.signature)  # the genuine one passes

    tampered = delivery.body.replace(b'"amount": 5000', b'"amount": 5')
    assert tampered != delivery.body
    with pytest.raises(InvalidWebhook, match=r"no v1 signature .* matches"):
        provider.parse_webhook(tampered, delivery.signature)

    # A genuine body and a genuine signature, but from an hour ago: a replay.
    an_hour_ago = int(time.time()) - 3600
    replayed = sign_payload(delivery.body, WEBHOOK_SECRET, timestamp=an_hour_ago)
    with pytest.raises(InvalidWebhook, match="3600 seconds old"):
        provider.parse_webhook(delivery.body, replayed)

    with pytest.raises(InvalidWebhook, match="header is missing"):
        provider.parse_webhook(delivery.body, None)

    async with StripeProvider(
        "sk_test_other", ["whsec_another_endpoint"], api_base="http://127.0.0.1:9"
    ) as other_endpoint:
        with pytest.raises(InvalidWebhook, match="matches"):
            other_endpoint.parse_webhook(delivery.body, delivery.signature)


async def test_localstripe_signed_payment_failed_carries_the_decline_message(
    provider: StripeProvider, browser: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    intent = await new_intent(provider, amount_minor=7000)
    with pytest.raises(stripe.CardError):
        await pay(browser, intent.id, card="pm_card_chargeCustomerFail")

    delivery = await webhook_receiver.wait_for("payment_intent.payment_failed", intent.id)
    event = provider.parse_webhook(delivery.body, delivery.signature)

    assert event.type == "payment_intent.payment_failed"
    assert (event.intent_id, event.order_id, event.amount_minor) == (
        intent.id,
        intent.order_id,
        7000,
    )
    assert event.status == "requires_payment_method"
    assert event.failure_message == "Your card was declined."


async def test_events_localstripe_never_sends_arrive_signed_like_stripe(
    provider: StripeProvider, browser: stripe.StripeClient, webhook_receiver: WebhookReceiver
) -> None:
    """payment_intent.canceled, charge.refunded, refund.created and charge.dispute.created,
    built in Stripe's shapes around objects localstripe really made, posted over HTTP and
    signed as Stripe signs."""
    paid = await new_intent(provider, amount_minor=8000)
    await pay(browser, paid.id)
    refund = await provider.refund(
        intent_id=paid.id, amount_minor=8000, idempotency_key=f"refund-{paid.id}", reason=None
    )
    canceled = await new_intent(provider)
    await provider.cancel_intent(canceled.id, idempotency_key=f"cancel-{canceled.id}")
    assert refund.charge_id is not None
    charge_id = refund.charge_id
    refund_shape = refund_object(
        amount=8000, currency="eur", payment_intent=paid.id, charge=charge_id, refund_id=refund.id
    )
    events = [
        event_object(
            "payment_intent.canceled",
            payment_intent_object(
                amount=4250,
                currency="eur",
                intent_id=canceled.id,
                status="canceled",
                cancellation_reason="abandoned",
                metadata={"order_id": str(canceled.order_id)},
            ),
        ),
        event_object(
            "charge.refunded",
            charge_object(
                amount=8000,
                currency="eur",
                payment_intent=paid.id,
                charge_id=charge_id,
                amount_refunded=8000,
                metadata={"order_id": str(paid.order_id)},
            ),
            previous_attributes={"amount_refunded": 0, "refunded": False},
        ),
        event_object("refund.created", refund_shape),
        event_object(
            "charge.dispute.created",
            dispute_object(amount=8000, currency="eur", charge=charge_id, payment_intent=paid.id),
        ),
    ]
    async with httpx.AsyncClient() as client:
        for event in events:
            body = webhook_body(event)
            signature = sign_payload(body, WEBHOOK_SECRET, timestamp=int(time.time()))
            response = await client.post(
                webhook_receiver.url,
                content=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )
            assert response.status_code == 200

    received: dict[str, ProviderEvent] = {}
    for event in events:
        delivery = webhook_receiver.find(event["type"], event["data"]["object"]["id"])
        assert delivery is not None
        received[event["type"]] = provider.parse_webhook(delivery.body, delivery.signature)

    assert received["payment_intent.canceled"].intent_id == canceled.id
    assert received["payment_intent.canceled"].order_id == canceled.order_id
    assert received["payment_intent.canceled"].reason == "abandoned"
    assert received["charge.refunded"].intent_id == paid.id
    assert received["charge.refunded"].amount_refunded_minor == 8000
    assert received["charge.refunded"].risk_level == "normal"
    assert received["refund.created"].refund_ids == (refund.id,)
    assert received["charge.dispute.created"].charge_id == charge_id
    assert received["charge.dispute.created"].dispute_id is not None


# ---- what the adapter sends: a recording stand-in for Stripe ---------------------------------


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


Answer = Callable[[Recorded], tuple[int, dict[str, Any]]]


@dataclass
class RecordingStripe:
    """Answers like Stripe with whatever the test scripts, and records each request."""

    answer: Answer
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            form={key: str(value) for key, value in form.items()},
            headers=dict(request.headers),
        )
        self.requests.append(recorded)
        status, body = self.answer(recorded)
        return web.json_response(body, status=status, headers={"Request-Id": "req_recorded"})


RecordingFactory = Callable[[Answer], Awaitable[RecordingStripe]]


@pytest.fixture
async def recording_stripe() -> AsyncIterator[RecordingFactory]:
    runners: list[web.AppRunner] = []

    async def start(answer: Answer) -> RecordingStripe:
        recording = RecordingStripe(answer)
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", recording.handle)
        runner, recording.url = await serve_on_localhost(app)
        runners.append(runner)
        return recording

    yield start
    for runner in runners:
        await runner.cleanup()


def adapter_for(recording: RecordingStripe, *, retries: int = 0) -> StripeProvider:
    return StripeProvider(
        "sk_test_recorded",
        [WEBHOOK_SECRET],
        api_base=recording.url,
        max_network_retries=retries,
        list_page_size=2,
    )


def stripe_error(error_type: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code is not None:
        error["code"] = code
    return {"error": error}


async def test_every_write_sends_our_idempotency_key(recording_stripe: RecordingFactory) -> None:
    order_id = uuid.uuid4()
    intent = payment_intent_object(amount=4250, currency="eur")

    def answer(request: Recorded) -> tuple[int, dict[str, Any]]:
        if request.path == "/v1/refunds":
            return 200, refund_object(
                amount=1000, currency="eur", payment_intent=intent["id"], charge="ch_recorded"
            )
        if request.path.endswith("/cancel"):
            return 200, intent | {"status": "canceled"}
        return 200, intent

    recording = await recording_stripe(answer)
    async with adapter_for(recording) as adapter:
        await adapter.create_intent(
            order_id=order_id,
            amount_minor=4250,
            currency="EUR",
            idempotency_key="order-create-key",
            description="Marquee order",
            metadata={"event_id": "evt-42"},
        )
        await adapter.cancel_intent(intent["id"], idempotency_key="order-cancel-key")
        await adapter.refund(
            intent_id=intent["id"],
            amount_minor=1000,
            idempotency_key="order-refund-key",
            reason="requested_by_customer",
        )

    create, cancel, refund = recording.requests
    assert [request.headers.get("Idempotency-Key") for request in recording.requests] == [
        "order-create-key",
        "order-cancel-key",
        "order-refund-key",
    ]
    assert (create.method, create.path) == ("POST", "/v1/payment_intents")
    assert create.form == {
        "amount": "4250",
        "currency": "eur",
        "description": "Marquee order",
        "metadata[event_id]": "evt-42",
        "metadata[order_id]": str(order_id),
    }
    assert create.headers["Stripe-Version"] == stripe.api_version
    assert (cancel.method, cancel.path) == ("POST", f"/v1/payment_intents/{intent['id']}/cancel")
    assert refund.form == {
        "payment_intent": intent["id"],
        "amount": "1000",
        "reason": "requested_by_customer",
    }


async def test_a_create_retried_after_a_stripe_failure_reuses_the_key(
    recording_stripe: RecordingFactory,
) -> None:
    """Why the key matters: stripe retries a 500 itself, and real Stripe would then replay
    the first intent rather than make another."""
    intent = payment_intent_object(amount=4250, currency="eur")

    def answer(request: Recorded) -> tuple[int, dict[str, Any]]:
        if len(recording.requests) == 1:
            return 500, stripe_error("api_error", "Something went wrong on Stripe's end.")
        return 200, intent

    recording = await recording_stripe(answer)
    async with adapter_for(recording, retries=1) as adapter:
        created = await adapter.create_intent(
            order_id=uuid.uuid4(),
            amount_minor=4250,
            currency="EUR",
            idempotency_key="order-retried-key",
            description="Marquee order",
            metadata={},
        )

    assert created.id == intent["id"]
    assert [request.headers.get("Idempotency-Key") for request in recording.requests] == [
        "order-retried-key",
        "order-retried-key",
    ]


async def test_listings_ask_for_created_since_and_walk_the_pages(
    recording_stripe: RecordingFactory,
) -> None:
    since = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    intents = [
        payment_intent_object(amount=1000 * (index + 1), currency="eur", status="succeeded")
        for index in range(3)
    ]
    for intent in intents:
        intent["latest_charge"] = charge_object(
            amount=intent["amount"],
            currency="eur",
            payment_intent=intent["id"],
            amount_refunded=100,
        )
    refunds = [
        refund_object(amount=100, currency="eur", payment_intent=intent["id"], charge="ch_x")
        for intent in intents
    ] + [refund_object(amount=50, currency="eur", payment_intent=None, charge="ch_legacy")]

    def page(objects: list[dict[str, Any]], request: Recorded, url: str) -> dict[str, Any]:
        after = request.query.get("starting_after")
        start = next(i + 1 for i, item in enumerate(objects) if item["id"] == after) if after else 0
        size = int(request.query["limit"])
        return {
            "object": "list",
            "data": objects[start : start + size],
            "has_more": start + size < len(objects),
            "url": url,
        }

    def answer(request: Recorded) -> tuple[int, dict[str, Any]]:
        if request.path == "/v1/refunds":
            return 200, page(refunds, request, "/v1/refunds")
        return 200, page(intents, request, "/v1/payment_intents")

    recording = await recording_stripe(answer)
    async with adapter_for(recording) as adapter:
        payments = [payment async for payment in adapter.list_payments(since=since)]
        listed_refunds = [refund async for refund in adapter.list_refunds(since=since)]

    assert [payment.intent_id for payment in payments] == [intent["id"] for intent in intents]
    assert [payment.amount_refunded_minor for payment in payments] == [100, 100, 100]
    assert [refund.intent_id for refund in listed_refunds] == [intent["id"] for intent in intents]
    intent_pages = [request for request in recording.requests if request.path.endswith("intents")]
    assert [request.query for request in intent_pages] == [
        {
            "created[gte]": str(int(since.timestamp())),
            "limit": "2",
            "expand[0]": "data.latest_charge",
        },
        {
            "created[gte]": str(int(since.timestamp())),
            "limit": "2",
            "expand[0]": "data.latest_charge",
            "starting_after": intents[1]["id"],
        },
    ]
    refund_pages = [request for request in recording.requests if request.path == "/v1/refunds"]
    assert [request.query.get("starting_after") for request in refund_pages] == [
        None,
        refunds[1]["id"],
    ]
    assert all(
        request.query["created[gte]"] == str(int(since.timestamp())) for request in refund_pages
    )


@pytest.mark.parametrize(
    ("status", "body", "unavailable"),
    [
        (500, stripe_error("api_error", "Something went wrong on Stripe's end."), True),
        (503, stripe_error("api_error", "Service unavailable."), True),
        (429, stripe_error("invalid_request_error", "Too many requests.", "rate_limit"), True),
        (
            409,
            stripe_error(
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key.",
            ),
            True,
        ),
        (
            400,
            stripe_error(
                "invalid_request_error",
                "Amount must be at least €0.50 eur",
                "amount_too_small",
            ),
            False,
        ),
        (
            401,
            stripe_error("invalid_request_error", "Invalid API Key provided: sk_test_***"),
            False,
        ),
        (
            400,
            stripe_error(
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters.",
            ),
            False,
        ),
    ],
)
async def test_stripe_errors_are_either_unavailable_or_refused(
    recording_stripe: RecordingFactory, status: int, body: dict[str, Any], unavailable: bool
) -> None:
    recording = await recording_stripe(lambda request: (status, body))
    async with adapter_for(recording) as adapter:
        with pytest.raises(ProviderError) as raised:
            await new_intent(adapter)

    assert isinstance(raised.value, ProviderUnavailable) is unavailable
    assert body["error"]["message"] in str(raised.value)
    assert raised.value.http_status == status
    assert raised.value.code == body["error"].get("code")
    assert raised.value.request_id == "req_recorded"


async def test_nothing_listening_is_unavailable() -> None:
    closed_port = free_port()  # bound and released: nothing listens there
    async with StripeProvider(
        "sk_test_x",
        [WEBHOOK_SECRET],
        api_base=f"http://127.0.0.1:{closed_port}",
        max_network_retries=0,
    ) as adapter:
        with pytest.raises(ProviderUnavailable, match="communicating with Stripe"):
            await adapter.retrieve_intent("pi_any")


async def test_cancel_refused_by_stripe_for_a_succeeded_intent_returns_its_state(
    recording_stripe: RecordingFactory,
) -> None:
    """Real Stripe's refusal, which localstripe does not reproduce (it has no error code)."""
    intent = payment_intent_object(amount=4250, currency="eur", status="succeeded")

    def answer(request: Recorded) -> tuple[int, dict[str, Any]]:
        if request.method == "POST":
            return 400, stripe_error(
                "invalid_request_error",
                "You cannot cancel this PaymentIntent because it has a status of succeeded.",
                "payment_intent_unexpected_state",
            )
        return 200, intent

    recording = await recording_stripe(answer)
    async with adapter_for(recording) as adapter:
        state = await adapter.cancel_intent(intent["id"], idempotency_key="cancel-key")

    assert state.status == "succeeded"
    assert [request.method for request in recording.requests] == ["POST", "GET"]


async def test_cancel_refused_while_still_cancelable_is_an_error(
    recording_stripe: RecordingFactory,
) -> None:
    intent = payment_intent_object(amount=4250, currency="eur")

    def answer(request: Recorded) -> tuple[int, dict[str, Any]]:
        if request.method == "POST":
            return 400, stripe_error("invalid_request_error", "Invalid cancellation_reason")
        return 200, intent

    recording = await recording_stripe(answer)
    async with adapter_for(recording) as adapter:
        with pytest.raises(ProviderError, match="Invalid cancellation_reason"):
            await adapter.cancel_intent(intent["id"], idempotency_key="cancel-key")
