"""Fixtures the consumer tests share: a migrated database with an ``effects`` table the
test handlers write to, and a started producer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from marquee_auth.main import SERVICE
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer
from marquee_testing.fixtures import DatabaseFactory


@pytest.fixture
async def effects_database_url(make_database: DatabaseFactory) -> str:
    """A service database (any has an inbox) plus ``effects (event_id, sequence)``."""
    url = await make_database(SERVICE.migrations)
    database = Database(url)
    async with database.transaction() as session:
        await session.execute(
            text("CREATE TABLE effects (event_id text NOT NULL, sequence int NOT NULL)")
        )
    await database.dispose()
    return url


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()
