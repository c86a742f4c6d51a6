"""Booking remembers that an event's cancellation was handled (refunds and closures once).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 02:23:44.004204
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('booking_events', sa.Column('cancellation_handled', sa.Boolean(), server_default='false', nullable=False))


def downgrade() -> None:
    op.drop_column('booking_events', 'cancellation_handled')
