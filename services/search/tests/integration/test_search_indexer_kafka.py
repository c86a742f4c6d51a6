"""End to end: change events on the broker → the ConsumerRunner → searchable documents."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import text

from marquee_contracts import REGISTRY, CloudEvent
from marquee_contracts.catalog import EventChanged, EventVenue, PriceRange
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer, publish
from marquee_search.changes import EVENT_CHANGED
from marquee_search.consumers import create_runner
from marquee_search.domain import SearchQuery
from marquee_search.engines.postgres import PostgresSearchEngine
from marquee_search.main import SERVICE
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.waiting import wait_until

NOW = datetime.now(UTC)


def snapshot(event_id: uuid.UUID, version: int, *, status: str, name: str) -> EventChanged:
    """A real ``events.event-changed.v1`` payload, built with the contract's own schema."""
    return EventChanged(
        event_id=event_id,
        version=version,
        deleted=False,
        public=status != "draft",
        status=status,
        organizer_id="organizer-1",
        name=name,
        description="Live on the harbour front.",
        category="concert",
        tags=["outdoor"],
        image_urls=[],
        starts_at=NOW + timedelta(days=12),
        ends_at=NOW + timedelta(days=12, hours=2),
        time_zone="Europe/Lisbon",
        venue=EventVenue(
            id=uuid.uuid4(),
            name="Harbour Stage",
            address="Cais 1",
            city="Lisbon",
            country="PT",
            latitude=38.7223,
            longitude=-9.1393,
            time_zone="Europe/Lisbon",
        ),
        price_range=PriceRange(min_minor=1500, max_minor=4500, currency="EUR"),
        ticket_types=[],
        sale_starts_at=NOW - timedelta(days=1),
        sale_ends_at=None,
        high_demand=False,
        max_tickets_per_order=6,
        created_at=NOW,
        updated_at=NOW,
        published_at=NOW,
    )


async def send(producer: AIOKafkaProducer, topic: str, data: EventChanged) -> CloudEvent:
    event = REGISTRY.event(
        EVENT_CHANGED, data, source="/marquee/events", subject=str(data.event_id)
    )
    await publish(producer, topic, event, key=str(data.event_id))
    return event


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def test_changes_on_the_topic_become_searchable_and_stale_ones_are_ignored(
    make_database: DatabaseFactory,
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    unique_name: Callable[[str], str],
) -> None:
    assert SERVICE.migrations is not None
    database = Database(await make_database(SERVICE.migrations, prefix="search"))
    engine = PostgresSearchEngine(database)
    topic = f"events.{unique_name('event-changed')}.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    runner = create_runner(
        engine=engine,
        database=database,
        bootstrap=kafka_bootstrap,
        group=unique_name("search"),
        topic=topic,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))

    async def names(query_text: str) -> list[str]:
        result = await engine.search(SearchQuery(now=NOW, text=query_text, limit=50))
        return [hit.document.name for hit in result.hits]

    async def applied(event: CloudEvent) -> bool:
        async with database.reading() as session:
            found = await session.execute(
                text("SELECT 1 FROM inbox WHERE event_id = :id"), {"id": event.id}
            )
            return found.first() is not None

    try:
        # Commit (the broker's ack) → searchable, one event at a time.
        latencies_ms: list[float] = []
        for number in range(15):
            name = f"Harbour Session {number} {uuid.uuid4().hex[:6]}"
            await send(producer, topic, snapshot(uuid.uuid4(), 1, status="on_sale", name=name))
            acked = time.perf_counter()
            await wait_until(
                lambda name=name: _contains(names(name.split()[-1]), name),
                timeout=30,
                message=f"{name} never became searchable",
                interval=0.005,
            )
            latencies_ms.append((time.perf_counter() - acked) * 1000)
        ordered = sorted(latencies_ms)
        print(
            f"\ncommit→searchable over {len(ordered)} events: "
            f"p50 {statistics.median(ordered):.0f} ms, max {ordered[-1]:.0f} ms "
            "(the first includes the consumer group joining)"
        )

        # Cancelled at version 3; then version 2 (published) arrives late: it stays gone.
        event_id = uuid.uuid4()
        await send(producer, topic, snapshot(event_id, 1, status="on_sale", name="Quayside Jazz"))
        await wait_until(
            lambda: _contains(names("quayside"), "Quayside Jazz"),
            timeout=30,
            message="the published event never became searchable",
        )
        await send(producer, topic, snapshot(event_id, 3, status="cancelled", name="Quayside Jazz"))
        await wait_until(
            lambda: _empty(names("quayside")), timeout=30, message="the cancellation never applied"
        )
        late = await send(
            producer, topic, snapshot(event_id, 2, status="on_sale", name="Quayside Jazz")
        )
        await wait_until(
            lambda: applied(late), timeout=30, message="the late message was never consumed"
        )
        assert await names("quayside") == []
    finally:
        stop.set()
        await running
        await database.dispose()


async def _contains(found: asyncio.Future[list[str]] | object, name: str) -> bool:
    return name in await found  # type: ignore[misc]


async def _empty(found: object) -> bool:
    return await found == []  # type: ignore[misc]
