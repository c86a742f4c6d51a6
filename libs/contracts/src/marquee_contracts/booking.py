"""Events the booking service publishes (owner: ``booking``).

Only what other services consume so far; the booking service adds its other topics here.
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
