"""Two relays for one database: one relays, the other stands by and takes over when the
active one is SIGKILLed; rows written before, during and after the takeover all arrive.

How fast the standby takes over is measured by ``make bench-scale``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis_asyncio
from sqlalchemy.engine import make_url

from marquee_auth.main import SERVICE
from marquee_platform.relay import slot_name_for
from marquee_platform.workers import WorkerStatus, read_workers
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.relay import (
    RelayProcess,
    TopicReader,
    connect,
    create_topic,
    drop_slot,
    insert_rows,
    outbox_row,
)
from marquee_testing.waiting import wait_until


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def roles(statuses: list[WorkerStatus], name: str) -> dict[int, str]:
    """The relays of database ``name`` that report themselves alive: pid -> role."""
    return {
        status.pid: status.role
        for status in statuses
        if status.kind == "relay" and status.group == name
    }


@pytest.mark.parametrize("mode", ["cdc", "polling"])
async def test_the_standby_takes_over_when_the_active_relay_dies(
    mode: str,
    make_database: DatabaseFactory,
    kafka_bootstrap: str,
    redis_url: str,
    redis: redis_asyncio.Redis,
    tmp_path: Path,
) -> None:
    url = await make_database(SERVICE.migrations)
    name = str(make_url(url).database)
    topic = f"test.thing-happened-{uuid.uuid4().hex[:10]}.v1"
    await create_topic(kafka_bootstrap, topic, partitions=2)
    rows = [outbox_row(topic, f"agg-{i % 5}", {"seq": i}) for i in range(300)]
    connection = await connect(url)
    relays = [
        RelayProcess(
            [url],
            [name],
            kafka_bootstrap,
            tmp_path / f"relay-{i}.log",
            mode=mode,
            extra_args=("--redis-url", redis_url),
        ).start()
        for i in range(2)
    ]
    by_pid = {relay.pid: relay for relay in relays}

    async def one_active_one_standby() -> bool:
        live = roles(await read_workers(redis), name)
        return sorted(live) == sorted(by_pid) and sorted(live.values()) == ["active", "standby"]

    try:
        async with TopicReader(kafka_bootstrap, topic) as reader:
            await wait_until(
                one_active_one_standby,
                timeout=30,
                message=lambda: "one relay active, the other standing by",
            )
            await insert_rows(connection, rows[:100])
            await reader.wait_for_ids([row.event_id for row in rows[:100]], timeout=30)

            live = roles(await read_workers(redis), name)
            active_pid = next(pid for pid, role in live.items() if role == "active")
            active, standby = (
                by_pid[active_pid],
                next(relay for pid, relay in by_pid.items() if pid != active_pid),
            )
            # Rows committed while the active relay dies and nobody has taken over yet.
            active.kill()
            assert not active.running()
            await insert_rows(connection, rows[100:200])

            async def standby_is_active() -> bool:
                return roles(await read_workers(redis), name).get(standby.pid) == "active"

            await wait_until(
                standby_is_active,
                timeout=30,
                message=lambda: f"the standby to take over; its log:\n{standby.log()}",
            )
            await insert_rows(connection, rows[200:])
            await reader.wait_for_ids([row.event_id for row in rows], timeout=30)
            assert standby.terminate() == 0, standby.log()
    finally:
        for relay in relays:
            relay.kill()
        if mode == "cdc":
            await drop_slot(url, slot_name_for(name))
        await connection.close()

    counts = Counter(message.event_id for message in reader.received)
    assert set(counts) == {row.event_id for row in rows}, "every row arrived, nothing else"
    assert "another relay is active; standing by" in standby.log()
    assert "this relay is now the active one" in standby.log()

    # Both relays' statuses are gone: one expired with its process, one deleted at exit.
    async def none_left() -> bool:
        return not roles(await read_workers(redis), name)

    await wait_until(none_left, timeout=10, message="no relay of the database reported alive")
