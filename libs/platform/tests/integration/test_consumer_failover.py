"""Replicas of one consumer group: a SIGKILLed member's partitions move to the others,
members join and leave, and every event is still applied exactly once.

How fast the partitions move is measured by ``make bench-scale``; this proves what the
replicas do, reading what each reports about itself (:mod:`marquee_platform.workers`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as redis_asyncio
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from sqlalchemy import text

from marquee_contracts import CloudEvent, Topic, TopicRegistry
from marquee_platform.consumer import ConsumerRunner, Delivery
from marquee_platform.db import Database, WriteSession
from marquee_platform.kafka import ensure_topics, publish
from marquee_platform.workers import WorkerStatus, read_workers
from marquee_testing.waiting import wait_until

CONSUMER_PROCESS = Path(__file__).with_name("consumer_process.py")
PARTITIONS = 4


class ThingHappened(BaseModel):
    sequence: int


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Replicas:
    """Consumer processes of one group, each in its own session, all killed at the end."""

    def __init__(self, *args: str, redis_url: str) -> None:
        self.args = args
        self.env = {**os.environ, "MARQUEE_REDIS_URL": redis_url}
        self.processes: list[subprocess.Popen[str]] = []

    def start(self) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(CONSUMER_PROCESS), *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


async def publish_things(producer: AIOKafkaProducer, topic: str, sequences: range) -> list[str]:
    ids = []
    for sequence in sequences:
        event = CloudEvent(
            source="/marquee/test",
            type=topic,
            subject=f"thing-{sequence}",
            data={"sequence": sequence},
        )
        await publish(producer, topic, event, key=f"thing-{sequence}")
        ids.append(event.id)
    return ids


async def applied_ids(effects_database_url: str) -> list[str]:
    database = Database(effects_database_url)
    try:
        async with database.reading() as session:
            return list((await session.execute(text("SELECT event_id FROM effects"))).scalars())
    finally:
        await database.dispose()


def members(statuses: list[WorkerStatus], group: str) -> dict[int, WorkerStatus]:
    """The group's live replicas by process id."""
    return {
        status.pid: status
        for status in statuses
        if status.kind == "consumer" and status.group == group
    }


async def test_partitions_move_to_the_survivors_and_each_event_applies_once(
    effects_database_url: str,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    redis_url: str,
    redis: redis_asyncio.Redis,
    unique_name: Callable[[str], str],
) -> None:
    topic = f"test.{unique_name('thing-happened')}.v1"
    group = unique_name("group")
    await ensure_topics(kafka_bootstrap, {topic: PARTITIONS})
    replicas = Replicas(effects_database_url, kafka_bootstrap, topic, group, redis_url=redis_url)
    published: list[str] = []

    async def holding(expected: dict[int, int]) -> bool:
        """Each listed replica reports exactly that many partitions (and no one else)."""
        live = members(await read_workers(redis), group)
        return {pid: len(status.partitions) for pid, status in live.items()} == expected

    async def all_applied() -> bool:
        return len(await applied_ids(effects_database_url)) >= len(published)

    try:
        first, second = replicas.start(), replicas.start()
        await wait_until(
            lambda: holding({first.pid: 2, second.pid: 2}),
            timeout=60,
            message="two replicas share the four partitions",
        )
        published += await publish_things(producer, topic, range(0, 100))
        await wait_until(all_applied, timeout=60, message="both replicas applied batch 1")

        # A member dies without leaving the group: the broker must notice on its own.
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        published += await publish_things(producer, topic, range(100, 200))
        await wait_until(
            lambda: holding({second.pid: PARTITIONS}),
            timeout=60,
            message="the survivor took the killed replica's partitions",
        )
        await wait_until(all_applied, timeout=60, message="the survivor applied batch 2")

        # Scale up while events flow, then down by a clean stop.
        third = replicas.start()
        published += await publish_things(producer, topic, range(200, 300))
        await wait_until(
            lambda: holding({second.pid: 2, third.pid: 2}),
            timeout=60,
            message="the new replica got its share",
        )
        second.send_signal(signal.SIGTERM)
        published += await publish_things(producer, topic, range(300, 400))
        assert await asyncio.to_thread(second.wait, 30) == 0
        await wait_until(
            lambda: holding({third.pid: PARTITIONS}),
            timeout=60,
            message="the last replica holds every partition after the other left",
        )
        await wait_until(all_applied, timeout=60, message="every batch applied")
        third.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(third.wait, 30) == 0
    finally:
        replicas.kill_all()

    applied = await applied_ids(effects_database_url)
    assert sorted(applied) == sorted(published), "every event applied exactly once"
    # A clean stop deletes the replica's status at once; the killed one's expired.
    await wait_until(
        lambda: holding({}), timeout=10, message="no replica of the group is reported alive"
    )
    third_log = third.stdout.read() if third.stdout else ""
    assert f"consumer group {group}: this replica now holds {PARTITIONS} partition(s)" in third_log


async def test_a_partition_taken_away_mid_batch_is_left_to_its_new_owner(
    effects_database_url: str,
    producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    """A rebalance while a replica works through a batch: the partition is no longer its
    own when it comes to commit. It must leave the rest to the new owner and carry on,
    not die of the commit (aiokafka raises IllegalStateError there)."""
    topic = f"test.{unique_name('thing-happened')}.v1"
    group = unique_name("group")
    await ensure_topics(kafka_bootstrap, {topic: 2})
    registry = TopicRegistry()
    registry.register(Topic(topic, ThingHappened, owner="test", description="test events"))
    database = Database(effects_database_url)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def record(delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, ThingHappened)
        if not holding.is_set():
            # The first event handled at all: its batch holds both partitions' events (they
            # were all published before), and the replica stays mid-batch while the group
            # rebalances, whichever partition the rebalance then takes away.
            holding.set()
            await release.wait()
        await session.execute(
            text("INSERT INTO effects (event_id, sequence) VALUES (:id, :sequence)"),
            {"id": delivery.event.id, "sequence": delivery.data.sequence},
        )

    def runner() -> ConsumerRunner:
        return ConsumerRunner(
            group=group,
            bootstrap=kafka_bootstrap,
            database=database,
            handlers={topic: record},
            registry=registry,
        )

    first, second = runner(), runner()
    stop = asyncio.Event()
    published = await publish_things(producer, topic, range(0, 40))
    first_running = asyncio.create_task(first.run(stop))
    second_running: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(holding.wait(), timeout=60)
        held = set(first.status().partitions)
        second_running = asyncio.create_task(second.run(stop))

        def moved() -> bool:
            # The group took a partition from the first replica while it was held up.
            return bool(held - set(first.status().partitions))

        await wait_until(moved, timeout=60, message="the rebalance to take a partition away")
        release.set()
        published += await publish_things(producer, topic, range(40, 60))

        async def all_applied() -> bool:
            return len(await applied_ids(effects_database_url)) >= len(published)

        await wait_until(all_applied, timeout=60, message="every event applied")
        assert not first_running.done(), "the first replica carried on after the rebalance"
    finally:
        stop.set()
        release.set()
        await asyncio.gather(
            first_running, *([second_running] if second_running else []), return_exceptions=False
        )
        await database.dispose()
    assert sorted(await applied_ids(effects_database_url)) == sorted(published)
