"""The migrations create exactly what models.py declares, and undo it."""

from __future__ import annotations

from marquee_booking.main import SERVICE
from marquee_booking.models import Base
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.migrations import check_migrations

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


async def test_head_matches_the_models_and_downgrades_cleanly(
    make_database: DatabaseFactory,
) -> None:
    await check_migrations(make_database, SERVICE, Base.metadata, SERVICE_TABLES)
