"""Waitroom: the events it knows, on-sales with their seeds, admission signing keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admission_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_key_pem", sa.String(length=400), nullable=False),
        sa.Column("public_jwk", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_table(
        "onsales",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("queue_opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_active", sa.Integer(), nullable=True),
        sa.Column("admission_window_seconds", sa.Integer(), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column("adaptive", sa.Boolean(), nullable=False),
        sa.Column("seed", sa.LargeBinary(), nullable=False),
        sa.Column("seed_commitment", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("adaptive OR max_active IS NOT NULL", name="some_limit"),
        sa.CheckConstraint(
            "admission_window_seconds BETWEEN 30 AND 3600", name="admission_window_range"
        ),
        sa.CheckConstraint("grace_seconds BETWEEN 0 AND 3600", name="grace_range"),
        sa.CheckConstraint("max_active IS NULL OR max_active >= 1", name="max_active_positive"),
        sa.CheckConstraint("sale_starts_at >= queue_opens_at", name="starts_after_opening"),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "waitroom_events",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("organizer_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:
    op.drop_table("waitroom_events")
    op.drop_table("onsales")
    op.drop_table("admission_keys")
