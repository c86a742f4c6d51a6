"""The real Stripe, through stripe's ``StripeClient`` and its async (HTTPX) transport.

Correct for the real Stripe API first; localstripe, the fake server the tests run against,
lacks a few things (see :mod:`marquee_testing.localstripe`) and is never a reason to
change what is sent here:

- every call that creates or changes something carries our ``Idempotency-Key``, so a
  retry after a timeout replays Stripe's first answer instead of making a second intent
  or refund;
- the order travels as ``metadata.order_id`` (Stripe copies nothing else of ours);
- amounts are minor units on both sides; currencies go lower case, come back upper case;
- stripe's errors become :class:`ProviderUnavailable` (try again later: network, 5xx,
  rate limit, a concurrent request with the same key) or :class:`ProviderError` (Stripe's
  refusal, with its message).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

import stripe
from stripe.params import (
    PaymentIntentCreateParams,
    PaymentIntentListParams,
    RefundCreateParams,
    RefundListParams,
)

from marquee_payments.providers.base import (
    ChargeRisk,
    InvalidWebhook,
    ProviderError,
    ProviderEvent,
    ProviderIntent,
    ProviderPayment,
    ProviderRefund,
    ProviderUnavailable,
    intent_from_stripe,
    payment_from_stripe,
    provider_event_from_stripe,
    refund_from_stripe,
)
from marquee_payments.providers.signature import DEFAULT_TOLERANCE_SECONDS, verify_signature

Result = TypeVar("Result")

NOT_CANCELABLE_STATUSES = frozenset({"canceled", "succeeded", "processing"})
"""Where Stripe refuses a cancel; the intent's state then answers the caller. (A
``processing`` payment cannot be canceled either: its outcome arrives as a webhook.)"""

REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
"""The only reasons Stripe accepts on a refund."""

LIST_PAGE_SIZE_MAX = 100
"""Stripe's largest page."""

_RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]


class StripeProvider:
    """:class:`~marquee_payments.providers.base.PaymentProvider` for Stripe.

    ``webhook_secrets`` are the endpoint's signing secrets (``whsec_…``); give the old and
    the new one while a secret is being rolled. ``api_base`` points the client elsewhere
    than ``https://api.stripe.com`` (localstripe in tests). Close it (``aclose`` or
    ``async with``): it owns an HTTP connection pool.
    """

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        webhook_secrets: Sequence[str],
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout_seconds: float = 30.0,
        webhook_tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        list_page_size: int = LIST_PAGE_SIZE_MAX,
    ) -> None:
        if not webhook_secrets or any(not secret for secret in webhook_secrets):
            raise ValueError("StripeProvider needs the webhook endpoint's signing secret(s)")
        if not 1 <= list_page_size <= LIST_PAGE_SIZE_MAX:
            raise ValueError(f"list_page_size must be within 1..{LIST_PAGE_SIZE_MAX}")
        self._webhook_secrets = tuple(webhook_secrets)
        self._webhook_tolerance_seconds = webhook_tolerance_seconds
        self._list_page_size = list_page_size
        self._http_client = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http_client,
            # stripe retries network errors, 409 and 5xx itself, with our idempotency key.
            max_network_retries=max_network_retries,
        )

    async def aclose(self) -> None:
        await self._http_client.close_async()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> StripeProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- intents ---------------------------------------------------------------------------

    async def create_intent(
        self,
        *,
        order_id: uuid.UUID,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderIntent:
        """A PaymentIntent for the order, to be confirmed by the browser (Stripe Elements).

        The same ``idempotency_key`` always gives the same intent (Stripe keeps keys for
        at least 24 hours): derive it from the order, never from the attempt.
        """
        params: PaymentIntentCreateParams = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "description": description,
            # order_id last: a caller's metadata must not point the intent at another order.
            "metadata": {**metadata, "order_id": str(order_id)},
        }
        intent = await _call(
            self._client.v1.payment_intents.create_async(
                params, options={"idempotency_key": idempotency_key}
            )
        )
        return intent_from_stripe(intent.to_dict())

    async def retrieve_intent(self, intent_id: str) -> ProviderIntent:
        intent = await _call(self._client.v1.payment_intents.retrieve_async(intent_id))
        return intent_from_stripe(intent.to_dict())

    async def charge_risk(self, charge_id: str) -> ChargeRisk:
        charge = (await _call(self._client.v1.charges.retrieve_async(charge_id))).to_dict()
        outcome = charge.get("outcome") or {}
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        score = outcome.get("risk_score")
        return ChargeRisk(
            risk_level=outcome.get("risk_level"),
            risk_score=int(score) if isinstance(score, int) else None,
            card_fingerprint=card.get("fingerprint"),
        )

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> ProviderIntent:
        """Cancel the intent, or return its state when it is past cancelling.

        Stripe refuses to cancel a canceled, succeeded or processing intent (400,
        ``payment_intent_unexpected_state``); that is an answer, not an error, for an
        expired order: a payment that succeeded anyway is refunded or honoured from its
        ``status``. We ask for the state after a refusal instead of before the cancel, so
        a payment succeeding in between is seen, not lost.
        """
        try:
            intent = await self._client.v1.payment_intents.cancel_async(
                intent_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as refusal:
            if refusal.http_status != 400:
                raise _translate(refusal) from refusal
            current = await self.retrieve_intent(intent_id)
            if current.status in NOT_CANCELABLE_STATUSES:
                return current
            raise _translate(refusal) from refusal
        except stripe.StripeError as error:
            raise _translate(error) from error
        return intent_from_stripe(intent.to_dict())

    # ---- refunds ---------------------------------------------------------------------------

    async def refund(
        self, *, intent_id: str, amount_minor: int, idempotency_key: str, reason: str | None
    ) -> ProviderRefund:
        """Refund ``amount_minor`` of the intent's charge (partial refunds add up).

        ``reason`` is Stripe's: ``duplicate``, ``fraudulent`` (also tells Radar) or
        ``requested_by_customer``; anything else is refused before asking Stripe.
        """
        params: RefundCreateParams = {"payment_intent": intent_id, "amount": amount_minor}
        if reason is not None:
            if reason not in REFUND_REASONS:
                raise ProviderError(
                    f"Stripe accepts only these refund reasons: {', '.join(sorted(REFUND_REASONS))}"
                    f" (not {reason!r})",
                    code="parameter_invalid_refund_reason",
                )
            params["reason"] = cast(_RefundReason, reason)
        refund = await _call(
            self._client.v1.refunds.create_async(
                params, options={"idempotency_key": idempotency_key}
            )
        )
        return refund_from_stripe(refund.to_dict())

    # ---- listings for reconciliation -------------------------------------------------------

    async def list_payments(self, *, since: datetime) -> AsyncIterator[ProviderPayment]:
        """Every PaymentIntent created at or after ``since`` (newest first, as Stripe lists
        them), with what was refunded of each, page after page."""
        params: PaymentIntentListParams = {
            "created": {"gte": _unix_seconds(since)},
            "limit": self._list_page_size,
            # The refunded amount is on the charge; expanding saves a request per intent.
            "expand": ["data.latest_charge"],
        }
        while True:
            page = await _call(self._client.v1.payment_intents.list_async(params))
            for intent in page.data:
                yield payment_from_stripe(intent.to_dict())
            if not page.has_more or not page.data:
                return
            params["starting_after"] = page.data[-1].id

    async def list_refunds(self, *, since: datetime) -> AsyncIterator[ProviderRefund]:
        """Every refund of a PaymentIntent created at or after ``since``, page after page.
        Refunds of charges made without a PaymentIntent are not ours and are skipped."""
        params: RefundListParams = {
            "created": {"gte": _unix_seconds(since)},
            "limit": self._list_page_size,
        }
        while True:
            page = await _call(self._client.v1.refunds.list_async(params))
            for refund in page.data:
                fields = refund.to_dict()
                if fields.get("payment_intent") is not None:
                    yield refund_from_stripe(fields)
            if not page.has_more or not page.data:
                return
            params["starting_after"] = page.data[-1].id

    # ---- webhooks --------------------------------------------------------------------------

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> ProviderEvent:
        """Verify ``payload`` (the raw body) against the ``Stripe-Signature`` header, then
        normalize the event. Raises :class:`InvalidWebhook`; answer it with a 400."""
        verify_signature(
            payload,
            signature_header,
            self._webhook_secrets,
            tolerance_seconds=self._webhook_tolerance_seconds,
        )
        try:
            event: Any = json.loads(payload)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
            raise InvalidWebhook(f"the signed body is not JSON: {error}") from error
        if not isinstance(event, dict):
            raise InvalidWebhook("the signed body is JSON but not an object: not a Stripe event")
        return provider_event_from_stripe(event)


async def _call(request: Awaitable[Result]) -> Result:
    try:
        return await request
    except stripe.StripeError as error:
        raise _translate(error) from error


def _translate(error: stripe.StripeError) -> ProviderError:
    """Retry later, or refused for good: the one distinction callers act on."""
    message = error.user_message or str(error) or type(error).__name__
    # stripe sets code on some error classes only (not on RateLimitError, say).
    code = error.code or (error.error.code if error.error is not None else None)
    details: dict[str, Any] = {
        "code": code,
        "http_status": error.http_status,
        "request_id": error.request_id,
    }
    status = error.http_status or 0
    if (
        isinstance(error, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError)
        or status >= 500
        or status == 429
        # A request with this idempotency key is still being processed.
        or status == 409
    ):
        return ProviderUnavailable(f"Stripe is unavailable: {message}", **details)
    return ProviderError(message, **details)


def _unix_seconds(moment: datetime) -> int:
    """Floored: a listing for reconciliation may overlap the previous one, never miss."""
    if moment.tzinfo is None:
        raise ValueError("since must be an aware datetime (UTC); a naive one is ambiguous")
    return math.floor(moment.timestamp())
