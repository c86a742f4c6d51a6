"""The catalog: venues, events, ticket types, reviews and ticket holders.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
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
        "venues",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("seating_map", postgresql.JSONB(), nullable=False),
        sa.Column("seated_seats", sa.Integer(), nullable=False),
        sa.Column("price_categories", postgresql.ARRAY(sa.String(40)), nullable=False),
        sa.Column("general_admission", postgresql.JSONB(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name="venues_latitude_range"),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name="venues_longitude_range"),
        sa.CheckConstraint("capacity > 0", name="venues_capacity_positive"),
    )
    op.create_index("venues_owner_created", "venues", ["owner_id", "created_at", "id"])

    op.create_table(
        "events",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("organizer_id", sa.String(200), nullable=False),
        sa.Column("venue_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(40)), nullable=False),
        sa.Column("image_urls", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sale_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("high_demand", sa.Boolean(), nullable=False),
        sa.Column("max_tickets_per_order", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cancellation_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["venue_id"], ["venues.id"], name="events_venue_id_fkey"),
        sa.CheckConstraint("ends_at > starts_at", name="events_ends_after_start"),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'on_sale', 'sold_out', 'cancelled', 'completed')",
            name="events_status_known",
        ),
        sa.CheckConstraint("version > 0", name="events_version_positive"),
    )
    op.create_index(
        "events_organizer_created",
        "events",
        ["organizer_id", "created_at", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "events_live_by_start",
        "events",
        ["starts_at", "id"],
        postgresql_where=sa.text(
            "deleted_at IS NULL AND status IN ('published', 'on_sale', 'sold_out')"
        ),
    )
    op.create_index("events_venue", "events", ["venue_id"])

    op.create_table(
        "ticket_types",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("price_category", sa.String(40), nullable=True),
        sa.Column("general_admission_area", sa.String(100), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("sale_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sale_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("min_per_order", sa.Integer(), nullable=False),
        sa.Column("max_per_order", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name="ticket_types_event_id_fkey", ondelete="CASCADE"
        ),
        sa.CheckConstraint("price_minor >= 0", name="ticket_types_price_not_negative"),
        sa.CheckConstraint(
            "(price_category IS NULL) <> (general_admission_area IS NULL)",
            name="ticket_types_seated_or_general_admission",
        ),
        sa.CheckConstraint(
            "min_per_order >= 1 AND max_per_order >= min_per_order",
            name="ticket_types_order_limits",
        ),
    )
    op.create_index(
        "ticket_types_event_name",
        "ticket_types",
        ["event_id", sa.text("lower(name)")],
        unique=True,
    )

    op.create_table(
        "reviews",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("author_id", sa.String(200), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("replied_by", sa.String(200), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="reviews_event_id_fkey"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="reviews_rating_range"),
    )
    op.create_index("reviews_event_author", "reviews", ["event_id", "author_id"], unique=True)
    op.create_index("reviews_event_created", "reviews", ["event_id", "created_at", "id"])
    op.create_index("reviews_author", "reviews", ["author_id"])

    op.create_table(
        "ticket_holders",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("first_ticket_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("first_issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("event_id", "user_id", name="ticket_holders_pkey"),
    )
    op.create_index("ticket_holders_user", "ticket_holders", ["user_id"])


def downgrade() -> None:
    op.drop_table("ticket_holders")
    op.drop_table("reviews")
    op.drop_table("ticket_types")
    op.drop_table("events")
    op.drop_table("venues")
