"""Normalizing Stripe-shaped events, built by stripe_shaped as Stripe sends them, and the
builders' shapes checked against stripe's own library."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from marquee_payments.providers.base import (
    InvalidWebhook,
    ProviderError,
    ProviderEvent,
    intent_from_stripe,
    payment_from_stripe,
    provider_event_from_stripe,
    refund_from_stripe,
)
from marquee_payments.providers.signature import sign_payload
from marquee_payments.providers.stripe_adapter import StripeProvider
from marquee_payments.providers.stripe_shaped import (
    STRIPE_API_VERSION,
    card_error_object,
    charge_object,
    dispute_object,
    event_object,
    new_card_fingerprint,
    payment_intent_object,
    payment_method_object,
    refund_object,
    webhook_body,
)

ORDER_ID = uuid.UUID("7b0c6c8e-4a57-4f53-9d7e-0a8e3c1f2b64")
CREATED = datetime(2026, 5, 4, 19, 30, tzinfo=UTC)
SECRET = "whsec_unit"


def normalized(event_type: str, data_object: dict[str, Any], **extra: Any) -> ProviderEvent:
    """Through JSON, as the event arrives over the wire."""
    event = event_object(event_type, data_object, created=CREATED, **extra)
    return provider_event_from_stripe(json.loads(webhook_body(event)))


def test_payment_intent_succeeded() -> None:
    intent = payment_intent_object(
        amount=4250,
        currency="eur",
        status="succeeded",
        latest_charge="ch_3PaidChargeXXXXXXXXXXXXX",
        payment_method="pm_1CardXXXXXXXXXXXXXXXXXXX",
        metadata={"order_id": str(ORDER_ID), "event_id": "42"},
    )

    event = normalized("payment_intent.succeeded", intent, event_id="evt_1Succeeded")

    assert event == ProviderEvent(
        event_id="evt_1Succeeded",
        type="payment_intent.succeeded",
        created=CREATED,
        intent_id=intent["id"],
        order_id=ORDER_ID,
        amount_minor=4250,
        currency="EUR",
        charge_id="ch_3PaidChargeXXXXXXXXXXXXX",
        amount_refunded_minor=None,
        refund_ids=(),
        dispute_id=None,
        # A PaymentIntent names its charge by id only: no outcome, no card.
        risk_level=None,
        risk_score=None,
        failure_message=None,
        payment_method_fingerprint=None,
        status="succeeded",
        reason=None,
    )


def test_payment_intent_payment_failed_carries_the_decline_and_the_card() -> None:
    card = payment_method_object(fingerprint="Xt5EWLLDS7FJjR1c")
    intent = payment_intent_object(
        amount=4250,
        currency="eur",
        status="requires_payment_method",
        latest_charge="ch_3Declined",
        last_payment_error=card_error_object(
            payment_method=card, charge="ch_3Declined", message="Your card has insufficient funds."
        ),
        metadata={"order_id": str(ORDER_ID)},
    )

    event = normalized("payment_intent.payment_failed", intent)

    assert event.failure_message == "Your card has insufficient funds."
    assert event.payment_method_fingerprint == "Xt5EWLLDS7FJjR1c"
    assert (event.intent_id, event.order_id, event.charge_id) == (
        intent["id"],
        ORDER_ID,
        "ch_3Declined",
    )
    assert event.status == "requires_payment_method"


def test_payment_intent_canceled_carries_the_reason() -> None:
    intent = payment_intent_object(
        amount=1200,
        currency="gbp",
        status="canceled",
        cancellation_reason="abandoned",
        metadata={"order_id": str(ORDER_ID)},
    )

    event = normalized("payment_intent.canceled", intent)

    assert (event.status, event.reason) == ("canceled", "abandoned")
    assert (event.amount_minor, event.currency, event.order_id) == (1200, "GBP", ORDER_ID)
    assert event.charge_id is None


def test_payment_intent_processing() -> None:
    intent = payment_intent_object(amount=999, currency="usd", status="processing")

    event = normalized("payment_intent.processing", intent)

    assert (event.type, event.status, event.intent_id) == (
        "payment_intent.processing",
        "processing",
        intent["id"],
    )
    assert event.order_id is None  # no order_id in the metadata: not one of ours


def test_charge_succeeded_carries_radar_and_the_fingerprint() -> None:
    fingerprint = new_card_fingerprint()
    charge = charge_object(
        amount=4250,
        currency="eur",
        payment_intent="pi_3Paid",
        risk_level="elevated",
        risk_score=67,
        fingerprint=fingerprint,
        metadata={"order_id": str(ORDER_ID)},
    )

    event = normalized("charge.succeeded", charge)

    assert (event.risk_level, event.risk_score) == ("elevated", 67)
    assert event.payment_method_fingerprint == fingerprint
    assert (event.intent_id, event.charge_id, event.order_id) == (
        "pi_3Paid",
        charge["id"],
        ORDER_ID,
    )
    assert event.amount_refunded_minor == 0


def test_a_charge_blocked_by_radar() -> None:
    charge = charge_object(
        amount=4250,
        currency="eur",
        payment_intent="pi_3Blocked",
        status="failed",
        risk_level="highest",
        risk_score=94,
        failure_code="card_declined",
        failure_message="Your card was declined.",
    )

    event = normalized("charge.failed", charge)

    assert (event.status, event.reason, event.risk_level) == (
        "failed",
        "highest_risk_level",
        "highest",
    )
    assert event.failure_message == "Your card was declined."


def test_charge_refunded_without_and_with_the_refunds_list() -> None:
    """Since API version 2022-11-15 a charge in a webhook has no refunds list; an expanded
    charge does."""
    refunds = [
        refund_object(amount=1000, currency="eur", payment_intent="pi_3R", charge="ch_3R"),
        refund_object(amount=500, currency="eur", payment_intent="pi_3R", charge="ch_3R"),
    ]
    webhook_charge = charge_object(
        amount=4250, currency="eur", payment_intent="pi_3R", charge_id="ch_3R", amount_refunded=1500
    )
    expanded_charge = charge_object(
        amount=4250,
        currency="eur",
        payment_intent="pi_3R",
        charge_id="ch_3R",
        amount_refunded=1500,
        refunds=refunds,
    )

    from_webhook = normalized(
        "charge.refunded", webhook_charge, previous_attributes={"amount_refunded": 1000}
    )
    from_expanded = normalized("charge.refunded", expanded_charge)

    assert "refunds" not in webhook_charge
    assert (from_webhook.amount_refunded_minor, from_webhook.refund_ids) == (1500, ())
    assert from_expanded.refund_ids == (refunds[0]["id"], refunds[1]["id"])
    assert (from_webhook.intent_id, from_webhook.charge_id, from_webhook.amount_minor) == (
        "pi_3R",
        "ch_3R",
        4250,
    )


def test_refund_created_names_the_refund() -> None:
    refund = refund_object(
        amount=1000,
        currency="eur",
        payment_intent="pi_3R",
        charge="ch_3R",
        reason="requested_by_customer",
    )

    event = normalized("refund.created", refund)

    assert event.refund_ids == (refund["id"],)
    assert (event.intent_id, event.charge_id, event.amount_minor, event.currency) == (
        "pi_3R",
        "ch_3R",
        1000,
        "EUR",
    )
    assert (event.status, event.reason) == ("succeeded", "requested_by_customer")


def test_a_failed_refund_says_why() -> None:
    refund = refund_object(
        amount=1000,
        currency="eur",
        payment_intent="pi_3R",
        charge="ch_3R",
        status="failed",
        failure_reason="expired_or_canceled_card",
    )

    event = normalized("refund.failed", refund)

    assert (event.status, event.failure_message) == ("failed", "expired_or_canceled_card")


def test_charge_dispute_created() -> None:
    dispute = dispute_object(
        amount=4250, currency="eur", charge="ch_3Disputed", payment_intent="pi_3Disputed"
    )

    event = normalized("charge.dispute.created", dispute)

    assert event.dispute_id == dispute["id"]
    assert event.dispute_id is not None
    assert event.dispute_id.startswith("dp_")
    assert (event.charge_id, event.intent_id, event.amount_minor) == (
        "ch_3Disputed",
        "pi_3Disputed",
        4250,
    )
    assert (event.reason, event.status) == ("fraudulent", "needs_response")
    assert event.order_id is None  # a dispute's metadata is its own, not the intent's


def test_any_other_event_type_leaves_every_field_none() -> None:
    customer = {"id": "cus_1", "object": "customer", "email": "fan@example.com"}

    event = normalized("customer.created", customer, event_id="evt_1Other")

    assert event == ProviderEvent(
        event_id="evt_1Other",
        type="customer.created",
        created=CREATED,
        intent_id=None,
        order_id=None,
        amount_minor=None,
        currency=None,
        charge_id=None,
        amount_refunded_minor=None,
        refund_ids=(),
        dispute_id=None,
        risk_level=None,
        risk_score=None,
        failure_message=None,
        payment_method_fingerprint=None,
    )


def test_localstripe_embeds_the_charge_in_the_intent_and_its_outcome_is_read() -> None:
    charge = charge_object(
        amount=4250, currency="eur", payment_intent=None, risk_level="normal", risk_score=12
    )
    intent = payment_intent_object(amount=4250, currency="eur", status="succeeded")
    intent["latest_charge"] = charge

    event = normalized("payment_intent.succeeded", intent)

    assert event.charge_id == charge["id"]
    assert (event.risk_level, event.risk_score) == ("normal", 12)
    assert (
        event.payment_method_fingerprint == charge["payment_method_details"]["card"]["fingerprint"]
    )


@pytest.mark.parametrize("order_id", ["not-a-uuid", "", "42"])
def test_an_order_id_that_is_not_a_uuid_is_none(order_id: str) -> None:
    intent = payment_intent_object(amount=100, currency="eur", metadata={"order_id": order_id})

    assert normalized("payment_intent.created", intent).order_id is None


@pytest.mark.parametrize(
    "envelope",
    [
        {},
        {"id": "evt_1", "type": "payment_intent.succeeded"},
        {"id": 1, "type": "x", "created": 1},
        {"id": "evt_1", "type": "x", "created": "yesterday"},
        {"id": "evt_1", "type": "x", "created": True},
        {"id": "evt_1", "type": "x", "created": 10**20},
        {"id": "evt_1", "type": "v1.x", "created": 1, "object": "v2.core.event"},
    ],
)
def test_an_envelope_that_is_not_an_event_is_invalid(envelope: dict[str, Any]) -> None:
    with pytest.raises(InvalidWebhook):
        provider_event_from_stripe(envelope)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
stripe_keys = st.sampled_from(
    [
        "id",
        "object",
        "amount",
        "currency",
        "metadata",
        "latest_charge",
        "last_payment_error",
        "payment_method",
        "outcome",
        "refunds",
        "payment_method_details",
        "payment_intent",
        "charge",
        "status",
    ]
)
objects = st.dictionaries(stripe_keys | st.text(max_size=8), json_values, max_size=10).map(
    lambda fields: (
        fields
        | {"object": fields.get("object") if isinstance(fields.get("object"), str) else "charge"}
    )
)


@given(
    kind=st.sampled_from(["payment_intent", "charge", "refund", "dispute", "customer"]),
    fields=objects,
)
def test_a_signed_event_with_odd_fields_never_crashes_the_endpoint(
    kind: str, fields: dict[str, Any]
) -> None:
    """Stripe is trusted, but a field we did not expect must not turn into a 500 and an
    endless stream of retries: unreadable fields become None."""
    event = {
        "id": "evt_1",
        "object": "event",
        "type": f"{kind}.updated",
        "created": 1_767_225_600,
        "data": {"object": fields | {"object": kind}},
    }

    normalized_event = provider_event_from_stripe(event)

    assert normalized_event.event_id == "evt_1"
    for value in (normalized_event.intent_id, normalized_event.currency, normalized_event.status):
        assert value is None or isinstance(value, str)


# ---- the builders' shapes -------------------------------------------------------------------


def test_ids_and_secrets_look_like_stripes() -> None:
    intent = payment_intent_object(amount=100, currency="EUR")
    charge = charge_object(amount=100, currency="eur", payment_intent=intent["id"])
    refund = refund_object(amount=100, currency="eur", payment_intent=intent["id"], charge="ch_1")
    dispute = dispute_object(amount=100, currency="eur", charge=charge["id"], payment_intent=None)
    event = event_object("payment_intent.created", intent)

    assert [len(identifier) for identifier in (intent["id"], charge["id"], refund["id"])] == [
        27,
        27,
        27,
    ]
    assert intent["client_secret"].startswith(f"{intent['id']}_secret_")
    assert intent["currency"] == "eur"  # Stripe's currencies are lower case
    assert dispute["id"].startswith("dp_")
    assert event["id"].startswith("evt_")
    assert event["api_version"] == STRIPE_API_VERSION == stripe.api_version
    assert event["request"] == {"id": None, "idempotency_key": None}
    assert (event["livemode"], event["pending_webhooks"]) == (False, 1)
    assert charge["outcome"]["type"] == "authorized"
    assert len(charge["payment_method_details"]["card"]["fingerprint"]) == 16


def test_builders_have_every_field_stripes_library_knows() -> None:
    """stripe 16's classes list each object's fields; the builders leave none out but those
    Stripe sends only in some cases (Connect, newer payment flows, expansion, failures)."""
    built: dict[type[stripe.StripeObject], dict[str, Any]] = {
        stripe.PaymentIntent: payment_intent_object(amount=100, currency="eur"),
        stripe.Charge: charge_object(amount=100, currency="eur", payment_intent="pi_1"),
        stripe.Refund: refund_object(
            amount=100, currency="eur", payment_intent="pi_1", charge="ch_1"
        ),
        stripe.Dispute: dispute_object(
            amount=100, currency="eur", charge="ch_1", payment_intent=None
        ),
        stripe.Event: event_object("charge.succeeded", {"id": "ch_1", "object": "charge"}),
    }
    sometimes: dict[type[stripe.StripeObject], set[str]] = {
        stripe.PaymentIntent: {
            "allowed_payment_method_types", "customer_account", "excluded_payment_method_types",
            "hooks", "managed_payments", "payment_details", "payment_record",
            "presentment_details",
        },
        stripe.Charge: {
            "authorization_code", "level3", "presentment_details", "refunds", "transfer",
        },
        stripe.Refund: {
            "customer", "customer_account", "description", "failure_balance_transaction",
            "failure_reason", "instructions_email", "next_action", "payment_method",
            "pending_reason", "presentment_details",
        },
        stripe.Dispute: {"intended_submission_method"},
        stripe.Event: {"account", "context"},
    }  # fmt: skip
    for stripe_class, shape in built.items():
        known = {name for name in stripe_class.__annotations__ if name.islower()}
        missing = known - shape.keys() - sometimes[stripe_class]
        assert not missing, f"{stripe_class.__name__} lacks {sorted(missing)}"
        assert not shape.keys() - known, f"{stripe_class.__name__} has fields Stripe lacks"
        assert stripe_class.construct_from(shape, "sk_test")["id"] == shape["id"]


def test_a_built_event_passes_stripes_construct_event() -> None:
    intent = payment_intent_object(amount=4250, currency="eur", status="succeeded")
    body = webhook_body(event_object("payment_intent.succeeded", intent))
    header = sign_payload(body, SECRET, timestamp=int(datetime.now(UTC).timestamp()))

    event = stripe.Webhook.construct_event(body, header, SECRET)

    assert event.type == "payment_intent.succeeded"
    assert event.data.object["id"] == intent["id"]


# ---- the readers the adapter uses -----------------------------------------------------------


def test_intent_from_stripe() -> None:
    intent = payment_intent_object(
        amount=4250, currency="eur", metadata={"order_id": str(ORDER_ID)}
    )

    read = intent_from_stripe(intent)

    assert (read.id, read.amount_minor, read.currency, read.status, read.order_id) == (
        intent["id"],
        4250,
        "EUR",
        "requires_payment_method",
        ORDER_ID,
    )
    assert read.client_secret == intent["client_secret"]


def test_an_intent_without_an_amount_is_not_trusted() -> None:
    intent = payment_intent_object(amount=4250, currency="eur")
    del intent["amount"]

    with pytest.raises(ProviderError, match="no integer amount"):
        intent_from_stripe(intent)


def test_a_payment_needs_its_charge_expanded_to_tell_what_was_refunded() -> None:
    intent = payment_intent_object(
        amount=4250, currency="eur", status="succeeded", created=CREATED, latest_charge="ch_1"
    )

    with pytest.raises(ProviderError, match="expand"):
        payment_from_stripe(intent)

    intent["latest_charge"] = charge_object(
        amount=4250, currency="eur", payment_intent=intent["id"], amount_refunded=700
    )
    payment = payment_from_stripe(intent)
    assert (payment.amount_refunded_minor, payment.created) == (700, CREATED)
    assert (
        payment_from_stripe(payment_intent_object(amount=5, currency="eur")).amount_refunded_minor
        == 0
    )


def test_refund_from_stripe_needs_an_intent() -> None:
    refund = refund_object(amount=100, currency="eur", payment_intent="pi_1", charge="ch_1")

    assert refund_from_stripe(refund).intent_id == "pi_1"
    with pytest.raises(ProviderError, match="not one of ours"):
        refund_from_stripe(refund | {"payment_intent": None})


# ---- the adapter's webhook path, without a network --------------------------------------------


@pytest.fixture
async def provider() -> AsyncIterator[StripeProvider]:
    async with StripeProvider(
        "sk_test_unit", ["whsec_new", SECRET], api_base="http://127.0.0.1:9"
    ) as adapter:
        yield adapter


def test_parse_webhook_verifies_then_normalizes(provider: StripeProvider) -> None:
    dispute = dispute_object(amount=100, currency="eur", charge="ch_1", payment_intent="pi_1")
    body = webhook_body(event_object("charge.dispute.created", dispute))
    now = int(datetime.now(UTC).timestamp())

    event = provider.parse_webhook(body, sign_payload(body, SECRET, timestamp=now))

    assert (event.type, event.dispute_id) == ("charge.dispute.created", dispute["id"])
    with pytest.raises(InvalidWebhook, match="not JSON"):
        provider.parse_webhook(b"\xff\xfe{", sign_payload(b"\xff\xfe{", SECRET, timestamp=now))
    with pytest.raises(InvalidWebhook, match="not an object"):
        provider.parse_webhook(b"[1, 2]", sign_payload(b"[1, 2]", SECRET, timestamp=now))
    with pytest.raises(InvalidWebhook, match="signature"):
        provider.parse_webhook(body, sign_payload(body, "whsec_old", timestamp=now))


def test_a_provider_without_webhook_secrets_is_refused() -> None:
    with pytest.raises(ValueError, match="signing secret"):
        StripeProvider("sk_test_unit", [])
