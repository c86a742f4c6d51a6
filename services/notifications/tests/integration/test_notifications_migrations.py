"""The migrations create exactly what models.py declares, and undo it."""

from __future__ import annotations

import pytest

from marquee_notifications.main import SERVICE
from marquee_notifications.models import Base
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.migrations import check_migrations

pytestmark = pytest.mark.integration

SERVICE_TABLES = {
    "recipients",
    "preferences",
    "notification_events",
    "event_settings",
    "notification_orders",
    "holdings",
    "messages",
    "dev_outbox",
}


async def test_head_matches_the_models_and_downgrades_cleanly(
    make_database: DatabaseFactory,
) -> None:
    await check_migrations(make_database, SERVICE, Base.metadata, SERVICE_TABLES)
