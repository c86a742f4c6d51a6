"""What the payments service needs from a payment provider, and how Stripe's shapes read.

Everything outside this package talks to a :class:`PaymentProvider` and gets our own
frozen values back (:class:`ProviderIntent`, :class:`ProviderRefund`,
:class:`ProviderPayment`, :class:`ProviderEvent`): amounts in integer minor units,
currencies in ISO 4217 upper case, times as aware UTC datetimes, and Stripe's status words
verbatim (they are already the vocabulary of the payment flow).

The readers at the bottom turn Stripe-shaped dicts into those values. They live here, not
in the Stripe adapter, because both providers we run speak Stripe's shapes: the adapter
reads the real API's responses and webhooks, and the simulated provider used by ``make
dev`` emits exactly what Stripe would (see :mod:`marquee_payments.providers.stripe_shaped`).
One reader for both means the simulated provider cannot drift from what the real one
returns. They never need the stripe SDK.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

# ---- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderIntent:
    """A PaymentIntent: the provider's record of one attempt to collect one order's money."""

    id: str
    client_secret: str | None
    """Handed to the browser so Stripe Elements can confirm the payment; never logged."""
    amount_minor: int
    currency: str
    """ISO 4217, upper case (Stripe writes it in lower case)."""
    status: str
    """Stripe's PaymentIntent status, verbatim: ``requires_payment_method``,
    ``requires_confirmation``, ``requires_action``, ``processing``, ``succeeded``,
    ``canceled`` (and ``requires_capture``, which our automatic capture never reaches)."""
    order_id: uuid.UUID | None
    """From ``metadata.order_id``; None when absent or not a UUID (an intent not made by us)."""


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    id: str
    intent_id: str
    amount_minor: int
    currency: str
    status: str
    """Stripe's refund status: ``pending``, ``requires_action``, ``succeeded``, ``failed``,
    ``canceled``."""
    charge_id: str | None = None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """One PaymentIntent as a reconciliation listing sees it."""

    intent_id: str
    order_id: uuid.UUID | None
    amount_minor: int
    currency: str
    status: str
    amount_refunded_minor: int
    """What has been refunded of the intent's (latest, successful) charge so far."""
    created: datetime


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified webhook event, normalized. Fields the event does not carry are None.

    Stripe puts a different object in each event (a PaymentIntent, a Charge, a Refund, a
    Dispute); this flattens what the payments service acts on. ``event_id`` is what makes
    processing idempotent: Stripe delivers an event at least once and in any order.
    """

    event_id: str
    type: str
    created: datetime
    intent_id: str | None
    order_id: uuid.UUID | None
    amount_minor: int | None
    currency: str | None
    charge_id: str | None
    amount_refunded_minor: int | None
    """Charge events: the charge's cumulative refunded amount (not this refund's)."""
    refund_ids: tuple[str, ...]
    """Charge events list the charge's refunds only when Stripe includes them (since API
    version 2022-11-15 it does not by default: ``refund.*`` events name the refund)."""
    dispute_id: str | None
    risk_level: str | None
    """Radar's ``outcome.risk_level`` (``normal``, ``elevated``, ``highest``,
    ``not_assessed``, ``unknown``), on events that carry the charge."""
    risk_score: int | None
    """Radar's ``outcome.risk_score`` (0-100), only with Radar for Fraud Teams."""
    failure_message: str | None
    """Why a payment or refund failed, in words a customer can be shown."""
    payment_method_fingerprint: str | None
    """The card's fingerprint (the same card gives the same one across customers): the key
    for velocity checks. Stripe gives it on charges and on a failed intent's
    ``last_payment_error.payment_method``, not on a succeeded PaymentIntent."""
    status: str | None = None
    """The status of the event's object (intent, charge, refund or dispute)."""
    reason: str | None = None
    """Stripe's reason code: an intent's ``cancellation_reason``, a refund's or dispute's
    ``reason`` (``fraudulent``…), a charge outcome's ``reason`` (``highest_risk_level``…)."""


# ---- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChargeRisk:
    risk_level: str | None
    risk_score: int | None
    card_fingerprint: str | None


class ProviderError(Exception):
    """The provider refused the request for good (an invalid amount, an unknown intent, a
    declined card): retrying the same request gives the same answer."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        """The provider's error code when it gives one (Stripe: ``amount_too_small``…)."""
        self.http_status = http_status
        self.request_id = request_id
        """Stripe's ``req_…`` id: what Stripe support asks for."""


class ProviderUnavailable(ProviderError):
    """The provider could not answer (network, timeout, 5xx, rate limit, a concurrent
    request with the same idempotency key): retry later with the same idempotency key."""


class InvalidWebhook(Exception):
    """A webhook we refuse: no or bad signature, a timestamp outside the tolerance (a
    replay), or a body that is not a Stripe event. Answer 400 and do not process it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---- the provider ----------------------------------------------------------------------------


class PaymentProvider(Protocol):
    """A payment provider: Stripe in production, a simulated Stripe in ``make dev``.

    Every call that creates or changes something takes an idempotency key, so a retry
    after a timeout never creates a second intent or refund.
    """

    name: str

    async def create_intent(
        self,
        *,
        order_id: uuid.UUID,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderIntent: ...

    async def retrieve_intent(self, intent_id: str) -> ProviderIntent: ...

    async def charge_risk(self, charge_id: str) -> ChargeRisk:
        """The provider's risk evaluation and card fingerprint of one charge (a success
        event names its charge by id only: the fraud checks ask for the rest)."""
        ...

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> ProviderIntent:
        """Cancel, or return the intent's current state when it can no longer be canceled
        (already canceled, succeeded, processing): the caller reads ``status``."""
        ...

    async def refund(
        self, *, intent_id: str, amount_minor: int, idempotency_key: str, reason: str | None
    ) -> ProviderRefund: ...

    def list_payments(self, *, since: datetime) -> AsyncIterator[ProviderPayment]:
        """Every intent created at or after ``since``, all pages."""
        ...

    def list_refunds(self, *, since: datetime) -> AsyncIterator[ProviderRefund]:
        """Every refund created at or after ``since``, all pages."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> ProviderEvent:
        """Verify the signature over the raw body first, then normalize; raises
        :class:`InvalidWebhook`."""
        ...


# ---- reading Stripe's shapes -----------------------------------------------------------------


def provider_event_from_stripe(event: Mapping[str, Any]) -> ProviderEvent:
    """Normalize a Stripe-shaped event (``{"object": "event", "type", "data": {"object"}}``).

    The event's object decides what is read: a PaymentIntent (``payment_intent.*``), a
    Charge (``charge.succeeded``, ``charge.refunded``…), a Refund (``refund.*``,
    ``charge.refund.updated``) or a Dispute (``charge.dispute.*``). Any other object leaves
    every field None, so a new event type Stripe starts sending is stored, not a crash.
    Raises :class:`InvalidWebhook` only when the envelope itself is not an event.
    """
    event_id = _text(event, "id")
    event_type = _text(event, "type")
    created = _integer(event, "created")
    if event_id is None or event_type is None or created is None:
        raise InvalidWebhook(
            "the body is not a Stripe event: it needs a string id, a string type and an "
            "integer created"
        )
    kind = _text(event, "object")
    if kind is not None and kind != "event":
        raise InvalidWebhook(
            f"the body is a {kind!r}, not a Stripe snapshot event (object 'event'); thin "
            "events (v2) are not accepted by this endpoint"
        )
    try:
        created_at = _time(created)
    except ValueError as error:
        raise InvalidWebhook(f"the event's created ({created}) is not a time: {error}") from error
    blank = ProviderEvent(
        event_id=event_id,
        type=event_type,
        created=created_at,
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
    data = _mapping(event, "data")
    subject = _mapping(data, "object") if data is not None else None
    if subject is None:
        return blank
    reader = _EVENT_READERS.get(_text(subject, "object") or "")
    return reader(blank, subject) if reader is not None else blank


def intent_from_stripe(intent: Mapping[str, Any]) -> ProviderIntent:
    """A PaymentIntent from Stripe's JSON; raises :class:`ProviderError` when a field the
    payment flow depends on is missing (an answer we cannot trust)."""
    return ProviderIntent(
        id=_required_text(intent, "id", "PaymentIntent"),
        client_secret=_text(intent, "client_secret"),
        amount_minor=_required_integer(intent, "amount", "PaymentIntent"),
        currency=_required_text(intent, "currency", "PaymentIntent").upper(),
        status=_required_text(intent, "status", "PaymentIntent"),
        order_id=_order_id(intent),
    )


def payment_from_stripe(intent: Mapping[str, Any]) -> ProviderPayment:
    """A reconciliation row from a PaymentIntent listed with ``expand=data.latest_charge``.

    The refunded amount lives on the charge, so the charge must be expanded: an intent that
    names its charge only by id is refused rather than reported as "nothing refunded".
    """
    latest_charge = intent.get("latest_charge")
    if isinstance(latest_charge, str):
        raise ProviderError(
            "the PaymentIntent's latest_charge is not expanded; list with "
            "expand=['data.latest_charge'] to learn what was refunded"
        )
    refunded = 0
    if isinstance(latest_charge, Mapping):
        refunded = _integer(latest_charge, "amount_refunded") or 0
    return ProviderPayment(
        intent_id=_required_text(intent, "id", "PaymentIntent"),
        order_id=_order_id(intent),
        amount_minor=_required_integer(intent, "amount", "PaymentIntent"),
        currency=_required_text(intent, "currency", "PaymentIntent").upper(),
        status=_required_text(intent, "status", "PaymentIntent"),
        amount_refunded_minor=refunded,
        created=_provider_time(_required_integer(intent, "created", "PaymentIntent")),
    )


def refund_from_stripe(refund: Mapping[str, Any]) -> ProviderRefund:
    """A refund from Stripe's JSON. Every refund we make names its PaymentIntent; one that
    does not (a refund of a legacy charge) is not ours and is refused here."""
    intent_id = _identifier(refund.get("payment_intent"))
    if intent_id is None:
        raise ProviderError("the refund names no PaymentIntent, so it is not one of ours")
    created = _integer(refund, "created")
    return ProviderRefund(
        id=_required_text(refund, "id", "Refund"),
        intent_id=intent_id,
        amount_minor=_required_integer(refund, "amount", "Refund"),
        currency=_required_text(refund, "currency", "Refund").upper(),
        status=_required_text(refund, "status", "Refund"),
        charge_id=_identifier(refund.get("charge")),
        created=_provider_time(created) if created is not None else None,
    )


def _payment_intent_event(blank: ProviderEvent, intent: Mapping[str, Any]) -> ProviderEvent:
    latest_charge = intent.get("latest_charge")
    # Real Stripe names the charge by id here; localstripe embeds the whole charge, and
    # then its outcome and card are worth reading.
    embedded_charge = latest_charge if isinstance(latest_charge, Mapping) else None
    error = _mapping(intent, "last_payment_error")
    outcome = _mapping(embedded_charge, "outcome") if embedded_charge is not None else None
    fingerprint = (
        _card_fingerprint(_mapping(error, "payment_method") if error is not None else None)
        or _card_fingerprint(_mapping(intent, "payment_method"))
        or _charge_fingerprint(embedded_charge)
    )
    return dataclasses.replace(
        blank,
        intent_id=_text(intent, "id"),
        order_id=_order_id(intent),
        amount_minor=_integer(intent, "amount"),
        currency=_currency(intent),
        charge_id=_identifier(latest_charge),
        risk_level=_text(outcome, "risk_level") if outcome is not None else None,
        risk_score=_integer(outcome, "risk_score") if outcome is not None else None,
        failure_message=_text(error, "message") if error is not None else None,
        payment_method_fingerprint=fingerprint,
        status=_text(intent, "status"),
        reason=_text(intent, "cancellation_reason"),
    )


def _charge_event(blank: ProviderEvent, charge: Mapping[str, Any]) -> ProviderEvent:
    outcome = _mapping(charge, "outcome")
    refunds = _mapping(charge, "refunds")
    listed = refunds.get("data") if refunds is not None else None
    items: list[Any] = listed if isinstance(listed, list) else []
    refund_ids = tuple(
        refund_id for refund_id in (_identifier(item) for item in items) if refund_id is not None
    )
    return dataclasses.replace(
        blank,
        intent_id=_identifier(charge.get("payment_intent")),
        order_id=_order_id(charge),
        amount_minor=_integer(charge, "amount"),
        currency=_currency(charge),
        charge_id=_text(charge, "id"),
        amount_refunded_minor=_integer(charge, "amount_refunded"),
        refund_ids=refund_ids,
        risk_level=_text(outcome, "risk_level") if outcome is not None else None,
        risk_score=_integer(outcome, "risk_score") if outcome is not None else None,
        failure_message=_text(charge, "failure_message"),
        payment_method_fingerprint=_charge_fingerprint(charge),
        status=_text(charge, "status"),
        reason=_text(outcome, "reason") if outcome is not None else None,
    )


def _refund_event(blank: ProviderEvent, refund: Mapping[str, Any]) -> ProviderEvent:
    refund_id = _text(refund, "id")
    return dataclasses.replace(
        blank,
        intent_id=_identifier(refund.get("payment_intent")),
        order_id=_order_id(refund),
        amount_minor=_integer(refund, "amount"),
        currency=_currency(refund),
        charge_id=_identifier(refund.get("charge")),
        refund_ids=(refund_id,) if refund_id is not None else (),
        failure_message=_text(refund, "failure_reason"),
        status=_text(refund, "status"),
        reason=_text(refund, "reason"),
    )


def _dispute_event(blank: ProviderEvent, dispute: Mapping[str, Any]) -> ProviderEvent:
    return dataclasses.replace(
        blank,
        intent_id=_identifier(dispute.get("payment_intent")),
        order_id=_order_id(dispute),
        amount_minor=_integer(dispute, "amount"),
        currency=_currency(dispute),
        charge_id=_identifier(dispute.get("charge")),
        dispute_id=_text(dispute, "id"),
        status=_text(dispute, "status"),
        reason=_text(dispute, "reason"),
    )


_EVENT_READERS = {
    "payment_intent": _payment_intent_event,
    "charge": _charge_event,
    "refund": _refund_event,
    "dispute": _dispute_event,
}
"""By the ``object`` of the event's ``data.object``."""


def _text(source: Mapping[str, Any], key: str) -> str | None:
    value = source.get(key)
    return value if isinstance(value, str) else None


def _integer(source: Mapping[str, Any], key: str) -> int | None:
    value = source.get(key)
    # bool is an int to Python, never to Stripe.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(source: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if source is None:
        return None
    value = source.get(key)
    return value if isinstance(value, Mapping) else None


def _identifier(value: object) -> str | None:
    """An expandable field: Stripe sends an id, or the object itself when expanded."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) else None
    return None


def _currency(source: Mapping[str, Any]) -> str | None:
    currency = _text(source, "currency")
    return currency.upper() if currency is not None else None


def _order_id(source: Mapping[str, Any]) -> uuid.UUID | None:
    metadata = _mapping(source, "metadata")
    value = _text(metadata, "order_id") if metadata is not None else None
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _card_fingerprint(payment_method: Mapping[str, Any] | None) -> str | None:
    card = _mapping(payment_method, "card")
    return _text(card, "fingerprint") if card is not None else None


def _charge_fingerprint(charge: Mapping[str, Any] | None) -> str | None:
    return _card_fingerprint(_mapping(charge, "payment_method_details"))


def _time(unix_seconds: int) -> datetime:
    """Raises ValueError for a number no calendar holds (year 10000, say)."""
    try:
        return datetime.fromtimestamp(unix_seconds, tz=UTC)
    except (OverflowError, OSError) as error:
        raise ValueError(str(error)) from error


def _provider_time(unix_seconds: int) -> datetime:
    try:
        return _time(unix_seconds)
    except ValueError as error:
        raise ProviderError(f"the provider answered with an impossible time: {error}") from error


def _required_text(source: Mapping[str, Any], key: str, kind: str) -> str:
    value = _text(source, key)
    if value is None:
        raise ProviderError(f"the provider's {kind} has no {key}: {_brief(source)}")
    return value


def _required_integer(source: Mapping[str, Any], key: str, kind: str) -> int:
    value = _integer(source, key)
    if value is None:
        raise ProviderError(f"the provider's {kind} has no integer {key}: {_brief(source)}")
    return value


def _brief(source: Mapping[str, Any]) -> str:
    keys: Sequence[str] = sorted(str(key) for key in source)
    return f"id={source.get('id')!r}, fields {', '.join(keys[:12])}"
