"""Events the inventory service publishes (owner: ``inventory``).

Every message is keyed by the event id, so one event's holds and sales stay in order.

Hold lifecycle events (``hold-created``, ``hold-released``, ``hold-expired``,
``availability-changed``) are written by the hold's own Redis script into a per-event
Redis stream and forwarded to Kafka at least once: they never wait on PostgreSQL, and if
Redis is lost the holds (and their not-yet-forwarded events) may be lost with it — never a
sale. Sale outcomes (``sale-confirmed``, ``sale-rejected``) go through the PostgreSQL
outbox in the same transaction as the sold places. See docs/services/inventory.md.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from marquee_contracts.topics import REGISTRY, Topic


class HeldSeat(BaseModel):
    seat_id: str
    ticket_type_id: UUID


class RequestedSeat(BaseModel):
    seat_id: str
    ticket_type_id: UUID | None = None


class HeldQuantity(BaseModel):
    """General-admission places of one ticket type."""

    ticket_type_id: UUID
    quantity: int = Field(ge=1)


class HoldCreated(BaseModel):
    """Places are held for a person until ``expires_at`` (all or nothing)."""

    hold_id: str
    event_id: UUID
    user_id: str
    seats: list[HeldSeat]
    general_admission: list[HeldQuantity]
    expires_at: datetime
    created_at: datetime


class HoldEnded(BaseModel):
    """A hold ended without a sale: released by its holder, or expired."""

    hold_id: str
    event_id: UUID
    user_id: str
    seats: list[HeldSeat]
    general_admission: list[HeldQuantity]
    ended_at: datetime


class AvailabilityChanged(BaseModel):
    """What is left of an event, after a change (coalesced: not one per seat)."""

    event_id: UUID
    seats_available: int
    general_admission_available: dict[str, int] = Field(description="Ticket type id → places left")
    changed_at: datetime


class SaleConfirmed(BaseModel):
    """The places of a paid order are sold: PostgreSQL holds them under its unique
    constraint, so booking may issue the tickets."""

    order_id: UUID
    hold_id: str
    event_id: UUID
    user_id: str
    seats: list[HeldSeat]
    general_admission: list[HeldQuantity]
    confirmed_at: datetime


class SaleRejected(BaseModel):
    """The places of a paid order could not be sold (the hold lapsed and someone else took
    them meanwhile, or the event was cancelled): booking refunds the payment."""

    order_id: UUID
    hold_id: str
    event_id: UUID
    user_id: str
    reason: str = Field(description="'places-taken', 'event-cancelled' or 'unknown-places'")
    detail: str
    rejected_at: datetime


class BestAvailableAsk(BaseModel):
    count: int = Field(ge=1)
    price_category: str | None = None
    ticket_type_id: UUID | None = None


class HoldRequested(BaseModel):
    """A fan asked for places of a high-demand event: the queue applies the requests of one
    event in arrival order (one consumer per partition, keyed by event id)."""

    request_id: str
    event_id: UUID
    user_id: str
    seats: list[RequestedSeat] = Field(description="Explicit seats")
    general_admission: list[HeldQuantity]
    best_available: BestAvailableAsk | None = None
    requested_at: datetime


HOLD_REQUESTED = REGISTRY.register(
    Topic(
        "inventory.hold-requested.v1",
        HoldRequested,
        owner="inventory",
        description="A queued hold request of a high-demand event, applied first come, first "
        "served by inventory itself. Keyed by event id.",
    )
)
HOLD_CREATED = REGISTRY.register(
    Topic(
        "inventory.hold-created.v1",
        HoldCreated,
        owner="inventory",
        description="Places were held for a person until a deadline. Keyed by event id.",
    )
)
HOLD_RELEASED = REGISTRY.register(
    Topic(
        "inventory.hold-released.v1",
        HoldEnded,
        owner="inventory",
        description="A holder (or an admin) let a hold go. Keyed by event id.",
    )
)
HOLD_EXPIRED = REGISTRY.register(
    Topic(
        "inventory.hold-expired.v1",
        HoldEnded,
        owner="inventory",
        description="A hold reached its deadline unsold; its places are free again. "
        "Keyed by event id.",
    )
)
AVAILABILITY_CHANGED = REGISTRY.register(
    Topic(
        "inventory.availability-changed.v1",
        AvailabilityChanged,
        owner="inventory",
        description="What is left of an event (coalesced). Keyed by event id.",
    )
)
SALE_CONFIRMED = REGISTRY.register(
    Topic(
        "inventory.sale-confirmed.v1",
        SaleConfirmed,
        owner="inventory",
        description="A paid order's places are sold (in PostgreSQL). Keyed by event id.",
    )
)
SALE_REJECTED = REGISTRY.register(
    Topic(
        "inventory.sale-rejected.v1",
        SaleRejected,
        owner="inventory",
        description="A paid order's places could not be sold: refund it. Keyed by event id.",
    )
)
