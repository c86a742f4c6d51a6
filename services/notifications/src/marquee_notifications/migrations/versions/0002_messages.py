"""Notifications: recipients, events, orders, holdings, messages, preferences, the dev
outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dev_outbox',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('mail_from', sa.String(length=320), nullable=False),
    sa.Column('rcpt_to', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('message_id', sa.String(length=400), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('event_settings',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('reminder_hours_before', sa.Integer(), nullable=True),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('reminder_hours_before IS NULL OR reminder_hours_before BETWEEN 1 AND 720', name='reminder_range'),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_table('holdings',
    sa.Column('ticket_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('seat_id', sa.String(length=100), nullable=True),
    sa.Column('ticket_type_id', sa.UUID(), nullable=True),
    sa.Column('barcode', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id')
    )
    op.create_index('ix_holdings_event_active', 'holdings', ['event_id'], unique=False, postgresql_where=sa.text('active'))
    op.create_index('ix_holdings_order', 'holdings', ['order_id'], unique=False)
    op.create_index('ix_holdings_user', 'holdings', ['user_id'], unique=False)
    op.create_table('messages',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=400), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('lane', sa.String(length=10), nullable=False),
    sa.Column('transactional', sa.Boolean(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=True),
    sa.Column('to_address', sa.String(length=320), nullable=True),
    sa.Column('locale', sa.String(length=35), nullable=True),
    sa.Column('event_id', sa.UUID(), nullable=True),
    sa.Column('cause_type', sa.String(length=120), nullable=False),
    sa.Column('cause_id', sa.String(length=200), nullable=False),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=10), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("lane IN ('direct', 'bulk')", name='lane_known'),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'skipped')", name='status_known'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    op.create_index('ix_messages_due', 'messages', ['lane', 'next_attempt_at'], unique=False, postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.create_index('ix_messages_event_kind', 'messages', ['event_id', 'kind'], unique=False, postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.create_index('ix_messages_failed', 'messages', ['created_at'], unique=False, postgresql_where=sa.text("status = 'failed'"))
    op.create_index('ix_messages_user', 'messages', ['user_id', 'created_at'], unique=False)
    op.create_table('notification_events',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('organizer_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('venue', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('ticket_types', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_table('notification_orders',
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_table('preferences',
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('reminders', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('announcements', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('recipients',
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('locale', sa.String(length=35), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )


def downgrade() -> None:
    op.drop_table('recipients')
    op.drop_table('preferences')
    op.drop_table('notification_orders')
    op.drop_table('notification_events')
    op.drop_index('ix_messages_user', table_name='messages')
    op.drop_index('ix_messages_failed', table_name='messages', postgresql_where=sa.text("status = 'failed'"))
    op.drop_index('ix_messages_event_kind', table_name='messages', postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.drop_index('ix_messages_due', table_name='messages', postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.drop_table('messages')
    op.drop_index('ix_holdings_user', table_name='holdings')
    op.drop_index('ix_holdings_order', table_name='holdings')
    op.drop_index('ix_holdings_event_active', table_name='holdings', postgresql_where=sa.text('active'))
    op.drop_table('holdings')
    op.drop_table('event_settings')
    op.drop_table('dev_outbox')
