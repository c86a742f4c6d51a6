"""From rows to what the rules and the other services read.

- rows as domain values (``event_details_of`` …), so the rules in :mod:`marquee_events.domain`
  never see an ORM object;
- rows as contract messages (:mod:`marquee_contracts.catalog`): the full snapshots
  ``events.event-changed.v1`` and ``events.venue-changed.v1`` carry after every change,
  and the messages of publishing, cancelling and reviewing. The outbox sends them; the
  snapshot listing (``GET /api/v1/events/snapshots``) and the API's price range reuse them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from marquee_contracts.catalog import (
    EventCancelled,
    EventChanged,
    EventPublished,
    EventVenue,
    GeneralAdmissionCapacity,
    PriceRange,
    PublishedSeating,
    PublishedSection,
    ReviewPosted,
    ReviewReplied,
    TicketTypeSnapshot,
    VenueChanged,
)
from marquee_events.domain import (
    PUBLIC_STATUSES,
    EventDetails,
    EventStatus,
    SeatingSummary,
    TicketTypeSpec,
    VenueDetails,
    price_range,
    seat_ids_by_price_category,
    seat_layout,
    seating_map_from_document,
)
from marquee_events.models import Event, Review, TicketType, Venue


@dataclass(frozen=True, slots=True)
class EventAggregate:
    """An event with what its readers need: its venue and ticket types."""

    event: Event
    venue: Venue
    ticket_types: Sequence[TicketType]


# ---- from rows to domain values -----------------------------------------------------------


def venue_details_of(venue: Venue) -> VenueDetails:
    return VenueDetails(
        name=venue.name,
        address=venue.address,
        city=venue.city,
        country=venue.country,
        latitude=venue.latitude,
        longitude=venue.longitude,
        time_zone=venue.time_zone,
        capacity=venue.capacity,
    )


def seating_summary_of(venue: Venue) -> SeatingSummary:
    return SeatingSummary(
        seated_seats=venue.seated_seats,
        general_admission={area["name"]: area["capacity"] for area in venue.general_admission},
        price_categories=tuple(venue.price_categories),
    )


def event_details_of(event: Event) -> EventDetails:
    return EventDetails(
        name=event.name,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        category=event.category,
        description=event.description,
        tags=tuple(event.tags),
        image_urls=tuple(event.image_urls),
        sale_starts_at=event.sale_starts_at,
        sale_ends_at=event.sale_ends_at,
        high_demand=event.high_demand,
        max_tickets_per_order=event.max_tickets_per_order,
    )


def ticket_type_spec_of(ticket_type: TicketType) -> TicketTypeSpec:
    return TicketTypeSpec(
        name=ticket_type.name,
        price_minor=ticket_type.price_minor,
        currency=ticket_type.currency,
        price_category=ticket_type.price_category,
        general_admission_area=ticket_type.general_admission_area,
        quantity=ticket_type.quantity,
        sale_starts_at=ticket_type.sale_starts_at,
        sale_ends_at=ticket_type.sale_ends_at,
        min_per_order=ticket_type.min_per_order,
        max_per_order=ticket_type.max_per_order,
    )


# ---- snapshots ----------------------------------------------------------------------------


def ticket_type_snapshot(ticket_type: TicketType) -> TicketTypeSnapshot:
    spec = ticket_type_spec_of(ticket_type)
    return TicketTypeSnapshot(
        ticket_type_id=ticket_type.id,
        name=spec.name,
        price_minor=spec.price_minor,
        currency=spec.currency,
        kind=spec.kind.value,
        price_category=spec.price_category,
        general_admission_area=spec.general_admission_area,
        quantity=spec.quantity,
        sale_starts_at=spec.sale_starts_at,
        sale_ends_at=spec.sale_ends_at,
        min_per_order=spec.min_per_order,
        max_per_order=spec.max_per_order,
    )


def event_changed_message(
    event: Event, venue: Venue, ticket_types: Sequence[TicketType]
) -> EventChanged:
    prices = price_range(ticket_type_spec_of(ticket_type) for ticket_type in ticket_types)
    return EventChanged(
        event_id=event.id,
        version=event.version,
        deleted=event.deleted_at is not None,
        public=EventStatus(event.status) in PUBLIC_STATUSES,
        status=event.status,
        organizer_id=event.organizer_id,
        name=event.name,
        description=event.description,
        category=event.category,
        tags=list(event.tags),
        image_urls=list(event.image_urls),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        time_zone=venue.time_zone,
        venue=EventVenue(
            id=venue.id,
            name=venue.name,
            address=venue.address,
            city=venue.city,
            country=venue.country,
            latitude=venue.latitude,
            longitude=venue.longitude,
            time_zone=venue.time_zone,
        ),
        price_range=(
            PriceRange(min_minor=prices[0], max_minor=prices[1], currency=prices[2])
            if prices
            else None
        ),
        ticket_types=[ticket_type_snapshot(ticket_type) for ticket_type in ticket_types],
        sale_starts_at=event.sale_starts_at,
        sale_ends_at=event.sale_ends_at,
        high_demand=event.high_demand,
        max_tickets_per_order=event.max_tickets_per_order,
        cancellation_reason=event.cancellation_reason,
        created_at=event.created_at,
        updated_at=event.updated_at,
        published_at=event.published_at,
    )


def _general_admission(venue: Venue) -> list[GeneralAdmissionCapacity]:
    return [
        GeneralAdmissionCapacity(name=area["name"], capacity=area["capacity"])
        for area in venue.general_admission
    ]


def venue_changed_message(venue: Venue) -> VenueChanged:
    return VenueChanged(
        venue_id=venue.id,
        version=venue.version,
        owner_id=venue.owner_id,
        name=venue.name,
        address=venue.address,
        city=venue.city,
        country=venue.country,
        latitude=venue.latitude,
        longitude=venue.longitude,
        time_zone=venue.time_zone,
        capacity=venue.capacity,
        seated_seats=venue.seated_seats,
        price_categories=list(venue.price_categories),
        general_admission=_general_admission(venue),
        updated_at=venue.updated_at,
    )


# ---- what happened ------------------------------------------------------------------------


def event_published_message(
    event: Event, venue: Venue, ticket_types: Sequence[TicketType]
) -> EventPublished:
    """Needs the venue loaded with its seating map."""
    seating = seating_map_from_document(venue.seating_map)
    assert event.sale_starts_at is not None
    assert event.sale_ends_at is not None
    assert event.published_at is not None
    return EventPublished(
        event_id=event.id,
        version=event.version,
        organizer_id=event.organizer_id,
        name=event.name,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        time_zone=venue.time_zone,
        venue_id=venue.id,
        sale_starts_at=event.sale_starts_at,
        sale_ends_at=event.sale_ends_at,
        high_demand=event.high_demand,
        max_tickets_per_order=event.max_tickets_per_order,
        ticket_types=[ticket_type_snapshot(ticket_type) for ticket_type in ticket_types],
        seating=PublishedSeating(
            capacity=venue.capacity,
            seat_ids_by_price_category=seat_ids_by_price_category(seating),
            general_admission=_general_admission(venue),
            sections=[PublishedSection.model_validate(section) for section in seat_layout(seating)],
        ),
        published_at=event.published_at,
    )


def event_cancelled_message(
    event: Event, *, previous_status: EventStatus, cancelled_at: datetime
) -> EventCancelled:
    return EventCancelled(
        event_id=event.id,
        version=event.version,
        organizer_id=event.organizer_id,
        name=event.name,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        venue_id=event.venue_id,
        previous_status=previous_status.value,
        reason=event.cancellation_reason,
        cancelled_at=cancelled_at,
    )


def review_posted_message(review: Review, event: Event) -> ReviewPosted:
    return ReviewPosted(
        review_id=review.id,
        event_id=event.id,
        organizer_id=event.organizer_id,
        author_id=review.author_id,
        rating=review.rating,
        comment=review.comment,
        created_at=review.created_at,
    )


def review_replied_message(review: Review, event: Event) -> ReviewReplied:
    """Once the reply is set on ``review``."""
    assert review.reply is not None
    assert review.replied_by is not None
    assert review.replied_at is not None
    return ReviewReplied(
        review_id=review.id,
        event_id=event.id,
        author_id=review.author_id,
        replied_by=review.replied_by,
        reply=review.reply,
        replied_at=review.replied_at,
    )
