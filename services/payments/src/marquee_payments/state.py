"""The payment's state machine: webhooks arrive late, twice and out of order, and each
must move the payment only forward.

Stripe's PaymentIntent statuses, plus two of ours: ``failed`` (the provider refused an
attempt; the buyer may still retry and succeed) and ``refunded`` (all of it given back).
Money that was taken is never forgotten: ``succeeded`` applies from any state but
``succeeded`` and ``refunded`` — even after ``canceled`` or ``failed``, because the
provider says it took the money and the saga must then honour or refund it. Nothing
after ``succeeded`` brings a payment back to an earlier state: a late
``payment_failed`` never overrides a success.
"""

from __future__ import annotations

_IN_FLIGHT = {
    "requires_payment_method": 0,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "failed": 3,
}
"""States before a result, ranked: a lower one arriving late is stale."""

TERMINAL_WITH_MONEY = frozenset({"succeeded", "refunded"})
IN_FLIGHT = frozenset(_IN_FLIGHT)
"""Statuses an event can report before a result: ordered by the events' ``created`` too
(the payment's ``last_event_at``), so a late one is stale whatever its status."""


def next_status(current: str, incoming: str) -> str | None:
    """The payment's status once ``incoming`` (what an event reports) is applied, or None
    when the event is stale and must change nothing."""
    if current == incoming:
        return None
    if current in TERMINAL_WITH_MONEY:
        return "refunded" if current == "succeeded" and incoming == "refunded" else None
    if incoming == "succeeded":
        return "succeeded"
    if incoming == "refunded":
        return None  # a refund of money we never saw taken: the success event is still due
    if current == "canceled":
        return None
    if incoming == "canceled":
        return "canceled"
    if incoming in _IN_FLIGHT and current in _IN_FLIGHT:
        # A retry after a failure starts again; otherwise only forward.
        if current == "failed" or _IN_FLIGHT[incoming] > _IN_FLIGHT[current]:
            return incoming
        if incoming == "failed":
            return "failed"
        return None
    return None


EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "canceled",
    "payment_intent.processing": "processing",
    "payment_intent.requires_action": "requires_action",
}
"""What each PaymentIntent event reports."""
