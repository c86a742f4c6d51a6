"""Waitroom: the sold-out waitlist.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("entry_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("ticket_type_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("passed_over", sa.Integer(), server_default="0", nullable=False),
        sa.Column("offers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('waiting', 'offered', 'bought', 'expired', 'left')", name="state_known"
        ),
        sa.CheckConstraint("quantity BETWEEN 1 AND 50", name="quantity_range"),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index(
        "waitlist_line",
        "waitlist_entries",
        ["event_id", "ticket_type_id", "state", "joined_at"],
        unique=False,
    )
    op.create_index(
        "waitlist_one_live_entry",
        "waitlist_entries",
        ["event_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("state IN ('waiting', 'offered')"),
    )


def downgrade() -> None:
    op.drop_index(
        "waitlist_one_live_entry",
        table_name="waitlist_entries",
        postgresql_where=sa.text("state IN ('waiting', 'offered')"),
    )
    op.drop_index("waitlist_line", table_name="waitlist_entries")
    op.drop_table("waitlist_entries")
