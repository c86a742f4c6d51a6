"""The waitroom over the Kafka-protocol broker: the consumer applies catalog and hold
messages (a hold keeps an admitted fan's slot, a sale frees it), and admissions reach
Kafka at least once with stable ids."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer

from marquee_contracts import REGISTRY, CloudEvent
from marquee_contracts.catalog import EVENT_CHANGED
from marquee_contracts.inventory import HOLD_CREATED, SALE_CONFIRMED, HoldCreated, SaleConfirmed
from marquee_contracts.waitroom import ADMISSION_GRANTED
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer, ensure_topics, publish
from marquee_testing.inventory import changed_snapshot, published_event
from marquee_testing.waiting import wait_until
from marquee_waitroom import tasks
from marquee_waitroom.admission import to_ms
from marquee_waitroom.consumers import CONSUMED_TOPICS, build_consumer
from marquee_waitroom.models import WaitroomEvent
from marquee_waitroom.queue import OnSaleTimes, QueueKeys, QueueStore
from marquee_waitroom.settings import WaitroomSettings


class Killed(Exception):
    """Stands for the process dying at that point."""


async def queue_one_admitted_fan(store: QueueStore, event_id: uuid.UUID, account: str) -> None:
    now = datetime.now(UTC)
    await store.configure(
        event_id,
        OnSaleTimes(
            opens_ms=to_ms(now - timedelta(minutes=2)),
            starts_ms=to_ms(now - timedelta(minutes=1)),
            window_ms=60_000,
            grace_ms=600_000,
            max_active=10,
            adaptive=False,
        ),
    )
    assert (await store.join(event_id, account, "q_" + uuid.uuid4().hex, to_ms(now)))[0] == "joined"
    assert await store.place(event_id, [], open_after=True) == 0
    admitted = await store.admit(event_id, now_ms=to_ms(now), budget=1)
    assert [fan.account for fan in admitted.admitted] == [account]


async def test_the_consumer_tracks_organizers_and_admitted_fans_slots(
    waitroom_settings: WaitroomSettings,
    waitroom_database: Database,
    queue_store: QueueStore,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    names = {topic: f"test.{unique_name(topic.split('.')[1])}.v1" for topic in CONSUMED_TOPICS}
    await ensure_topics(kafka_bootstrap, {name: 2 for name in names.values()})
    event = published_event(organizer_id="organizer-9")
    event_id = event.event_id
    await queue_one_admitted_fan(queue_store, event_id, "fan-k")
    keys = QueueKeys.of(event_id).named("active", "pending")
    runner = build_consumer(
        waitroom_settings,
        database=waitroom_database,
        redis=queue_store.redis,
        group=unique_name("waitroom"),
        topic_names=names,
    )
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:
        snapshot = changed_snapshot(event, version=5)
        for _ in range(2):  # a redelivery changes nothing
            await publish(
                producer,
                names[EVENT_CHANGED.name],
                REGISTRY.event(
                    EVENT_CHANGED.name, snapshot, source="/marquee/events", subject=str(event_id)
                ),
                key=str(event_id),
            )
        hold_until = datetime.now(UTC) + timedelta(minutes=5)
        await publish(
            producer,
            names[HOLD_CREATED.name],
            REGISTRY.event(
                HOLD_CREATED.name,
                HoldCreated(
                    hold_id="h1",
                    event_id=event_id,
                    user_id="fan-k",
                    seats=[],
                    general_admission=[],
                    expires_at=hold_until,
                    created_at=datetime.now(UTC),
                ),
                source="/marquee/inventory",
                subject=str(event_id),
            ),
            key=str(event_id),
        )

        async def holding() -> bool:
            slot = await queue_store.redis.zscore(keys["active"], await ticket_of("fan-k"))
            return slot is not None and int(slot) == to_ms(hold_until)

        async def ticket_of(account: str) -> str:
            raw = await queue_store.redis.hget(
                QueueKeys.of(event_id).named("acct")["acct"], account
            )
            return str(raw.decode())

        await wait_until(holding, timeout=60, message="the slot lasting as long as the hold")
        assert await queue_store.redis.zcard(keys["pending"]) == 0, "no longer pending"

        await publish(
            producer,
            names[SALE_CONFIRMED.name],
            REGISTRY.event(
                SALE_CONFIRMED.name,
                SaleConfirmed(
                    order_id=uuid.uuid4(),
                    hold_id="h1",
                    event_id=event_id,
                    user_id="fan-k",
                    seats=[],
                    general_admission=[],
                    confirmed_at=datetime.now(UTC),
                ),
                source="/marquee/inventory",
                subject=str(event_id),
            ),
            key=str(event_id),
        )

        async def freed() -> bool:
            return int(await queue_store.redis.zcard(keys["active"])) == 0

        await wait_until(freed, timeout=60, message="the slot freed by the sale")
    finally:
        stop.set()
        await running
        await producer.stop()
        await queue_store.remove(event_id)
    async with waitroom_database.reading() as session:
        known = await session.get(WaitroomEvent, event_id)
    assert known is not None
    assert (known.organizer_id, known.version) == ("organizer-9", 5)


async def test_admissions_reach_kafka_at_least_once_with_stable_ids(
    queue_store: QueueStore, kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = f"test.{unique_name('admission-granted')}.v1"
    await ensure_topics(kafka_bootstrap, {topic: 1})
    event_id = uuid.uuid4()
    await queue_one_admitted_fan(queue_store, event_id, "fan-n")
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    log = QueueKeys.of(event_id).named("log")["log"]
    prefix = queue_store.onsales_key.removesuffix(":onsales")
    try:
        # A forwarder that dies after the broker's ack and before trimming sends again.
        class DiesBeforeTrimming(QueueStore):
            async def trim_log(self, event_id: uuid.UUID, entry_ids: Sequence[str]) -> None:
                raise Killed("between the ack and the trim")

        dying = DiesBeforeTrimming(queue_store.redis, index_prefix=prefix)
        renamed = {ADMISSION_GRANTED.name: topic}
        with pytest.raises(Killed):
            await tasks.forward_logs(dying, producer, topic_names=renamed)
        assert await queue_store.redis.xlen(log) == 1, "not trimmed: it goes again"
        assert await tasks.forward_logs(queue_store, producer, topic_names=renamed) == 1
        assert await queue_store.redis.xlen(log) == 0
    finally:
        await producer.stop()
        await queue_store.remove(event_id)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[CloudEvent] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < 2:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(
                        CloudEvent.from_json_bytes(record.value or b"") for record in records
                    )
    finally:
        await consumer.stop()
    assert got[0].id == got[1].id, "the resend carries the same id: consumers dedupe it"
    assert got[0].type == ADMISSION_GRANTED.name
    assert got[0].data["user_id"] == "fan-n"
    assert got[0].data["number"] == 1
