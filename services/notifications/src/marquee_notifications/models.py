"""Tables of the notifications service.

What it keeps so that it never has to call another service while it writes to someone:

- ``recipients``: each account's address and language, from auth's events (erased on
  ``auth.user-deleted.v1``);
- ``notification_events``: each event as of its newest snapshot (name, time, venue, time
  zone), to write about it and to see what changed;
- ``holdings``: who holds which ticket of which event, to reach every holder, and
  ``notification_orders``: whose order is whose;
- ``messages``: every message to send, one row per (cause, recipient, kind), which is what
  makes a message go out once: the consumer inserts it in the transaction that records
  the cause in the inbox, and the sender marks it sent after the SMTP server accepted it;
- ``preferences`` and ``event_settings``: a person's choices and an event's reminder time;
- ``dev_outbox``: what the development SMTP sink received (``make dev`` and tests only).
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
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)

MESSAGE_STATUSES = ("pending", "sending", "sent", "failed", "skipped")
"""``pending`` waits for ``next_attempt_at``; ``sending`` is claimed by a sender until
``next_attempt_at`` (its lease: a sender that died leaves it due again); ``sent`` was
accepted by the SMTP server; ``failed`` gave up (``last_error`` says why; an admin may
retry it); ``skipped`` was never sent on purpose (``last_error`` says why)."""

LANES = ("direct", "bulk")
"""``direct``: one person's own business (an order, a password reset), sent at once.
``bulk``: a fan-out to many (an event cancelled, a reminder), sent at a set rate in its
own lane so that a 50,000-message burst never delays anyone's order confirmation."""


class Recipient(Base):
    """An account as auth described it: where to write, and in which language."""

    __tablename__ = "recipients"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    """Null once the account is deleted."""
    locale: Mapped[str | None] = mapped_column(String(35))
    deleted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Preferences(Base):
    """A person's choices. Transactional messages ignore them; reminders and announcements
    do not go to someone who turned them off."""

    __tablename__ = "preferences"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    reminders: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    announcements: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NotificationEvent(Base):
    """An event as of the newest ``events.event-changed.v1`` applied."""

    __tablename__ = "notification_events"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    organizer_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    time_zone: Mapped[str] = mapped_column(String(64))
    venue: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """``{id, name, address, city, country}``."""
    ticket_types: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    """Ticket type id → name, to name what a ticket is for."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventSettings(Base):
    """What the organizer chose for an event's messages."""

    __tablename__ = "event_settings"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    reminder_hours_before: Mapped[int | None] = mapped_column(Integer)
    """Null: no reminder for this event."""
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(
            "reminder_hours_before IS NULL OR reminder_hours_before BETWEEN 1 AND 720",
            name="reminder_range",
        ),
    )


class Holding(Base):
    """A ticket and who holds it (from booking's ticket events)."""

    __tablename__ = "holdings"

    ticket_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[str] = mapped_column(String(200))
    seat_id: Mapped[str | None] = mapped_column(String(100))
    ticket_type_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    barcode: Mapped[str | None] = mapped_column(Text)
    """For the tickets attached to the confirmation; null for a ticket issued before
    booking put barcodes in its events."""
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    """False once refunded, cancelled or transferred away."""
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_holdings_event_active", "event_id", postgresql_where=text("active")),
        Index("ix_holdings_order", "order_id"),
        Index("ix_holdings_user", "user_id"),
    )


class NotificationOrder(Base):
    """Whose order is whose (from ``booking.order-created.v1``): payments' events name only
    the order."""

    __tablename__ = "notification_orders"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[str] = mapped_column(String(200))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Message(Base):
    """One message to one person for one cause."""

    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    """``<cause>/<recipient>/<kind>``: a second insert for the same is ignored."""
    kind: Mapped[str] = mapped_column(String(60))
    lane: Mapped[str] = mapped_column(String(10))
    transactional: Mapped[bool] = mapped_column(Boolean)
    user_id: Mapped[str | None] = mapped_column(String(200))
    """Null for a message to an address alone (the previous address of an account)."""
    to_address: Mapped[str | None] = mapped_column(String(320))
    """Fixed when the message is made; erased after sending for a deleted account."""
    locale: Mapped[str | None] = mapped_column(String(35))
    event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    cause_type: Mapped[str] = mapped_column(String(120))
    cause_id: Mapped[str] = mapped_column(String(200))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """What the template is given. Secrets in it (a reset token) are erased once sent."""
    status: Mapped[str] = mapped_column(String(10), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'skipped')", name="status_known"
        ),
        CheckConstraint("lane IN ('direct', 'bulk')", name="lane_known"),
        Index(
            "ix_messages_due",
            "lane",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
        Index("ix_messages_user", "user_id", "created_at"),
        Index("ix_messages_failed", "created_at", postgresql_where=text("status = 'failed'")),
        Index(
            "ix_messages_event_kind",
            "event_id",
            "kind",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    @property
    def message_id_header(self) -> str:
        return message_id_header(self.id)


def message_id_header(message_id: uuid.UUID) -> str:
    """The RFC 5322 Message-ID of a message: the same on every attempt, so a message re-sent
    after a crash between the server's acceptance and our record of it is recognisably one."""
    return f"<{message_id}@notifications.marquee>"


class DevOutboxMessage(Base):
    """A message the development SMTP sink accepted (never used in production)."""

    __tablename__ = "dev_outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[list[str]] = mapped_column(JSONB)
    message_id: Mapped[str | None] = mapped_column(String(400))
    subject: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
