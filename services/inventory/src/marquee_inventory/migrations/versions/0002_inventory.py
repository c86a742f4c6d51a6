"""Inventory: events and ticket types it sells, seats, sold seats, sales, returns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
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
        "inventory_events",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("organizer_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True)),
        sa.Column("sale_ends_at", sa.DateTime(timezone=True)),
        sa.Column("max_tickets_per_order", sa.Integer(), nullable=False),
        sa.Column("high_demand", sa.Boolean(), nullable=False),
        sa.Column("hold_ttl_seconds", sa.Integer(), nullable=False, server_default="300"),
        sa.Column("seating_loaded", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("hold_ttl_seconds BETWEEN 30 AND 3600", name="hold_ttl_range"),
    )
    op.create_table(
        "inventory_ticket_types",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("ticket_type_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("price_category", sa.String(200)),
        sa.Column("capacity", sa.Integer()),
        sa.Column("sold", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True)),
        sa.Column("sale_ends_at", sa.DateTime(timezone=True)),
        sa.Column("min_per_order", sa.Integer(), nullable=False),
        sa.Column("max_per_order", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default="true"),
        sa.ForeignKeyConstraint(["event_id"], ["inventory_events.event_id"], ondelete="CASCADE"),
        sa.CheckConstraint(
            "sold >= 0 AND (capacity IS NULL OR sold <= capacity)", name="sold_within_capacity"
        ),
    )
    op.create_table(
        "inventory_seats",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("seat_id", sa.String(200), primary_key=True),
        sa.Column("section", sa.String(500), nullable=False),
        sa.Column("section_rank", sa.Integer(), nullable=False),
        sa.Column("row_label", sa.String(200), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("row_length", sa.Integer(), nullable=False),
        sa.Column("price_category", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["inventory_events.event_id"], ondelete="CASCADE"),
    )
    op.create_table(
        "sold_seats",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("seat_id", sa.String(200), primary_key=True),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("ticket_type_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id", "seat_id"], ["inventory_seats.event_id", "inventory_seats.seat_id"]
        ),
    )
    op.create_index("ix_sold_seats_order_id", "sold_seats", ["order_id"])
    op.create_table(
        "sales",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("hold_id", sa.String(64), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("general_admission", postgresql.JSONB(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('confirmed', 'rejected')", name="sale_outcome"),
    )
    op.create_index("ix_sales_hold_id", "sales", ["hold_id"])
    op.create_index("ix_sales_event_id", "sales", ["event_id"])
    op.create_table(
        "returned_places",
        sa.Column("ticket_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "returned_places",
        "sales",
        "sold_seats",
        "inventory_seats",
        "inventory_ticket_types",
        "inventory_events",
    ):
        op.drop_table(table)
