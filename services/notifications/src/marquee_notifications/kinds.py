"""The kinds of message, and which of them a person may turn off."""

from __future__ import annotations

REMINDER = "event-reminder"

KINDS: frozenset[str] = frozenset(
    {
        "verify-email",
        "password-reset",
        "password-changed",
        "email-changed",
        "account-deleted",
        "order-confirmation",
        "ticket-received",
        "ticket-transferred",
        "payment-failed",
        "order-expired",
        "refund-issued",
        "event-changed",
        "event-cancelled",
        REMINDER,
        "waitroom-turn",
        "waitlist-offer",
    }
)
"""Every kind of message there are templates for (``templates/<kind>/``)."""

PREFERENCE_OF_KIND = {REMINDER: "reminders"}
"""Non-transactional kinds and the preference that lets them through."""

TRANSACTIONAL_KINDS = KINDS - PREFERENCE_OF_KIND.keys()
"""Sent whatever the person chose: each is about their own account, money or ticket."""
