"""The migrations create exactly what models.py declares, and undo it."""

from __future__ import annotations

from marquee_inventory.main import SERVICE
from marquee_inventory.models import Base
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.migrations import check_migrations

SERVICE_TABLES = {
    "inventory_events",
    "inventory_ticket_types",
    "inventory_seats",
    "sold_seats",
    "sales",
    "returned_places",
    "admission_gates",
}


async def test_head_matches_the_models_and_downgrades_cleanly(
    make_database: DatabaseFactory,
) -> None:
    await check_migrations(make_database, SERVICE, Base.metadata, SERVICE_TABLES)
