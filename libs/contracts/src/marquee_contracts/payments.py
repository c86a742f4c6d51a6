"""Events the payments service publishes (owner: ``payments``).

Written to payments' outbox in the transaction that applied the provider's webhook (or the
admin's review decision). Keyed by order id, so one order's payment events stay in order.
A payment is only ever reported as succeeded once per order, and never after a failure was
reported for the same attempt unless the provider really took the money afterwards (a
customer retrying with another card): booking treats such a late success like a payment
after expiry. See docs/services/payments.md.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from marquee_contracts.topics import REGISTRY, Topic


class PaymentSucceeded(BaseModel):
    """The provider took the money for an order (and no fraud review holds it back)."""

    payment_id: UUID
    order_id: UUID
    provider: str = Field(description="'stripe' or 'simulated'")
    provider_payment_id: str = Field(description="The PaymentIntent id")
    amount_minor: int
    currency: str
    succeeded_at: datetime


PAYMENT_SUCCEEDED = REGISTRY.register(
    Topic(
        "payments.payment-succeeded.v1",
        PaymentSucceeded,
        owner="payments",
        description="An order's payment went through: booking sells and issues tickets. "
        "Keyed by order id.",
    )
)


class PaymentFailed(BaseModel):
    """The provider refused the payment for an order."""

    payment_id: UUID
    order_id: UUID
    provider: str
    provider_payment_id: str
    reason: str = Field(description="What the provider said (no card data)")
    failed_at: datetime


PAYMENT_FAILED = REGISTRY.register(
    Topic(
        "payments.payment-failed.v1",
        PaymentFailed,
        owner="payments",
        description="An order's payment was refused: booking closes the order. Keyed by order id.",
    )
)


class RefundSucceeded(BaseModel):
    """Money went back to the buyer."""

    payment_id: UUID
    order_id: UUID
    refund_id: UUID | None = Field(
        description="Booking's refund request, or null for a refund made at the provider "
        "(its dashboard) that booking did not ask for"
    )
    provider_refund_id: str
    amount_minor: int
    currency: str
    refunded_at: datetime


REFUND_SUCCEEDED = REGISTRY.register(
    Topic(
        "payments.refund-succeeded.v1",
        RefundSucceeded,
        owner="payments",
        description="A refund reached the buyer. Keyed by order id.",
    )
)


class RefundFailed(BaseModel):
    payment_id: UUID | None
    order_id: UUID
    refund_id: UUID
    reason: str
    failed_at: datetime


REFUND_FAILED = REGISTRY.register(
    Topic(
        "payments.refund-failed.v1",
        RefundFailed,
        owner="payments",
        description="A refund could not be made (an admin must look). Keyed by order id.",
    )
)


class DisputeOpened(BaseModel):
    """The buyer's bank disputes a charge: the money is withdrawn until it is settled."""

    payment_id: UUID
    order_id: UUID
    provider_dispute_id: str
    amount_minor: int
    currency: str
    reason: str
    opened_at: datetime


DISPUTE_OPENED = REGISTRY.register(
    Topic(
        "payments.dispute-opened.v1",
        DisputeOpened,
        owner="payments",
        description="A charge is disputed. Keyed by order id.",
    )
)


class PaymentHeldForReview(BaseModel):
    """A payment went through but looks risky: no tickets until an admin decides."""

    payment_id: UUID
    order_id: UUID
    reasons: list[str]
    held_at: datetime


PAYMENT_HELD_FOR_REVIEW = REGISTRY.register(
    Topic(
        "payments.payment-held-for-review.v1",
        PaymentHeldForReview,
        owner="payments",
        description="A risky payment waits for an admin's review. Keyed by order id.",
    )
)
