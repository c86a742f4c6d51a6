"""Tables of the events service.

The seating map is one JSONB document per venue: this service never queries single seats
(inventory owns seat state), it validates and hands out the whole map, so a document
keeps writes atomic and reads one row. Every other business fact is a column.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)

_LIVE_STATUSES_SQL = "status IN ('published', 'on_sale', 'sold_out')"


class Venue(Base):
    __tablename__ = "venues"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    time_zone: Mapped[str] = mapped_column(String(64))
    capacity: Mapped[int] = mapped_column(Integer)
    seating_map: Mapped[dict[str, Any]] = mapped_column(
        JSONB, deferred=True, deferred_raiseload=True
    )
    """Up to 40,000 seats: loaded only where the seats are needed (``undefer``)."""
    seated_seats: Mapped[int] = mapped_column(Integer)
    price_categories: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    general_admission: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    """``[{"name", "capacity"}]``: the map's areas, kept beside it so rules that need only
    the summary don't load every seat."""
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="venues_latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="venues_longitude_range"),
        CheckConstraint("capacity > 0", name="venues_capacity_positive"),
        Index("venues_owner_created", "owner_id", "created_at", "id"),
    )


class Event(Base):
    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    organizer_id: Mapped[str] = mapped_column(String(200))
    venue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("venues.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(40))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    image_urls: Mapped[list[str]] = mapped_column(ARRAY(Text))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sale_starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sale_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    high_demand: Mapped[bool] = mapped_column(Boolean)
    max_tickets_per_order: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    cancellation_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    venue: Mapped[Venue] = relationship(lazy="raise")

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="events_ends_after_start"),
        CheckConstraint(
            "status IN ('draft', 'published', 'on_sale', 'sold_out', 'cancelled', 'completed')",
            name="events_status_known",
        ),
        CheckConstraint("version > 0", name="events_version_positive"),
        # GET /events/mine
        Index(
            "events_organizer_created",
            "organizer_id",
            "created_at",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # GET /events (upcoming public events)
        Index(
            "events_live_by_start",
            "starts_at",
            "id",
            postgresql_where=text(f"deleted_at IS NULL AND {_LIVE_STATUSES_SQL}"),
        ),
        # a venue change re-sends its events' snapshots and checks for live ones
        Index("events_venue", "venue_id"),
    )


class TicketType(Base):
    __tablename__ = "ticket_types"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    price_category: Mapped[str | None] = mapped_column(String(40))
    general_admission_area: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int | None] = mapped_column(Integer)
    sale_starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sale_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    min_per_order: Mapped[int] = mapped_column(Integer)
    max_per_order: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="ticket_types_price_not_negative"),
        CheckConstraint(
            "(price_category IS NULL) <> (general_admission_area IS NULL)",
            name="ticket_types_seated_or_general_admission",
        ),
        CheckConstraint(
            "min_per_order >= 1 AND max_per_order >= min_per_order",
            name="ticket_types_order_limits",
        ),
        Index("ticket_types_event_name", "event_id", text("lower(name)"), unique=True),
    )


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    author_id: Mapped[str] = mapped_column(String(200))
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reply: Mapped[str | None] = mapped_column(Text)
    replied_by: Mapped[str | None] = mapped_column(String(200))
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="reviews_rating_range"),
        # one review per person and event; also serves "has this person reviewed it?"
        Index("reviews_event_author", "event_id", "author_id", unique=True),
        # GET /events/{id}/reviews, newest first
        Index("reviews_event_created", "event_id", "created_at", "id"),
        # erasing a deleted user's reviews
        Index("reviews_author", "author_id"),
    )


class TicketHolder(Base):
    """Who held a ticket to which event, as booking told us (``booking.ticket-issued.v1``).

    No foreign key to ``events``: it mirrors another service's facts, which may arrive in
    any order relative to ours.
    """

    __tablename__ = "ticket_holders"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    first_ticket_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    first_issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    # erasing a deleted user
    __table_args__ = (Index("ticket_holders_user", "user_id"),)
