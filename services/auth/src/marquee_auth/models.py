"""Tables of the auth service. Every timestamp is a UTC ``timestamptz``.

Secrets are never stored as they are: passwords as argon2id hashes, refresh and emailed
tokens as SHA-256 digests. Signing keys are the exception the JWT scheme needs; see
:class:`SigningKey`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)


def _now_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class User(Base):
    """An account. Deleting one scrubs every personal column and keeps the id as a
    tombstone (``deleted_at`` set), so late requests about it get a clear answer."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    """Lower-cased. NULL only for a deleted account."""
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_email: Mapped[str | None] = mapped_column(String(254))
    """A new address waiting for its verification link to be used."""
    password_hash: Mapped[str | None] = mapped_column(Text)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(35))
    phone: Mapped[str | None] = mapped_column(String(16))
    roles: Mapped[list[str]] = mapped_column(
        ARRAY(String(20)), nullable=False, server_default=text("ARRAY['customer']::varchar[]")
    )
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = _now_column()
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("users_email_key", "email", unique=True),
        CheckConstraint("email = lower(email)", name="users_email_lower_case"),
        CheckConstraint(
            "deleted_at IS NOT NULL OR email IS NOT NULL", name="users_live_accounts_have_email"
        ),
    )


class RefreshTokenFamily(Base):
    """One sign-in on one device: every refresh token rotated from one login.

    Revoking the family ends that session; reusing a token the family already rotated
    revokes it, because only a stolen copy could be presented twice.
    """

    __tablename__ = "refresh_token_families"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = _now_column()
    last_used_at: Mapped[datetime] = _now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    """When its newest token expires; the family is over after that."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index(
            "refresh_token_families_live_by_user",
            "user_id",
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )


class RefreshToken(Base):
    """One refresh token (its SHA-256 digest). ``used_at`` is set when it is rotated."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("refresh_token_families.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    issued_at: Mapped[datetime] = _now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OneTimeToken(Base):
    """An emailed single-use token (its SHA-256 digest): verify an address, reset a password."""

    __tablename__ = "one_time_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    purpose: Mapped[str] = mapped_column(String(30), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    """The address the token was sent to (for verification: the one it proves)."""
    created_at: Mapped[datetime] = _now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("one_time_tokens_by_user_purpose", "user_id", "purpose"),
        CheckConstraint(
            "purpose IN ('verify-email', 'reset-password')", name="one_time_tokens_purpose"
        ),
    )


class SigningKey(Base):
    """An Ed25519 key pair that signs access tokens.

    ``state``: ``next`` (published in the JWKS, signs from ``activates_at``), ``active``
    (signs), ``retired`` (published until every token it signed has expired, then deleted).

    The private key is stored as a PKCS#8 PEM in this database. That is acceptable only
    because this database is auth's alone; production should encrypt the column with a
    key from a secret manager (or keep the keys in a KMS/HSM) — see docs/services/auth.md.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(10), nullable=False)
    private_key_pem: Mapped[str] = mapped_column(Text, nullable=False)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False)
    created_at: Mapped[datetime] = _now_column()
    activates_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("state IN ('next', 'active', 'retired')", name="signing_keys_state"),
        CheckConstraint(
            "(state = 'retired') = (retired_at IS NOT NULL)", name="signing_keys_retired_at"
        ),
        Index(
            "signing_keys_one_active",
            "state",
            unique=True,
            postgresql_where=text("state = 'active'"),
        ),
    )
