"""``booking.ticket-issued.v1`` through the Kafka-protocol broker into ``ticket_holders``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import text

from marquee_contracts import CloudEvent
from marquee_contracts.auth import USER_DELETED
from marquee_contracts.booking import TICKET_ISSUED
from marquee_events.consumers import CONSUMER_GROUP, build_consumer, create_consumer
from marquee_events.main import SERVICE
from marquee_events.settings import EventsSettings
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer, publish
from marquee_testing.events import Catalog, People, key
from marquee_testing.waiting import wait_until


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 3, 1)])
    finally:
        await admin.close()


def ticket_issued(event_id: uuid.UUID, user_id: str) -> CloudEvent:
    order_id = uuid.uuid4()
    return CloudEvent(
        source="/marquee/booking",
        type=TICKET_ISSUED.name,
        subject=str(order_id),
        data={
            "ticket_id": str(uuid.uuid4()),
            "order_id": str(order_id),
            "event_id": str(event_id),
            "user_id": user_id,
            "issued_at": datetime.now(UTC).isoformat(),
        },
    )


async def count(database: Database, statement: str) -> int:
    async with database.reading() as session:
        return int((await session.execute(text(statement))).scalar_one())


async def test_ticket_holders_are_recorded_once_however_often_booking_says_so(
    events_settings: EventsSettings,
    database: Database,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    topic = f"booking.{unique_name('ticket-issued')}.v1"
    # Its own deletions topic too: other tests on this broker publish real user deletions.
    deletions_topic = f"auth.{unique_name('user-deleted')}.v1"
    await create_topic(kafka_bootstrap, topic)
    await create_topic(kafka_bootstrap, deletions_topic)
    runner = build_consumer(
        events_settings,
        database=database,
        group=unique_name("events"),
        topic_names={TICKET_ISSUED.name: topic, USER_DELETED.name: deletions_topic},
    )
    stop = asyncio.Event()
    consuming = asyncio.create_task(runner.run(stop))
    try:
        event_id = uuid.uuid4()
        first = ticket_issued(event_id, "fan-1")
        messages = [
            first,
            first,  # a redelivery: same event id
            ticket_issued(event_id, "fan-1"),  # a second ticket of the same holder
            ticket_issued(event_id, "fan-2"),
        ]
        # One key: one partition, so the last message applied means all before it were.
        for message in messages:
            await publish(producer, topic, message, key=str(event_id))

        async def all_seen() -> bool:
            return await count(database, "SELECT count(*) FROM inbox") >= 3

        await wait_until(all_seen, timeout=60, message="the consumer applied the messages")
    finally:
        stop.set()
        await asyncio.wait_for(consuming, timeout=30)

    async with database.reading() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT user_id, first_ticket_id FROM ticket_holders "
                    "WHERE event_id = :event_id ORDER BY user_id"
                ),
                {"event_id": event_id},
            )
        ).all()
    assert [row.user_id for row in rows] == ["fan-1", "fan-2"]
    assert str(rows[0].first_ticket_id) == first.data["ticket_id"]
    assert await count(database, "SELECT count(*) FROM inbox") == 3
    assert await count(database, "SELECT count(*) FROM ticket_holders") == 2


def test_the_service_spec_runs_the_events_consumer() -> None:
    assert SERVICE.consumer_factory == "marquee_events.consumers:create_consumer"
    runner = create_consumer()
    try:
        assert runner.group == CONSUMER_GROUP == "events"
        assert set(runner.handlers) == {"booking.ticket-issued.v1", "auth.user-deleted.v1"}
    finally:
        asyncio.run(runner.database.dispose())


async def test_a_deleted_user_loses_their_reviews_and_holder_rows(
    client: httpx.AsyncClient,
    catalog: Catalog,
    people: People,
    events_settings: EventsSettings,
    database: Database,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    leaving, staying = str(uuid.uuid4()), str(uuid.uuid4())
    event = await catalog.published_event()
    event_id = uuid.UUID(event["id"])
    tickets_topic = f"booking.{unique_name('ticket-issued')}.v1"
    deletions_topic = f"auth.{unique_name('user-deleted')}.v1"
    await create_topic(kafka_bootstrap, tickets_topic)
    await create_topic(kafka_bootstrap, deletions_topic)
    runner = build_consumer(
        events_settings,
        database=database,
        group=unique_name("events"),
        topic_names={TICKET_ISSUED.name: tickets_topic, USER_DELETED.name: deletions_topic},
    )
    stop = asyncio.Event()
    consuming = asyncio.create_task(runner.run(stop))
    try:
        for user in (leaving, staying):
            await publish(producer, tickets_topic, ticket_issued(event_id, user), key=user)

        async def holders_known() -> bool:
            return await count(database, "SELECT count(*) FROM ticket_holders") == 2

        await wait_until(holders_known, timeout=60, message="both holders recorded")

        catalog.clock.advance(timedelta(days=31))
        for user in (leaving, staying):
            response = await client.post(
                f"/api/v1/events/{event_id}/reviews",
                json={"rating": 4},
                headers={**people.customer(user), **key()},
            )
            assert response.status_code == 201, response.text

        deletion = CloudEvent(
            source="/marquee/auth",
            type=USER_DELETED.name,
            subject=leaving,
            data={"user_id": leaving},
        )
        await publish(producer, deletions_topic, deletion, key=leaving)

        async def forgotten() -> bool:
            return await count(database, "SELECT count(*) FROM reviews") == 1

        await wait_until(forgotten, timeout=60, message="the deleted user's review erased")
    finally:
        stop.set()
        await asyncio.wait_for(consuming, timeout=30)

    async with database.reading() as session:
        holders = (await session.execute(text("SELECT user_id FROM ticket_holders"))).scalars()
        assert list(holders) == [staying]
        authors = (await session.execute(text("SELECT author_id FROM reviews"))).scalars()
        assert list(authors) == [staying]
