"""Dicts in the shapes of Stripe's API objects and webhook events.

Two users: the simulated provider of ``make dev``, which must emit exactly what Stripe
would, and tests that post events localstripe never sends (``payment_intent.canceled``,
``charge.refunded``, ``refund.created``, ``charge.dispute.created``). The shapes follow
the API reference (https://docs.stripe.com/api) at the API version the stripe SDK pins,
with the same ids (``pi_…``, ``ch_…``, ``re_…``, ``dp_…``, ``evt_…``), lower-case
currencies and Unix-second timestamps. Two details people get wrong:

- expandable fields (``latest_charge``, ``payment_intent``, ``charge``) are ids, because
  webhooks are never expanded;
- a charge has no ``refunds`` list unless it was asked for with ``expand`` (true since API
  version 2022-11-15): :func:`charge_object` adds it only when given ``refunds``.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import stripe

STRIPE_API_VERSION: str = stripe.api_version
"""The version our StripeClient requests, and so the version our webhook endpoint is
configured with."""

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 24
"""Stripe's ids have 24 characters after the prefix (``pi_3MtwBwLkdIwHu7ix28a3tqPa``)."""

Object = dict[str, Any]


def new_object_id(prefix: str) -> str:
    """A random id in Stripe's form, e.g. ``new_object_id("pi")`` → ``pi_3Mtw…``."""
    return f"{prefix}_{_random_text(_ID_LENGTH)}"


def new_card_fingerprint() -> str:
    """A random card fingerprint in Stripe's form (16 letters and digits)."""
    return _random_text(16)


def payment_intent_object(
    *,
    amount: int,
    currency: str,
    intent_id: str | None = None,
    status: str = "requires_payment_method",
    created: int | datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    description: str | None = None,
    client_secret: str | None = None,
    latest_charge: str | None = None,
    payment_method: str | None = None,
    last_payment_error: Mapping[str, Any] | None = None,
    cancellation_reason: str | None = None,
    canceled_at: int | datetime | None = None,
    amount_received: int | None = None,
) -> Object:
    """A PaymentIntent (https://docs.stripe.com/api/payment_intents/object).

    ``amount_received`` defaults to the amount once succeeded, else 0;
    ``cancellation_reason`` is one of Stripe's (``abandoned``, ``duplicate``,
    ``requested_by_customer``, ``fraudulent``, ``automatic``…).
    """
    identifier = intent_id or new_object_id("pi")
    created_at = _unix(created)
    if amount_received is None:
        amount_received = amount if status == "succeeded" else 0
    if status == "canceled" and canceled_at is None:
        canceled_at = created_at
    return {
        "id": identifier,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount_received,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
        "canceled_at": _unix(canceled_at) if canceled_at is not None else None,
        "cancellation_reason": cancellation_reason,
        "capture_method": "automatic_async",
        "client_secret": client_secret or f"{identifier}_secret_{_random_text(25)}",
        "confirmation_method": "automatic",
        "created": created_at,
        "currency": currency.lower(),
        "customer": None,
        "description": description,
        "last_payment_error": dict(last_payment_error) if last_payment_error else None,
        "latest_charge": latest_charge,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_action": _next_action() if status == "requires_action" else None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def payment_method_object(
    *,
    payment_method_id: str | None = None,
    fingerprint: str | None = None,
    brand: str = "visa",
    last4: str = "4242",
    exp_month: int = 12,
    exp_year: int = 2034,
    country: str = "US",
    funding: str = "credit",
    created: int | datetime | None = None,
) -> Object:
    """A card PaymentMethod (https://docs.stripe.com/api/payment_methods/object), as Stripe
    embeds it in a failed intent's ``last_payment_error``."""
    return {
        "id": payment_method_id or new_object_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": _billing_details(),
        "card": {
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": country,
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": fingerprint or new_card_fingerprint(),
            "funding": funding,
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": _unix(created),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def card_error_object(
    *,
    payment_method: Mapping[str, Any],
    charge: str | None = None,
    code: str = "card_declined",
    decline_code: str | None = "generic_decline",
    message: str = "Your card was declined.",
) -> Object:
    """A PaymentIntent's ``last_payment_error`` after a decline (an API error object of
    type ``card_error``, with the payment method embedded in full)."""
    return {
        "advice_code": None,
        "charge": charge,
        "code": code,
        "decline_code": decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "message": message,
        "network_advice_code": None,
        "network_decline_code": None,
        "payment_method": dict(payment_method),
        "type": "card_error",
    }


def charge_object(
    *,
    amount: int,
    currency: str,
    payment_intent: str | None,
    charge_id: str | None = None,
    status: str = "succeeded",
    created: int | datetime | None = None,
    amount_refunded: int = 0,
    refunds: Sequence[Mapping[str, Any]] | None = None,
    metadata: Mapping[str, str] | None = None,
    risk_level: str = "normal",
    risk_score: int | None = 32,
    fingerprint: str | None = None,
    brand: str = "visa",
    last4: str = "4242",
    payment_method: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
    disputed: bool = False,
    description: str | None = None,
) -> Object:
    """A card Charge (https://docs.stripe.com/api/charges/object) with Radar's ``outcome``
    and the card's ``payment_method_details`` (where the fingerprint is).

    ``status`` is ``succeeded``, ``pending`` or ``failed``; a failed charge whose
    ``risk_level`` is ``highest`` was blocked by Radar, any other failure was declined by
    the issuer. ``refunds`` (Refund objects) adds the list an ``expand=["refunds"]``
    request returns; without it the charge has no ``refunds`` field, as in webhooks.
    """
    identifier = charge_id or new_object_id("ch")
    created_at = _unix(created)
    succeeded = status == "succeeded"
    charge: Object = {
        "id": identifier,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": amount_refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_object_id("txn") if succeeded else None,
        "billing_details": _billing_details(),
        "calculated_statement_descriptor": "MARQUEE",
        "captured": succeeded,
        "created": created_at,
        "currency": currency.lower(),
        "customer": None,
        "description": description,
        "disputed": disputed,
        "failure_balance_transaction": None,
        "failure_code": failure_code if not succeeded else None,
        "failure_message": failure_message if not succeeded else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(metadata or {}),
        "on_behalf_of": None,
        "outcome": _outcome(status, risk_level, risk_score),
        "paid": succeeded,
        "payment_intent": payment_intent,
        "payment_method": payment_method or new_object_id("pm"),
        "payment_method_details": {
            "card": {
                "amount_authorized": amount if status != "failed" else None,
                "authorization_code": None,
                "brand": brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "extended_authorization": {"status": "disabled"},
                "fingerprint": fingerprint or new_card_fingerprint(),
                "funding": "credit",
                "incremental_authorization": {"status": "unavailable"},
                "installments": None,
                "last4": last4,
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": brand,
                "network_token": {"used": False},
                "network_transaction_id": _random_text(15),
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "regulated_status": "unregulated",
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "radar_options": {},
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{_random_text(60)}",
        "refunded": amount_refunded >= amount > 0,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }
    if refunds is not None:
        charge["refunds"] = {
            "object": "list",
            "data": [dict(refund) for refund in refunds],
            "has_more": False,
            "total_count": len(refunds),
            "url": f"/v1/charges/{identifier}/refunds",
        }
    return charge


def refund_object(
    *,
    amount: int,
    currency: str,
    payment_intent: str | None,
    charge: str | None,
    refund_id: str | None = None,
    status: str = "succeeded",
    created: int | datetime | None = None,
    reason: str | None = None,
    metadata: Mapping[str, str] | None = None,
    failure_reason: str | None = None,
) -> Object:
    """A card Refund (https://docs.stripe.com/api/refunds/object); ``reason`` is one of
    ``duplicate``, ``fraudulent``, ``requested_by_customer`` or None."""
    refund: Object = {
        "id": refund_id or new_object_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_object_id("txn"),
        "charge": charge,
        "created": _unix(created),
        "currency": currency.lower(),
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": dict(metadata or {}),
        "payment_intent": payment_intent,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }
    if status == "failed":
        refund["failure_balance_transaction"] = new_object_id("txn")
        refund["failure_reason"] = failure_reason or "unknown"
    return refund


def dispute_object(
    *,
    amount: int,
    currency: str,
    charge: str,
    payment_intent: str | None,
    dispute_id: str | None = None,
    reason: str = "fraudulent",
    status: str = "needs_response",
    created: int | datetime | None = None,
    evidence_due_by: int | datetime | None = None,
) -> Object:
    """A card Dispute (https://docs.stripe.com/api/disputes/object). ``reason`` is Stripe's
    (``fraudulent``, ``product_not_received``, ``duplicate``, ``general``…), ``status``
    ``warning_needs_response`` for an inquiry, ``needs_response`` for a chargeback."""
    created_at = _unix(created)
    due_by = _unix(evidence_due_by) if evidence_due_by is not None else created_at + 21 * 86400
    return {
        "id": dispute_id or new_object_id("dp"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "created": created_at,
        "currency": currency.lower(),
        "enhanced_eligibility_types": [],
        "evidence": {field: None for field in _DISPUTE_EVIDENCE_FIELDS} | {"enhanced_evidence": {}},
        "evidence_details": {
            "due_by": due_by,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": "10.4" if reason == "fraudulent" else "13.1",
        "payment_intent": payment_intent,
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "case_type": "inquiry" if status.startswith("warning") else "chargeback",
                "network_reason_code": "10.4" if reason == "fraudulent" else "13.1",
            },
            "type": "card",
        },
        "reason": reason,
        "status": status,
    }


def event_object(
    type: str,
    data_object: Mapping[str, Any],
    *,
    event_id: str | None = None,
    created: int | datetime | None = None,
    previous_attributes: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    api_version: str = STRIPE_API_VERSION,
) -> Object:
    """A snapshot Event (https://docs.stripe.com/api/events/object) carrying
    ``data_object``. ``previous_attributes`` is what an ``*.updated``-style event changed
    (``charge.refunded`` has ``{"amount_refunded": …, "refunded": …}``). ``request_id``
    and ``idempotency_key`` name the API request that caused it (None for automatic ones).
    """
    data: Object = {"object": dict(data_object)}
    if previous_attributes is not None:
        data["previous_attributes"] = dict(previous_attributes)
    return {
        "id": event_id or new_object_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": _unix(created),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }


def webhook_body(event: Mapping[str, Any]) -> bytes:
    """The bytes Stripe posts for ``event``: JSON indented by two spaces. Sign these very
    bytes (:func:`marquee_payments.providers.signature.sign_payload`)."""
    return json.dumps(event, indent=2).encode("utf-8")


def _outcome(status: str, risk_level: str, risk_score: int | None) -> Object:
    if status == "failed" and risk_level == "highest":
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "not_sent_to_network",
            "reason": "highest_risk_level",
            "risk_level": risk_level,
            "risk_score": risk_score,
            "seller_message": "Stripe blocked this payment as too risky.",
            "type": "blocked",
        }
    if status == "failed":
        return {
            "advice_code": "try_again_later",
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "declined_by_network",
            "reason": "generic_decline",
            "risk_level": risk_level,
            "risk_score": risk_score,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": risk_level,
        "risk_score": risk_score,
        "seller_message": "Payment complete.",
        "type": "authorized",
    }


def _next_action() -> Object:
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "source": new_object_id("src"),
            "stripe_js": f"https://hooks.stripe.com/redirect/authenticate/{new_object_id('src')}",
            "type": "three_d_secure_redirect",
        },
    }


def _billing_details() -> Object:
    return {
        "address": {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "email": None,
        "name": None,
        "phone": None,
        "tax_id": None,
    }


_DISPUTE_EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _unix(moment: int | datetime | None) -> int:
    if moment is None:
        return int(time.time())
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("a naive datetime is ambiguous; pass an aware one (UTC)")
        return int(moment.timestamp())
    return moment
