"""The consumer runner against real PostgreSQL and the Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from opentelemetry import trace
from pydantic import BaseModel
from sqlalchemy import text

from marquee_contracts import CloudEvent, Topic, TopicRegistry
from marquee_platform.consumer import ConsumerRunner, Delivery, RetryPolicy
from marquee_platform.db import Database, WriteSession, after_commit
from marquee_platform.kafka import publish
from marquee_platform.tracing import configure_tracing, tracer
from marquee_testing.waiting import wait_until

CONSUMER_PROCESS = Path(__file__).with_name("consumer_process.py")
configure_tracing("tests")


class ThingHappened(BaseModel):
    sequence: int


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def publish_things(
    producer: AIOKafkaProducer, topic: str, count: int, *, start: int = 0
) -> list[str]:
    ids = []
    for sequence in range(start, start + count):
        event = CloudEvent(
            source="/marquee/test",
            type=topic,
            subject=f"thing-{sequence % 7}",
            data={"sequence": sequence},
        )
        await publish(producer, topic, event, key=f"thing-{sequence % 7}")
        ids.append(event.id)
    return ids


async def fetch_effects(effects_database_url: str) -> list[tuple[str, int]]:
    database = Database(effects_database_url)
    try:
        async with database.reading() as session:
            rows = await session.execute(text("SELECT event_id, sequence FROM effects"))
            return [(row.event_id, row.sequence) for row in rows]
    finally:
        await database.dispose()


def start_consumer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CONSUMER_PROCESS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


async def wait_exit(process: subprocess.Popen[str], timeout: float) -> int:
    return await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)


async def test_consumer_killed_between_effect_and_offset_commit_applies_each_event_once(
    effects_database_url: str,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    topic = f"test.{unique_name('thing-happened')}.v1"
    group = unique_name("group")
    await create_topic(kafka_bootstrap, topic, partitions=3)
    ids = await publish_things(producer, topic, 300)

    crashing = start_consumer(effects_database_url, kafka_bootstrap, topic, group, "120")
    try:
        assert await wait_exit(crashing, 90) == -signal.SIGKILL
    finally:
        if crashing.poll() is None:
            os.killpg(crashing.pid, signal.SIGKILL)
    applied_before_restart = len(await fetch_effects(effects_database_url))
    assert applied_before_restart >= 120

    restarted = start_consumer(effects_database_url, kafka_bootstrap, topic, group)
    try:

        async def all_applied() -> bool:
            return len(await fetch_effects(effects_database_url)) >= len(ids)

        await wait_until(all_applied, timeout=90, message="the restarted consumer applied all")
        restarted.send_signal(signal.SIGTERM)
        assert await wait_exit(restarted, 30) == 0
    finally:
        if restarted.poll() is None:
            os.killpg(restarted.pid, signal.SIGKILL)
    output = restarted.stdout.read() if restarted.stdout else ""
    redelivered = int(output.rsplit("duplicates=", 1)[1].split()[0])

    effects = await fetch_effects(effects_database_url)
    applied_ids = [event_id for event_id, _ in effects]
    assert sorted(applied_ids) == sorted(ids), "every event applied exactly once"
    # The crash left at least the 120th message applied but uncommitted: the restart must
    # have received it again, and the inbox must have turned it into a no-op.
    assert redelivered >= 1


async def test_failing_message_is_retried_then_dead_lettered_and_the_rest_still_apply(
    effects_database_url: str,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    topic = f"test.{unique_name('thing-happened')}.v1"
    group = unique_name("group")
    registry = TopicRegistry()
    registry.register(Topic(topic, ThingHappened, owner="test", description="test"))
    await create_topic(kafka_bootstrap, topic, partitions=1)
    attempts: dict[int, int] = {}
    trace_ids_seen: set[int] = set()
    nudged: list[int] = []

    async def apply(delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, ThingHappened)
        trace_ids_seen.add(trace.get_current_span().get_span_context().trace_id)
        sequence = delivery.data.sequence
        attempts[sequence] = attempts.get(sequence, 0) + 1
        await session.execute(
            text("INSERT INTO effects (event_id, sequence) VALUES (:id, :sequence)"),
            {"id": delivery.event.id, "sequence": sequence},
        )

        async def nudge() -> None:
            nudged.append(sequence)

        after_commit(session, nudge)
        if sequence == 3:
            raise RuntimeError("the fourth thing cannot be applied")

    with tracer().start_as_current_span("publish things") as span:
        producing_trace_id = span.get_span_context().trace_id
        ids = await publish_things(producer, topic, 6)
    await producer.send_and_wait(topic, b"this is not json", key=b"poison")
    database = Database(effects_database_url)
    runner = ConsumerRunner(
        group=group,
        bootstrap=kafka_bootstrap,
        database=database,
        handlers={topic: apply},
        registry=registry,
        retry=RetryPolicy(max_attempts=3, first_delay_seconds=0.01, max_delay_seconds=0.02),
    )
    dead_letters = AIOKafkaConsumer(
        runner.dead_letter_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name("dlq-reader"),
        auto_offset_reset="earliest",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:

        async def five_applied() -> bool:
            return len(await fetch_effects(effects_database_url)) == 5

        await wait_until(five_applied, timeout=60, message="the five good events applied")
        await dead_letters.start()
        parked: list[ConsumerRecord[bytes, bytes]] = []
        while len(parked) < 2:
            batch = await dead_letters.getmany(timeout_ms=30_000)
            assert batch, "two messages should be parked on the dead-letter topic"
            parked.extend(record for records in batch.values() for record in records)
    finally:
        stop.set()
        await task
        await dead_letters.stop()
        await database.dispose()

    effects = await fetch_effects(effects_database_url)
    assert sorted(sequence for _, sequence in effects) == [0, 1, 2, 4, 5]
    assert attempts[3] == 3
    # After-commit actions ran once per committed event, never for the rolled-back attempts.
    assert sorted(nudged) == [0, 1, 2, 4, 5]
    assert sorted(event_id for event_id, _ in effects) == sorted(ids[:3] + ids[4:])
    headers = [dict(record.headers) for record in parked]
    reasons = sorted(header["dlq_reason"].decode() for header in headers)
    assert "cannot be applied" in reasons[0]
    assert "not a valid event" in reasons[1]
    assert {header["dlq_original_topic"].decode() for header in headers} == {topic}
    assert headers[0]["dlq_group"].decode() == group
    assert trace_ids_seen == {producing_trace_id}, "handlers run in the producer's trace"
