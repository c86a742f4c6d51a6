"""The migrations create exactly what models.py declares, and undo it."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from marquee_booking.main import SERVICE
from marquee_booking.models import Base
from marquee_platform.migrations import alembic_config
from marquee_testing.fixtures import DatabaseFactory

SERVICE_TABLES = {
    "booking_events",
    "orders",
    "order_lines",
    "tickets",
    "checkins",
    "promo_codes",
    "refunds",
    "people",
    "event_staff",
    "booking_ticket_types",
}


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_head_matches_the_models_and_downgrades_cleanly(
    make_database: DatabaseFactory,
) -> None:
    assert SERVICE.migrations is not None
    url = await make_database(SERVICE.migrations, prefix="booking_migrations")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            assert await connection.run_sync(table_names) >= SERVICE_TABLES

        config = alembic_config(url, SERVICE.migrations)
        await asyncio.to_thread(command.downgrade, config, "0001")
        async with engine.connect() as connection:
            assert not SERVICE_TABLES & await connection.run_sync(table_names)
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
