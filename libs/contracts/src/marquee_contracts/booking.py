"""Events the booking service publishes (owner: ``booking``).

Orders, tickets and refund requests. Everything is written to booking's outbox in the
transaction that made the change. Order events are keyed by event id where inventory
consumes them (so they stay in order with the event's other sales) and by order id
otherwise; see each topic's description. The saga: docs/services/booking.md.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from marquee_contracts.inventory import HeldQuantity, HeldSeat
from marquee_contracts.topics import REGISTRY, Topic


class TicketIssued(BaseModel):
    """A ticket was issued to a person (after payment, or to the recipient of a transfer)."""

    ticket_id: UUID
    order_id: UUID
    event_id: UUID
    user_id: str = Field(description="Who holds the ticket")
    issued_at: datetime
    seat_id: str | None = Field(default=None, description="Null for general admission")
    ticket_type_id: UUID | None = None
    version: int = Field(default=0, description="Barcode version: grows on each reissue")
    replaces_ticket_id: UUID | None = Field(
        default=None, description="The ticket this one replaces (a transfer)"
    )
    barcode: str | None = Field(
        default=None,
        description="The signed barcode, for notifications to attach to the holder's mail. "
        "A credential for the door: send it to the holder, never log it.",
    )


TICKET_ISSUED = REGISTRY.register(
    Topic(
        "booking.ticket-issued.v1",
        TicketIssued,
        owner="booking",
        description="A ticket was issued to its holder. Keyed by order id.",
    )
)


class OrderPaid(BaseModel):
    """An order was paid in full: inventory now sells its hold's places (or refuses)."""

    order_id: UUID
    hold_id: str = Field(description="The inventory hold the order was made from")
    event_id: UUID
    user_id: str = Field(description="The buyer")
    seats: list[HeldSeat]
    general_admission: list[HeldQuantity]
    amount_minor: int = Field(description="What was paid, in minor units")
    currency: str = Field(description="ISO 4217, upper case")
    paid_at: datetime


ORDER_PAID = REGISTRY.register(
    Topic(
        "booking.order-paid.v1",
        OrderPaid,
        owner="booking",
        description="An order was paid; inventory answers sale-confirmed or sale-rejected. "
        "Keyed by event id, so it is ordered with the event's other sales.",
    )
)


class TicketCancelled(BaseModel):
    """A ticket was refunded or cancelled: its place may be sold again."""

    ticket_id: UUID
    order_id: UUID
    event_id: UUID
    seat_id: str | None = Field(description="The seat it was for; null for general admission")
    ticket_type_id: UUID
    reason: str = Field(description="'refunded', 'cancelled' or 'event-cancelled'")
    cancelled_at: datetime


TICKET_CANCELLED = REGISTRY.register(
    Topic(
        "booking.ticket-cancelled.v1",
        TicketCancelled,
        owner="booking",
        description="A ticket was refunded or cancelled; inventory frees its place. "
        "Keyed by event id.",
    )
)


class OrderLine(BaseModel):
    """One place of an order, priced: what was charged for it, in minor units."""

    line_id: UUID
    ticket_type_id: UUID
    seat_id: str | None
    unit_price_minor: int
    discount_minor: int
    fee_minor: int
    total_minor: int


class OrderCreated(BaseModel):
    """A fan ordered the places of a hold; it waits for payment until ``expires_at``."""

    order_id: UUID
    hold_id: str
    event_id: UUID
    user_id: str
    lines: list[OrderLine]
    subtotal_minor: int
    discount_minor: int
    fees_minor: int
    total_minor: int
    currency: str
    promo_code: str | None
    expires_at: datetime
    created_at: datetime


ORDER_CREATED = REGISTRY.register(
    Topic(
        "booking.order-created.v1",
        OrderCreated,
        owner="booking",
        description="An order waits for payment until its hold lapses. Keyed by order id.",
    )
)


class OrderClosed(BaseModel):
    """An unpaid order ended: its hold is released (if still live) and no payment for it
    is expected any more (a late one is honoured or refunded)."""

    order_id: UUID
    hold_id: str
    event_id: UUID
    user_id: str
    reason: str = Field(
        description="'expired' (its hold lapsed), 'cancelled' (by the buyer), "
        "'payment-failed' (the provider refused the payment), 'event-cancelled'"
    )
    closed_at: datetime


ORDER_CLOSED = REGISTRY.register(
    Topic(
        "booking.order-closed.v1",
        OrderClosed,
        owner="booking",
        description="An unpaid order ended (expired, cancelled, payment failed): inventory "
        "releases its hold, payments cancels its PaymentIntent. Keyed by event id.",
    )
)


class OrderConfirmed(BaseModel):
    """An order is paid and its tickets are issued."""

    order_id: UUID
    event_id: UUID
    user_id: str
    ticket_ids: list[UUID]
    total_minor: int
    currency: str
    confirmed_at: datetime


ORDER_CONFIRMED = REGISTRY.register(
    Topic(
        "booking.order-confirmed.v1",
        OrderConfirmed,
        owner="booking",
        description="A paid order's tickets were issued. Keyed by order id.",
    )
)


class RefundRequested(BaseModel):
    """Booking asks payments to give money back for an order (some or all of it)."""

    refund_id: UUID = Field(description="Booking's id: the provider's idempotency key")
    order_id: UUID
    event_id: UUID
    user_id: str = Field(description="The buyer")
    amount_minor: int = Field(ge=1)
    currency: str
    reason: str = Field(
        description="'requested-by-organizer', 'requested-by-buyer', 'sale-rejected', "
        "'event-cancelled', 'duplicate-payment'"
    )
    ticket_ids: list[UUID] = Field(description="The tickets it refunds (revoked already)")
    requested_at: datetime


REFUND_REQUESTED = REGISTRY.register(
    Topic(
        "booking.refund-requested.v1",
        RefundRequested,
        owner="booking",
        description="Give money back for an order: payments refunds it at the provider. "
        "Keyed by order id.",
    )
)


class TicketTransferred(BaseModel):
    """A ticket went to another person: the old barcode is revoked, a new one issued."""

    old_ticket_id: UUID
    new_ticket_id: UUID
    order_id: UUID
    event_id: UUID
    from_user_id: str
    to_user_id: str
    transferred_at: datetime


TICKET_TRANSFERRED = REGISTRY.register(
    Topic(
        "booking.ticket-transferred.v1",
        TicketTransferred,
        owner="booking",
        description="A ticket changed holder (old barcode revoked). Keyed by order id.",
    )
)
