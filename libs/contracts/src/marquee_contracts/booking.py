"""Events the booking service publishes (owner: ``booking``).

Only what other services consume so far; the booking service adds its other topics here.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

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
