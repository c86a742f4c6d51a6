"""Tables of the booking service: its copy of the catalog, orders, tickets, check-ins,
promo codes, refunds and the people it can transfer tickets to.

PostgreSQL guards what must never happen twice: one order per hold (``orders.hold_id``
unique), one live ticket per order line (a partial unique index), one accepted scan per
ticket (a partial unique index on ``checkins``), a promo code's uses within its limit
(``CHECK``). Money is integer minor units with its ISO 4217 currency.
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
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)

ORDER_STATUSES = (
    "pending_payment",
    "confirming",
    "paid",
    "expired",
    "cancelled",
    "failed",
    "refunding",
    "refunded",
    "partially_refunded",
)


class BookingEvent(Base):
    """An event booking sells, from the catalog snapshots, plus booking's own settings
    (service fee, refund policy) and the event's barcode signing key."""

    __tablename__ = "booking_events"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    organizer_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    time_zone: Mapped[str] = mapped_column(String(64))
    venue_name: Mapped[str] = mapped_column(String(200))
    service_fee_minor: Mapped[int] = mapped_column(Integer, server_default="0")
    """Added to every ticket's price (organizer setting, booking's own)."""
    buyer_refund_hours: Mapped[int | None] = mapped_column(Integer)
    """Buyers may ask for a refund until this many hours before the start; null: never."""
    cancellation_handled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    """Its cancellation refunded every paid order and closed every unpaid one (once: a
    snapshot saying ``cancelled`` may arrive before ``event-cancelled``)."""
    signing_key: Mapped[bytes] = mapped_column(LargeBinary)
    """The event's Ed25519 private key (32 bytes) that signs its barcodes."""
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("service_fee_minor >= 0", name="service_fee_not_negative"),
        CheckConstraint("buyer_refund_hours IS NULL OR buyer_refund_hours >= 0", name="refund_h"),
    )


class BookingTicketType(Base):
    """A ticket type's price, as the newest snapshot says: orders are priced from here."""

    __tablename__ = "booking_ticket_types"

    ticket_type_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("booking_events.event_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class EventStaff(Base):
    """Someone an organizer named to scan tickets at one event's doors."""

    __tablename__ = "event_staff"

    event_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("booking_events.event_id", ondelete="CASCADE"),
        primary_key=True,
    )
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Person(Base):
    """Who has an account (from auth's topics): a transfer names its recipient by email."""

    __tablename__ = "people"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)


class PromoCode(Base):
    __tablename__ = "promo_codes"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("booking_events.event_id", ondelete="CASCADE")
    )
    code: Mapped[str] = mapped_column(String(64))
    """Upper case; codes are matched case-insensitively."""
    kind: Mapped[str] = mapped_column(String(10))
    """``percent`` (value in basis points of 1 %: 1500 = 15 %) or ``amount`` (minor units)."""
    value: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    ticket_type_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    """Only this ticket type's lines are discounted; null: the whole order."""
    max_uses: Mapped[int | None] = mapped_column(Integer)
    max_uses_per_user: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    uses: Mapped[int] = mapped_column(Integer, server_default="0")
    """Orders holding a use: pending or paid (a closed order gives its use back)."""
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("event_id", "code", name="promo_code_per_event"),
        CheckConstraint("kind IN ('percent', 'amount')", name="promo_kind"),
        CheckConstraint(
            "(kind = 'percent' AND value BETWEEN 1 AND 10000) OR (kind = 'amount' AND value > 0)",
            name="promo_value",
        ),
        CheckConstraint("uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="promo_uses"),
    )


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("booking_events.event_id")
    )
    hold_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger)
    fees_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    promo_code_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("promo_codes.id")
    )
    promo_code: Mapped[str | None] = mapped_column(String(64))
    promo_use_held: Mapped[bool] = mapped_column(Boolean, server_default="false")
    """The order counts in its promo code's ``uses`` (given back when it closes unpaid)."""
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_reason: Mapped[str | None] = mapped_column(String(40))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    """Payments' id of the payment that paid it (from ``payment-succeeded``)."""
    paid_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("orders_by_user", "user_id", "created_at"),
        Index("orders_by_event", "event_id", "created_at"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in ORDER_STATUSES) + ")",
            name="order_status",
        ),
        CheckConstraint(
            "total_minor = subtotal_minor - discount_minor + fees_minor AND total_minor >= 0",
            name="order_total",
        ),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= paid_minor", name="refunded"),
    )


class OrderLine(Base):
    """One place of an order (one seat, or one general-admission place) and its price."""

    __tablename__ = "order_lines"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    ticket_type_name: Mapped[str] = mapped_column(String(200))
    seat_id: Mapped[str | None] = mapped_column(String(200))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[bool] = mapped_column(Boolean, server_default="false")

    __table_args__ = (
        UniqueConstraint("order_id", "position", name="order_line_position"),
        CheckConstraint(
            "total_minor = unit_price_minor - discount_minor + fee_minor AND total_minor >= 0",
            name="order_line_total",
        ),
    )


class Ticket(Base):
    """A right to enter, for one order line. A transfer or reissue revokes the ticket and
    issues a new one for the same line: only one ticket per line is ever live."""

    __tablename__ = "tickets"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("orders.id"))
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("order_lines.id")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    holder_id: Mapped[str] = mapped_column(String(200))
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    seat_id: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    barcode: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    """``valid`` or ``revoked``."""
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    """``refunded``, ``transferred``, ``event-cancelled``."""
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaces_ticket_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

    __table_args__ = (
        Index(
            "one_live_ticket_per_line",
            "order_line_id",
            unique=True,
            postgresql_where=text("status = 'valid'"),
        ),
        Index("tickets_by_holder", "holder_id", "issued_at"),
        Index("tickets_by_event", "event_id", "status"),
        CheckConstraint("status IN ('valid', 'revoked')", name="ticket_status"),
    )


class CheckIn(Base):
    """A scan of a ticket at a door: the first accepted scan per ticket wins (a partial
    unique index), every other scan is kept too, with what it was told."""

    __tablename__ = "checkins"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    result: Mapped[str] = mapped_column(String(20))
    gate: Mapped[str | None] = mapped_column(String(100))
    device_id: Mapped[str | None] = mapped_column(String(100))
    scan_id: Mapped[str | None] = mapped_column(String(100))
    """The device's own id for an offline scan, so an upload retried is applied once."""
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    scanned_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        Index(
            "first_scan_wins",
            "ticket_id",
            unique=True,
            postgresql_where=text("result = 'valid'"),
        ),
        UniqueConstraint("event_id", "device_id", "scan_id", name="offline_scan_once"),
    )


class Refund(Base):
    """Money booking asked payments to give back, and what became of it."""

    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orders.id"), index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    """``requested``, ``succeeded``, ``failed``."""
    ticket_ids: Mapped[list[Any]] = mapped_column(JSONB)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("amount_minor > 0", name="refund_positive"),)
