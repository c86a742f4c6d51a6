"""The PostgreSQL engine's documents table: full text, trigram, geo and sort indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from marquee_search.pg_schema import downgrade_statements_v1, upgrade_statements_v1

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in upgrade_statements_v1():
        op.execute(statement)


def downgrade() -> None:
    for statement in downgrade_statements_v1():
        op.execute(statement)
