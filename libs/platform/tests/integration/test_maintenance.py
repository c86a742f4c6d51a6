from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from marquee_auth.main import SERVICE
from marquee_platform.db import Database
from marquee_platform.maintenance import prune_platform_tables
from marquee_testing.fixtures import DatabaseFactory


async def test_prunes_only_expired_keys_and_old_inbox_entries(
    make_database: DatabaseFactory,
) -> None:
    database = Database(await make_database(SERVICE.migrations))
    try:
        async with database.transaction() as session:
            for key, age in (("old", timedelta(hours=25)), ("fresh", timedelta(hours=1))):
                await session.execute(
                    text(
                        "INSERT INTO idempotency_keys (principal, key, method, path, "
                        "request_hash, status_code, response_headers, response_body, created_at) "
                        "VALUES ('u1', :key, 'POST', '/x', 'h', 201, '{}', '{}', "
                        ":at)"
                    ),
                    {"key": key, "at": datetime.now(UTC) - age},
                )
            for event_id, age in (("e-old", timedelta(days=15)), ("e-new", timedelta(days=13))):
                await session.execute(
                    text(
                        "INSERT INTO inbox (event_id, event_type, consumer_group, received_at) "
                        "VALUES (:id, 't', 'g', :at)"
                    ),
                    {"id": event_id, "at": datetime.now(UTC) - age},
                )
        pruned = await prune_platform_tables(
            database, idempotency_key_ttl_hours=24, inbox_retention_days=14
        )
        async with database.reading() as session:
            keys = (await session.execute(text("SELECT key FROM idempotency_keys"))).scalars()
            inbox = (await session.execute(text("SELECT event_id FROM inbox"))).scalars()
            assert (list(keys), list(inbox)) == (["fresh"], ["e-new"])
    finally:
        await database.dispose()
    assert pruned == {"idempotency_keys": 1, "inbox": 1}
