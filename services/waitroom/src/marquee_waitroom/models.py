"""Tables of the waitroom service: on-sale configurations, their seeds, signing keys, and
the events it knows (who organizes them).

The queue itself is in Redis (:mod:`marquee_waitroom.queue`): joins and admissions never
wait on PostgreSQL. What must outlive Redis is here: each on-sale's configuration and the
seed its fairness commitment was made with.
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
    Index,
    Integer,
    LargeBinary,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)


class WaitroomEvent(Base):
    """An event as of the newest catalog snapshot applied: enough to know its organizer."""

    __tablename__ = "waitroom_events"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    organizer_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OnSale(Base):
    """How one event's sale goes through the waiting room."""

    __tablename__ = "onsales"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    queue_opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sale_starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    max_active: Mapped[int | None] = mapped_column(Integer)
    """Shoppers admitted and not yet done at once; null = only the adaptive limit."""
    admission_window_seconds: Mapped[int] = mapped_column(Integer)
    grace_seconds: Mapped[int] = mapped_column(Integer)
    adaptive: Mapped[bool] = mapped_column(Boolean)
    seed: Mapped[bytes] = mapped_column(LargeBinary)
    """Secret until the sale starts; its SHA-256 is published from the first moment."""
    seed_commitment: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("sale_starts_at >= queue_opens_at", name="starts_after_opening"),
        CheckConstraint("max_active IS NULL OR max_active >= 1", name="max_active_positive"),
        CheckConstraint("adaptive OR max_active IS NOT NULL", name="some_limit"),
        CheckConstraint(
            "admission_window_seconds BETWEEN 30 AND 3600", name="admission_window_range"
        ),
        CheckConstraint("grace_seconds BETWEEN 0 AND 3600", name="grace_range"),
    )


class AdmissionSigningKey(Base):
    """An Ed25519 key admission tokens are signed with; every key here is in the JWKS."""

    __tablename__ = "admission_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key_pem: Mapped[str] = mapped_column(String(400))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WaitlistEntry(Base):
    """A fan waiting for places of a sold-out event's ticket type to come back.

    ``state``: ``waiting`` → ``offered`` (an admission for ``quantity`` places until
    ``offer_expires_at``) → ``bought``; or ``expired`` (not taken in time: the places pass to
    the next fan), or ``left``. ``passed_over`` counts rounds in which a smaller party
    behind this one got an offer; at :data:`marquee_waitroom.waitlist.PASS_LIMIT` nobody
    behind it is offered that ticket type until its party fits."""

    __tablename__ = "waitlist_entries"

    entry_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    passed_over: Mapped[int] = mapped_column(Integer, server_default="0")
    offers: Mapped[int] = mapped_column(Integer, server_default="0")
    offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 50", name="quantity_range"),
        CheckConstraint(
            "state IN ('waiting', 'offered', 'bought', 'expired', 'left')", name="state_known"
        ),
        Index(
            "waitlist_one_live_entry",
            "event_id",
            "user_id",
            unique=True,
            postgresql_where=text("state IN ('waiting', 'offered')"),
        ),
        Index("waitlist_line", "event_id", "ticket_type_id", "state", "joined_at"),
    )
