"""Platform tables: outbox, inbox, idempotency keys and the outbox publication.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from marquee_platform.migrations import create_platform_tables_v1, drop_platform_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables_v1()


def downgrade() -> None:
    drop_platform_tables_v1()
