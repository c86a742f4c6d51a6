"""The Alembic history builds exactly the tables models.py describes."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from marquee_auth.main import SERVICE
from marquee_auth.models import Base
from marquee_platform.db import Database
from marquee_testing.fixtures import DatabaseFactory


async def test_the_migrations_match_the_models(make_database: DatabaseFactory) -> None:
    url = await make_database(SERVICE.migrations, prefix="auth")
    database = Database(url)

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with database.write_engine.connect() as connection:
            diff = await connection.run_sync(differences)
    finally:
        await database.dispose()
    assert diff == []
