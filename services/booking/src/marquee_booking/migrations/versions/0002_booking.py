"""Booking: its catalog copy, orders and lines, tickets, check-ins, promo codes, refunds, people.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:46:54.539658
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
    op.create_table('booking_events',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('organizer_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('venue_name', sa.String(length=200), nullable=False),
    sa.Column('service_fee_minor', sa.Integer(), server_default='0', nullable=False),
    sa.Column('buyer_refund_hours', sa.Integer(), nullable=True),
    sa.Column('signing_key', sa.LargeBinary(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('buyer_refund_hours IS NULL OR buyer_refund_hours >= 0', name='refund_h'),
    sa.CheckConstraint('service_fee_minor >= 0', name='service_fee_not_negative'),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index(op.f('ix_booking_events_organizer_id'), 'booking_events', ['organizer_id'], unique=False)
    op.create_table('checkins',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('ticket_id', sa.UUID(), nullable=True),
    sa.Column('result', sa.String(length=20), nullable=False),
    sa.Column('gate', sa.String(length=100), nullable=True),
    sa.Column('device_id', sa.String(length=100), nullable=True),
    sa.Column('scan_id', sa.String(length=100), nullable=True),
    sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('scanned_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id', 'device_id', 'scan_id', name='offline_scan_once')
    )
    op.create_index('first_scan_wins', 'checkins', ['ticket_id'], unique=True, postgresql_where=sa.text("result = 'valid'"))
    op.create_index(op.f('ix_checkins_event_id'), 'checkins', ['event_id'], unique=False)
    op.create_table('people',
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.PrimaryKeyConstraint('user_id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('booking_ticket_types',
    sa.Column('ticket_type_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['booking_events.event_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_type_id')
    )
    op.create_index(op.f('ix_booking_ticket_types_event_id'), 'booking_ticket_types', ['event_id'], unique=False)
    op.create_table('event_staff',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['booking_events.event_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'user_id')
    )
    op.create_table('promo_codes',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('ticket_type_id', sa.UUID(), nullable=True),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('max_uses_per_user', sa.Integer(), nullable=True),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('uses', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind = 'percent' AND value BETWEEN 1 AND 10000) OR (kind = 'amount' AND value > 0)", name='promo_value'),
    sa.CheckConstraint("kind IN ('percent', 'amount')", name='promo_kind'),
    sa.CheckConstraint('uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)', name='promo_uses'),
    sa.ForeignKeyConstraint(['event_id'], ['booking_events.event_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id', 'code', name='promo_code_per_event')
    )
    op.create_table('orders',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('hold_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal_minor', sa.BigInteger(), nullable=False),
    sa.Column('discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fees_minor', sa.BigInteger(), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('refunded_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('promo_code_id', sa.UUID(), nullable=True),
    sa.Column('promo_code', sa.String(length=64), nullable=True),
    sa.Column('promo_use_held', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_reason', sa.String(length=40), nullable=True),
    sa.Column('payment_id', sa.UUID(), nullable=True),
    sa.Column('paid_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending_payment', 'confirming', 'paid', 'expired', 'cancelled', 'failed', 'refunding', 'refunded', 'partially_refunded')", name='order_status'),
    sa.CheckConstraint('refunded_minor >= 0 AND refunded_minor <= paid_minor', name='refunded'),
    sa.CheckConstraint('total_minor = subtotal_minor - discount_minor + fees_minor AND total_minor >= 0', name='order_total'),
    sa.ForeignKeyConstraint(['event_id'], ['booking_events.event_id'], ),
    sa.ForeignKeyConstraint(['promo_code_id'], ['promo_codes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hold_id')
    )
    op.create_index('orders_by_event', 'orders', ['event_id', 'created_at'], unique=False)
    op.create_index('orders_by_user', 'orders', ['user_id', 'created_at'], unique=False)
    op.create_table('order_lines',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('ticket_type_id', sa.UUID(), nullable=False),
    sa.Column('ticket_type_name', sa.String(length=200), nullable=False),
    sa.Column('seat_id', sa.String(length=200), nullable=True),
    sa.Column('unit_price_minor', sa.BigInteger(), nullable=False),
    sa.Column('discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('refunded', sa.Boolean(), server_default='false', nullable=False),
    sa.CheckConstraint('total_minor = unit_price_minor - discount_minor + fee_minor AND total_minor >= 0', name='order_line_total'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'position', name='order_line_position')
    )
    op.create_index(op.f('ix_order_lines_order_id'), 'order_lines', ['order_id'], unique=False)
    op.create_table('refunds',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('ticket_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name='refund_positive'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_refunds_order_id'), 'refunds', ['order_id'], unique=False)
    op.create_table('tickets',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('order_line_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('holder_id', sa.String(length=200), nullable=False),
    sa.Column('ticket_type_id', sa.UUID(), nullable=False),
    sa.Column('seat_id', sa.String(length=200), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('barcode', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('revoked_reason', sa.String(length=40), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replaces_ticket_id', sa.UUID(), nullable=True),
    sa.CheckConstraint("status IN ('valid', 'revoked')", name='ticket_status'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('one_live_ticket_per_line', 'tickets', ['order_line_id'], unique=True, postgresql_where=sa.text("status = 'valid'"))
    op.create_index('tickets_by_event', 'tickets', ['event_id', 'status'], unique=False)
    op.create_index('tickets_by_holder', 'tickets', ['holder_id', 'issued_at'], unique=False)


def downgrade() -> None:
    op.drop_index('tickets_by_holder', table_name='tickets')
    op.drop_index('tickets_by_event', table_name='tickets')
    op.drop_index('one_live_ticket_per_line', table_name='tickets', postgresql_where=sa.text("status = 'valid'"))
    op.drop_table('tickets')
    op.drop_index(op.f('ix_refunds_order_id'), table_name='refunds')
    op.drop_table('refunds')
    op.drop_index(op.f('ix_order_lines_order_id'), table_name='order_lines')
    op.drop_table('order_lines')
    op.drop_index('orders_by_user', table_name='orders')
    op.drop_index('orders_by_event', table_name='orders')
    op.drop_table('orders')
    op.drop_table('promo_codes')
    op.drop_table('event_staff')
    op.drop_index(op.f('ix_booking_ticket_types_event_id'), table_name='booking_ticket_types')
    op.drop_table('booking_ticket_types')
    op.drop_table('people')
    op.drop_index(op.f('ix_checkins_event_id'), table_name='checkins')
    op.drop_index('first_scan_wins', table_name='checkins', postgresql_where=sa.text("result = 'valid'"))
    op.drop_table('checkins')
    op.drop_index(op.f('ix_booking_events_organizer_id'), table_name='booking_events')
    op.drop_table('booking_events')
