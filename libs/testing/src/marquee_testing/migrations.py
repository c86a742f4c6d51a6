"""The one check every service's migrations pass: head creates exactly what models.py
declares, a downgrade to the platform tables removes the service's own, and the upgrade
back is exact again."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from marquee_platform.migrations import alembic_config
from marquee_platform.service import ServiceSpec
from marquee_testing.fixtures import DatabaseFactory


async def check_migrations(
    make_database: DatabaseFactory, spec: ServiceSpec, metadata: MetaData, tables: set[str]
) -> None:
    assert spec.migrations is not None

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    def table_names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    url = await make_database(spec.migrations, prefix=f"{spec.name}_migrations")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            assert await connection.run_sync(table_names) >= tables
        config = alembic_config(url, spec.migrations)
        await asyncio.to_thread(command.downgrade, config, "0001")
        async with engine.connect() as connection:
            assert not tables & await connection.run_sync(table_names)
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
