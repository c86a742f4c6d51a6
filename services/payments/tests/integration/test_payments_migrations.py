"""The migrations create exactly what models.py declares, and undo it."""

from __future__ import annotations

from marquee_payments.main import SERVICE
from marquee_payments.models import Base
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.migrations import check_migrations

SERVICE_TABLES = {
    "payments",
    "provider_events",
    "refunds",
    "ledger_entries",
    "fraud_decisions",
    "known_orders",
    "simulated_intents",
    "simulated_refunds",
    "simulated_webhooks",
}


async def test_head_matches_the_models_and_downgrades_cleanly(
    make_database: DatabaseFactory,
) -> None:
    await check_migrations(make_database, SERVICE, Base.metadata, SERVICE_TABLES)
