"""Tables of the inventory service: the catalog it sells from, and what is sold.

PostgreSQL is the last guard against selling a place twice: ``sold_seats`` has one row
per (event, seat) — its primary key is the unique constraint — and each general-admission
ticket type's ``sold`` is checked against its ``capacity`` by the database. Holds are not
here: they live in Redis only (docs/decisions/0008-holds-in-redis.md). ``admission_gates``
says which events sell through the waiting room (holds need an admission token).
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
    ForeignKeyConstraint,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)


class InventoryEvent(Base):
    """An event inventory sells, as of the newest catalog snapshot applied."""

    __tablename__ = "inventory_events"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    organizer_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    sale_starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sale_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    max_tickets_per_order: Mapped[int] = mapped_column(Integer)
    high_demand: Mapped[bool] = mapped_column(Boolean)
    hold_ttl_seconds: Mapped[int] = mapped_column(Integer, server_default="300")
    seating_loaded: Mapped[bool] = mapped_column(Boolean, server_default="false")
    """Its seats are in ``inventory_seats`` (the published seating was applied)."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("hold_ttl_seconds BETWEEN 30 AND 3600", name="hold_ttl_range"),
    )


class InventoryTicketType(Base):
    __tablename__ = "inventory_ticket_types"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    price_category: Mapped[str | None] = mapped_column(String(200))
    capacity: Mapped[int | None] = mapped_column(Integer)
    """General admission: places it sells. Null for seated types."""
    sold: Mapped[int] = mapped_column(Integer, server_default="0")
    sale_starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sale_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    min_per_order: Mapped[int] = mapped_column(Integer)
    max_per_order: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    """False once the catalog no longer lists it (its sold places stay sold)."""

    __table_args__ = (
        ForeignKeyConstraint(["event_id"], ["inventory_events.event_id"], ondelete="CASCADE"),
        CheckConstraint(
            "sold >= 0 AND (capacity IS NULL OR sold <= capacity)", name="sold_within_capacity"
        ),
    )


class InventorySeat(Base):
    __tablename__ = "inventory_seats"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    seat_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    section: Mapped[str] = mapped_column(String(500))
    section_rank: Mapped[int] = mapped_column(Integer)
    row_label: Mapped[str] = mapped_column(String(200))
    row_index: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    row_length: Mapped[int] = mapped_column(Integer)
    price_category: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        ForeignKeyConstraint(["event_id"], ["inventory_events.event_id"], ondelete="CASCADE"),
    )


class SoldSeat(Base):
    """A seat sold to an order: at most one row per (event, seat), ever at once."""

    __tablename__ = "sold_seats"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    seat_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    sold_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        ForeignKeyConstraint(
            ["event_id", "seat_id"], ["inventory_seats.event_id", "inventory_seats.seat_id"]
        ),
    )


class Sale(Base):
    """The outcome for one paid order (so a redelivered order-paid answers the same)."""

    __tablename__ = "sales"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    hold_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    """``confirmed`` or ``rejected``."""
    general_admission: Mapped[list[Any]] = mapped_column(JSONB)
    """``[[ticket type id, quantity], …]`` sold (for returns)."""
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("outcome IN ('confirmed', 'rejected')", name="sale_outcome"),)


class ReturnedPlace(Base):
    """A ticket whose place was given back (its cancellation applied once)."""

    __tablename__ = "returned_places"

    ticket_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    returned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AdmissionGate(Base):
    """Whether holds for an event need a waiting-room admission token, as of the newest
    ``waitroom.onsale-configured.v1`` applied. No foreign key: the waitroom may configure
    an on-sale before the event is published here."""

    __tablename__ = "admission_gates"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    required: Mapped[bool] = mapped_column(Boolean)
    configured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The message's ``configured_at``: only a newer one replaces this row."""
