"""Payments: payments, provider events, refunds, the ledger, fraud decisions, known orders, the simulator.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:58:54.159926
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
    op.create_table('fraud_decisions',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('payment_id', sa.UUID(), nullable=True),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('reasons', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_fraud_decisions_order_id'), 'fraud_decisions', ['order_id'], unique=False)
    op.create_table('known_orders',
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('fees_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('movement', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('payment_id', sa.UUID(), nullable=True),
    sa.Column('account', sa.String(length=100), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('charge', 'refund', 'dispute')", name='ledger_kind'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('movement', 'account', name='one_leg_per_account')
    )
    op.create_index(op.f('ix_ledger_entries_order_id'), 'ledger_entries', ['order_id'], unique=False)
    op.create_table('payments',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_payment_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret', sa.String(length=500), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fees_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('amount_refunded_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('disputed_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('risk_level', sa.String(length=40), nullable=True),
    sa.Column('risk_score', sa.Integer(), nullable=True),
    sa.Column('card_fingerprint', sa.String(length=100), nullable=True),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.Column('review', sa.String(length=20), server_default='none', nullable=False),
    sa.Column('success_reported', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('succeeded_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name='payment_positive'),
    sa.CheckConstraint('amount_refunded_minor >= 0 AND amount_refunded_minor <= amount_minor', name='refunded_within_amount'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id'),
    sa.UniqueConstraint('provider_payment_id')
    )
    op.create_index('payments_by_address', 'payments', ['client_address', 'created_at'], unique=False)
    op.create_index('payments_by_fingerprint', 'payments', ['card_fingerprint', 'created_at'], unique=False)
    op.create_index('payments_by_user', 'payments', ['user_id', 'created_at'], unique=False)
    op.create_table('provider_events',
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('provider_payment_id', sa.String(length=255), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider', 'event_id')
    )
    op.create_index(op.f('ix_provider_events_provider_payment_id'), 'provider_events', ['provider_payment_id'], unique=False)
    op.create_table('refunds',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('booking_refund_id', sa.UUID(), nullable=True),
    sa.Column('payment_id', sa.UUID(), nullable=True),
    sa.Column('order_id', sa.UUID(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('provider_refund_id', sa.String(length=255), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name='refund_positive'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('booking_refund_id'),
    sa.UniqueConstraint('provider_refund_id')
    )
    op.create_index(op.f('ix_refunds_order_id'), 'refunds', ['order_id'], unique=False)
    op.create_index(op.f('ix_refunds_payment_id'), 'refunds', ['payment_id'], unique=False)
    op.create_table('simulated_intents',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('client_secret', sa.String(length=200), nullable=False),
    sa.Column('order_id', sa.UUID(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('charge_id', sa.String(length=64), nullable=True),
    sa.Column('amount_refunded_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('card_fingerprint', sa.String(length=100), nullable=True),
    sa.Column('risk_score', sa.Integer(), nullable=True),
    sa.Column('failure_message', sa.String(length=500), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    op.create_table('simulated_refunds',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('intent_id', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    op.create_index(op.f('ix_simulated_refunds_intent_id'), 'simulated_refunds', ['intent_id'], unique=False)
    op.create_table('simulated_webhooks',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index(op.f('ix_simulated_webhooks_next_attempt_at'), 'simulated_webhooks', ['next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_simulated_webhooks_next_attempt_at'), table_name='simulated_webhooks')
    op.drop_table('simulated_webhooks')
    op.drop_index(op.f('ix_simulated_refunds_intent_id'), table_name='simulated_refunds')
    op.drop_table('simulated_refunds')
    op.drop_table('simulated_intents')
    op.drop_index(op.f('ix_refunds_payment_id'), table_name='refunds')
    op.drop_index(op.f('ix_refunds_order_id'), table_name='refunds')
    op.drop_table('refunds')
    op.drop_index(op.f('ix_provider_events_provider_payment_id'), table_name='provider_events')
    op.drop_table('provider_events')
    op.drop_index('payments_by_user', table_name='payments')
    op.drop_index('payments_by_fingerprint', table_name='payments')
    op.drop_index('payments_by_address', table_name='payments')
    op.drop_table('payments')
    op.drop_index(op.f('ix_ledger_entries_order_id'), table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_table('known_orders')
    op.drop_index(op.f('ix_fraud_decisions_order_id'), table_name='fraud_decisions')
    op.drop_table('fraud_decisions')
