"""Events the events (catalog) service publishes (owner: ``events``).

Every message about one event is keyed by the event id (the CloudEvent ``subject``), so
it stays on one partition; venue messages are keyed by the venue id.

**Ordering and idempotence.** Each event row carries a ``version`` that grows by one with
every change (the event's own fields, its ticket types, its status, or a change to its
venue that alters the snapshot). Every message about an event carries the version the
event had *after* the change. Delivery is at least once and topics are not ordered with
respect to each other, so a consumer must:

- drop a message whose ``version`` is not newer than what it already applied for that
  event (or let the search engine do it: ``version_type=external`` with this version);
- treat a redelivery (same CloudEvent ``id``) as a no-op (the platform inbox does this).

Schemas only ever gain optional fields within a version; anything else is a ``.v2`` topic.
Enumerated values (``status``, ``category``, ticket-type ``kind``) are plain strings so a
new value does not break an old consumer: a consumer that does not know a value should
rely on the ``public`` flag rather than on the status list it was built with.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from marquee_contracts.topics import REGISTRY, Topic

EVENT_STATUSES = ("draft", "published", "on_sale", "sold_out", "cancelled", "completed")
"""Every status an event can have, in lifecycle order (see docs/services/events.md)."""

PUBLIC_STATUSES = ("published", "on_sale", "sold_out", "cancelled", "completed")
"""Statuses in which anyone may see the event; ``public`` is true exactly for these."""

EVENT_CATEGORIES = (
    "concert",
    "festival",
    "theatre",
    "comedy",
    "dance",
    "classical",
    "sports",
    "family",
    "conference",
    "exhibition",
    "film",
    "other",
)
"""The fixed list of event categories (search facets on it)."""


class EventVenue(BaseModel):
    """Where an event takes place, denormalized into every event snapshot."""

    id: UUID
    name: str
    address: str
    city: str
    country: str = Field(description="ISO 3166-1 alpha-2, upper case")
    latitude: float
    longitude: float
    time_zone: str = Field(description="IANA time zone name, e.g. Europe/Paris")


class PriceRange(BaseModel):
    """The cheapest and dearest ticket type of an event (all share one currency)."""

    min_minor: int = Field(description="Lowest price in minor units (cents)")
    max_minor: int = Field(description="Highest price in minor units (cents)")
    currency: str = Field(description="ISO 4217, upper case")


class TicketTypeSnapshot(BaseModel):
    """One ticket type as it is now: either for seats of a price category, or a quantity
    of general-admission places in one area."""

    ticket_type_id: UUID
    name: str
    price_minor: int
    currency: str
    kind: str = Field(description="'seated' or 'general_admission'")
    price_category: str | None = Field(
        default=None, description="The seats it sells (kind 'seated')"
    )
    general_admission_area: str | None = Field(
        default=None, description="The area it sells places in (kind 'general_admission')"
    )
    quantity: int | None = Field(
        default=None, description="How many places it sells (kind 'general_admission')"
    )
    sale_starts_at: datetime | None = Field(
        default=None, description="Null: when the event's sale starts"
    )
    sale_ends_at: datetime | None = Field(
        default=None, description="Null: when the event's sale ends"
    )
    min_per_order: int
    max_per_order: int


class EventChanged(BaseModel):
    """The whole current state of an event, after any change to it.

    A denormalized snapshot (venue, price range and ticket types included) so a consumer
    such as the search indexer never calls back. Sent for drafts too: index only
    ``public`` events and delete a document whose event is not public or is ``deleted``.
    """

    event_id: UUID
    version: int = Field(description="Grows with every change; use it to order and dedupe")
    deleted: bool = Field(
        description="The event was deleted (a draft); the other fields are its last state"
    )
    public: bool = Field(description="Anyone may see it (its status is in PUBLIC_STATUSES)")
    status: str = Field(description="One of EVENT_STATUSES")
    organizer_id: str
    name: str
    description: str
    category: str = Field(description="One of EVENT_CATEGORIES")
    tags: list[str]
    image_urls: list[str]
    starts_at: datetime
    ends_at: datetime
    time_zone: str = Field(description="The venue's IANA time zone, for display")
    venue: EventVenue
    price_range: PriceRange | None = Field(description="Null while it has no ticket types")
    ticket_types: list[TicketTypeSnapshot]
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    high_demand: bool = Field(description="On-sale goes through the waiting room")
    max_tickets_per_order: int
    cancellation_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None


EVENT_CHANGED = REGISTRY.register(
    Topic(
        "events.event-changed.v1",
        EventChanged,
        owner="events",
        description="An event was created, edited, changed status or was deleted: its full "
        "current snapshot (venue, prices, ticket types). Keyed by event id; order by version.",
    )
)


class GeneralAdmissionCapacity(BaseModel):
    name: str
    capacity: int


class PublishedSeat(BaseModel):
    id: str
    price_category: str = Field(description="The seat's own, or its row's")


class PublishedRow(BaseModel):
    label: str
    seats: list[PublishedSeat] = Field(
        description="Along the row, in order: neighbours are adjacent"
    )


class PublishedSection(BaseModel):
    name: str
    rows: list[PublishedRow] = Field(description="From the stage back")


class PublishedSeating(BaseModel):
    """What can be sold at the venue, frozen while the event is live.

    The venue's seating map cannot change while one of its events is published, on sale
    or sold out, so this stays true until the event is cancelled or completed.
    """

    capacity: int = Field(description="Seats plus general-admission places")
    seat_ids_by_price_category: dict[str, list[str]] = Field(
        description="Every seat id (unique in the venue, case-insensitively) by price category"
    )
    general_admission: list[GeneralAdmissionCapacity]
    sections: list[PublishedSection] | None = Field(
        default=None,
        description="The seats as laid out: sections in the organizer's ranking (best "
        "first), rows from the stage back, seats along each row. Inventory places "
        "best-available seats from it. Null from producers that predate it.",
    )


class EventPublished(BaseModel):
    """An event was published: what inventory needs to build its seats and quantities.

    Later changes to ticket types arrive as ``events.event-changed.v1`` (its
    ``ticket_types`` list); the seating never changes while the event is live.
    """

    event_id: UUID
    version: int
    organizer_id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    venue_id: UUID
    sale_starts_at: datetime
    sale_ends_at: datetime
    high_demand: bool
    max_tickets_per_order: int
    ticket_types: list[TicketTypeSnapshot]
    seating: PublishedSeating
    published_at: datetime


EVENT_PUBLISHED = REGISTRY.register(
    Topic(
        "events.event-published.v1",
        EventPublished,
        owner="events",
        description="An event was published: its ticket types and every seat id and "
        "general-admission capacity, for inventory. Keyed by event id.",
    )
)


class EventCancelled(BaseModel):
    """An event was cancelled: orders are to be cancelled and refunded, fans told."""

    event_id: UUID
    version: int
    organizer_id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    venue_id: UUID
    previous_status: str = Field(description="What it was before: on_sale means money moved")
    reason: str | None
    cancelled_at: datetime


EVENT_CANCELLED = REGISTRY.register(
    Topic(
        "events.event-cancelled.v1",
        EventCancelled,
        owner="events",
        description="An event was cancelled; booking cancels and refunds its orders, "
        "notifications tells its ticket holders. Keyed by event id.",
    )
)


class VenueChanged(BaseModel):
    """A venue was created or changed (its seating map summarised, not listed)."""

    venue_id: UUID
    version: int
    owner_id: str
    name: str
    address: str
    city: str
    country: str
    latitude: float
    longitude: float
    time_zone: str
    capacity: int
    seated_seats: int
    price_categories: list[str]
    general_admission: list[GeneralAdmissionCapacity]
    updated_at: datetime


VENUE_CHANGED = REGISTRY.register(
    Topic(
        "events.venue-changed.v1",
        VenueChanged,
        owner="events",
        description="A venue was created or edited. Its events' snapshots are re-sent on "
        "events.event-changed.v1 as well. Keyed by venue id.",
    )
)


class ReviewPosted(BaseModel):
    """A ticket holder reviewed an event after it ended."""

    review_id: UUID
    event_id: UUID
    organizer_id: str = Field(description="Whom to tell")
    author_id: str
    rating: int = Field(ge=1, le=5)
    comment: str
    created_at: datetime


REVIEW_POSTED = REGISTRY.register(
    Topic(
        "events.review-posted.v1",
        ReviewPosted,
        owner="events",
        description="A ticket holder rated and commented on an event. Keyed by event id.",
    )
)


class ReviewReplied(BaseModel):
    """The organizer (or an admin) replied to a review."""

    review_id: UUID
    event_id: UUID
    author_id: str = Field(description="Who wrote the review: whom to tell")
    replied_by: str
    reply: str
    replied_at: datetime


REVIEW_REPLIED = REGISTRY.register(
    Topic(
        "events.review-replied.v1",
        ReviewReplied,
        owner="events",
        description="The organizer replied to a review. Keyed by event id.",
    )
)
