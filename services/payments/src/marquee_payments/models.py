"""Tables of the payments service: payments (one per order), the provider's webhook events
(each applied once), refunds, the double-entry ledger, fraud reviews, its copy of the
orders it is paid for, and the simulated provider's own state.

No card data is ever here: the provider holds it (PCI SAQ-A). PostgreSQL guards what
must not happen twice: one payment per order and per PaymentIntent, one application per
provider event id, one ledger posting per (movement, account).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)


class KnownOrder(Base):
    """An order as booking announced it: what may be charged for it, until when."""

    __tablename__ = "known_orders"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    fees_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(20))
    """As booking last said: ``pending``, ``confirmed`` (tickets issued), ``closed``."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Payment(Base):
    """The payment of one order: one PaymentIntent at the provider."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    user_id: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    provider: Mapped[str] = mapped_column(String(20))
    provider_payment_id: Mapped[str] = mapped_column(String(255), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(500))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    fees_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(30))
    """Stripe's PaymentIntent statuses, plus ``failed`` (a refusal was reported) and
    ``refunded``; only ever moves forward (see ``state.py``)."""
    amount_refunded_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    disputed_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    risk_level: Mapped[str | None] = mapped_column(String(40))
    risk_score: Mapped[int | None] = mapped_column(Integer)
    card_fingerprint: Mapped[str | None] = mapped_column(String(100))
    client_address: Mapped[str | None] = mapped_column(String(64))
    review: Mapped[str] = mapped_column(String(20), server_default="none")
    """``none``, ``pending`` (held for an admin), ``approved``, ``refunded``."""
    success_reported: Mapped[bool] = mapped_column(server_default="false")
    """``payment-succeeded`` was published (at most once)."""
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The ``created`` time of the newest provider event that moved the payment: an
    in-flight event older than it (a late ``payment_failed``) is stale."""

    __table_args__ = (
        Index("payments_by_user", "user_id", "created_at"),
        Index("payments_by_fingerprint", "card_fingerprint", "created_at"),
        Index("payments_by_address", "client_address", "created_at"),
        CheckConstraint("amount_minor > 0", name="payment_positive"),
        CheckConstraint(
            "amount_refunded_minor >= 0 AND amount_refunded_minor <= amount_minor",
            name="refunded_within_amount",
        ),
    )


class ProviderEventRecord(Base):
    """A webhook event, applied once: its id is the primary key."""

    __tablename__ = "provider_events"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    provider_payment_id: Mapped[str | None] = mapped_column(String(255), index=True)
    outcome: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RefundRecord(Base):
    """A refund: asked for by booking (its id is booking's), or found at the provider."""

    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    booking_refund_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), unique=True)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    """``pending``, ``succeeded``, ``failed``."""
    provider_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("amount_minor > 0", name="refund_positive"),)


class LedgerEntry(Base):
    """One leg of a money movement. Debits are positive, credits negative; the legs of a
    movement (``movement``) add up to zero, so every order's entries and the whole
    ledger balance to zero (checked by ``marquee payments reconcile``)."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    movement: Mapped[str] = mapped_column(String(300))
    """``charge:<intent>``, ``refund:<provider refund>``, ``dispute:<dispute>``."""
    kind: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    account: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("movement", "account", name="one_leg_per_account"),
        CheckConstraint("kind IN ('charge', 'refund', 'dispute')", name="ledger_kind"),
    )


class FraudDecision(Base):
    """Every fraud decision, with its reasons: allowed, held for review, refused, and an
    admin's approval or refund of a held payment."""

    __tablename__ = "fraud_decisions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    stage: Mapped[str] = mapped_column(String(20))
    """``intent`` (before the charge), ``charge`` (the provider's risk), ``review``."""
    decision: Mapped[str] = mapped_column(String(20))
    """``allow``, ``refuse``, ``review``, ``approve``, ``refund``."""
    reasons: Mapped[list[Any]] = mapped_column(JSONB)
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ---- the simulated provider (make dev): its own state, as a provider would keep it --------


class SimulatedIntent(Base):
    __tablename__ = "simulated_intents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    client_secret: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(500))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    status: Mapped[str] = mapped_column(String(40))
    charge_id: Mapped[str | None] = mapped_column(String(64))
    amount_refunded_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    card_fingerprint: Mapped[str | None] = mapped_column(String(100))
    risk_score: Mapped[int | None] = mapped_column(Integer)
    failure_message: Mapped[str | None] = mapped_column(String(500))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SimulatedRefund(Base):
    __tablename__ = "simulated_refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    intent_id: Mapped[str] = mapped_column(String(64), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SimulatedWebhook(Base):
    """A signed event the simulator owes the webhook endpoint; retried until answered 2xx
    (as Stripe retries), so a payments process that was down still gets it."""

    __tablename__ = "simulated_webhooks"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
