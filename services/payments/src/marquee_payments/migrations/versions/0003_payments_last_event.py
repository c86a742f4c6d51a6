"""Payments remember the newest provider event that moved them (late in-flight events are stale).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 02:10:08.659373
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('payments', sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('payments', 'last_event_at')
