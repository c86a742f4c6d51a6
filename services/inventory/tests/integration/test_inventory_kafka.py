"""Inventory over the Kafka-protocol broker: hold logs forwarded at least once with
stable ids, and the consumer applying catalog and booking messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

from marquee_contracts import REGISTRY, CloudEvent
from marquee_contracts.booking import ORDER_PAID
from marquee_contracts.catalog import EVENT_PUBLISHED
from marquee_contracts.inventory import (
    AVAILABILITY_CHANGED,
    HOLD_CREATED,
    HOLD_EXPIRED,
    HOLD_RELEASED,
    SALE_CONFIRMED,
)
from marquee_inventory import tasks
from marquee_inventory.consumers import CONSUMED_TOPICS, build_consumer
from marquee_inventory.holds import EventKeys
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer, ensure_topics, publish
from marquee_testing.events import Clock, People, outbox_rows
from marquee_testing.inventory import Catalog, HoldApi, order_paid, published_event, seat_id
from marquee_testing.waiting import wait_until


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def read_all(
    bootstrap: str, topics: list[str], *, until: int
) -> list[tuple[str, CloudEvent]]:
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got: list[tuple[str, CloudEvent]] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < until:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(
                        (record.topic, CloudEvent.from_json_bytes(record.value or b""))
                        for record in records
                    )
    finally:
        await consumer.stop()
    return got


async def test_hold_logs_reach_kafka_at_least_once_with_stable_ids(
    catalog: Catalog,
    api: HoldApi,
    people: People,
    store: HoldStore,
    clock: Clock,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    names = {
        topic: f"test.{unique_name(topic.split('.')[1])}.v1"
        for topic in (
            HOLD_CREATED.name,
            HOLD_RELEASED.name,
            HOLD_EXPIRED.name,
            AVAILABILITY_CHANGED.name,
        )
    }
    await ensure_topics(kafka_bootstrap, {name: 1 for name in names.values()})
    event = await catalog.publish(published_event())
    fan = people.customer("fan-1")
    kept = (await api.hold(event.event_id, fan, seats=[{"seat_id": seat_id(0, 0, 0)}])).json()
    dropped = (await api.hold(event.event_id, fan, seats=[{"seat_id": seat_id(0, 0, 1)}])).json()
    await api.release(event.event_id, dropped["hold_id"], fan)
    clock.advance(timedelta(minutes=6))
    await tasks.expire_holds(store, clock=clock, on_change=lambda _: None)

    log = EventKeys.of(event.event_id).log
    entries = await store.redis.xrange(log)
    assert len(entries) == 4
    # A crash after sending and before trimming sends the entries again: same ids.
    first_ids = [
        made[1].id
        for entry_id, fields in entries
        if (
            made := tasks.log_entry_event(
                event.event_id,
                entry_id.decode(),
                {k.decode(): v.decode() for k, v in fields.items()},
            )
        )
    ]
    assert await tasks.forward_logs(store, producer, topic_names=names) == 4
    assert await store.redis.xlen(log) == 0  # trimmed once the broker acknowledged

    received = await read_all(kafka_bootstrap, list(names.values()), until=5)
    by_topic: dict[str, list[CloudEvent]] = {}
    for topic, message in received:
        by_topic.setdefault(topic, []).append(message)
    created = by_topic[names[HOLD_CREATED.name]]
    assert sorted(message.data["hold_id"] for message in created) == sorted(
        [kept["hold_id"], dropped["hold_id"]]
    )
    assert [m.data["hold_id"] for m in by_topic[names[HOLD_RELEASED.name]]] == [dropped["hold_id"]]
    expired = by_topic[names[HOLD_EXPIRED.name]]
    assert [m.data["hold_id"] for m in expired] == [kept["hold_id"]]
    assert expired[0].data["seats"] == [
        {"seat_id": seat_id(0, 0, 0), "ticket_type_id": str(event.seated["standard"])}
    ]
    assert all(message.subject == str(event.event_id) for _, message in received)
    assert sorted(m.id for t, m in received if t != names[AVAILABILITY_CHANGED.name]) == sorted(
        first_ids
    )
    availability = by_topic[names[AVAILABILITY_CHANGED.name]][-1]
    assert availability.data["seats_available"] == 10
    for message in created + expired:
        REGISTRY.parse_data(message)  # every message is valid for its contract


async def test_the_consumer_builds_inventory_and_sells_from_kafka_messages(
    inventory_settings: InventorySettings,
    database: Database,
    store: HoldStore,
    api: HoldApi,
    people: People,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    names = {topic: f"test.{unique_name(topic.split('.')[1])}.v1" for topic in CONSUMED_TOPICS}
    await ensure_topics(kafka_bootstrap, {name: 3 for name in names.values()})
    runner = build_consumer(
        inventory_settings,
        database=database,
        redis=store.redis,
        group=unique_name("inventory"),
        topic_names=names,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:
        event = published_event()
        envelope = REGISTRY.event(
            EVENT_PUBLISHED.name,
            event.message,
            source="/marquee/events",
            subject=str(event.event_id),
        )
        await publish(producer, names[EVENT_PUBLISHED.name], envelope, key=str(event.event_id))
        await publish(
            producer, names[EVENT_PUBLISHED.name], envelope, key=str(event.event_id)
        )  # twice

        async def loaded() -> bool:
            return await store.loaded_version(event.event_id) == event.message.version

        await wait_until(loaded, timeout=60, message="the published event loaded into Redis")
        hold = (
            await api.hold(event.event_id, people.customer(), seats=[{"seat_id": seat_id(0, 0, 0)}])
        ).json()
        paid = order_paid(hold)
        await publish(
            producer,
            names[ORDER_PAID.name],
            REGISTRY.event(
                ORDER_PAID.name, paid, source="/marquee/booking", subject=str(event.event_id)
            ),
            key=str(event.event_id),
        )

        async def sold() -> bool:
            return bool(await outbox_rows(database, SALE_CONFIRMED.name))

        await wait_until(sold, timeout=60, message="the sale confirmed")
    finally:
        stop.set()
        await running
    async with database.reading() as session:
        seats = (
            await session.execute(
                text("SELECT count(*) FROM inventory_seats WHERE event_id = :e"),
                {"e": event.event_id},
            )
        ).scalar_one()
    assert seats == 10  # published twice, seats once
    assert (await api.availability(event.event_id))["seats"][seat_id(0, 0, 0)] == "sold"
