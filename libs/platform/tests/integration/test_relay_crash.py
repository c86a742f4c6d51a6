"""The relay survives SIGKILL at any instant: nothing is lost, per-key order holds.

10,000 outbox rows are committed in transactions of 100 while the relay runs as a
subprocess; when half are on the topic — and the writer, held at 7,000, is provably still
writing — the relay is SIGKILLed, the writer finishes, and the relay is restarted.
Every event must arrive; duplicates are allowed (and reported), and among first
deliveries each key's events keep their commit order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from marquee_auth.main import SERVICE
from marquee_platform.relay import slot_name_for
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.relay import (
    OutboxRow,
    RelayProcess,
    TopicReader,
    connect,
    create_topic,
    drop_slot,
    insert_rows,
    outbox_row,
    wait_until,
)

ROWS = 10_000
PER_TRANSACTION = 100
KEYS = 37


async def require_logical_replication(connection: asyncpg.Connection) -> None:
    level = await connection.fetchval("SHOW wal_level")
    if level != "logical":
        pytest.fail(
            f"CDC needs wal_level=logical (the server has {level}): "
            "ALTER SYSTEM SET wal_level = logical and restart PostgreSQL (see .ci/run)"
        )


WRITTEN_BEFORE_THE_KILL = 7_000
"""The writer stops here until the relay was killed, so the kill always lands while rows
are still being written (and with half of them on the topic: 5,000 < 7,000)."""


class PacedWriter:
    """Commits rows in transactions of PER_TRANSACTION, a little apart, so the relay is
    streaming (not catching up on a finished backlog); holds at WRITTEN_BEFORE_THE_KILL
    until ``resume`` is set."""

    def __init__(self, connection: asyncpg.Connection, rows: list[OutboxRow]) -> None:
        self.connection = connection
        self.rows = rows
        self.written = 0
        self.resume = asyncio.Event()

    async def run(self) -> None:
        for start in range(0, len(self.rows), PER_TRANSACTION):
            if start == WRITTEN_BEFORE_THE_KILL:
                await self.resume.wait()
            await insert_rows(self.connection, self.rows[start : start + PER_TRANSACTION])
            self.written = start + PER_TRANSACTION
            await asyncio.sleep(0.02)  # pacing the writer, not waiting for a condition


@pytest.mark.parametrize("mode", ["cdc", "polling"])
async def test_sigkill_mid_stream_loses_nothing(
    mode: str, make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = await make_database(SERVICE.migrations)
    name = str(make_url(url).database)
    topic = f"test.thing-happened-{uuid.uuid4().hex[:10]}.v1"
    rows = [outbox_row(topic, f"agg-{i % KEYS}", {"seq": i}) for i in range(ROWS)]
    sequence = {row.event_id: i for i, row in enumerate(rows)}
    await create_topic(kafka_bootstrap, topic, partitions=4)

    connection = await connect(url)
    if mode == "cdc":
        try:
            await require_logical_replication(connection)
        except BaseException:
            await connection.close()
            raise
    log = tmp_path / "relay.log"
    relay = RelayProcess([url], [name], kafka_bootstrap, log, mode=mode).start()
    restarted: RelayProcess | None = None
    try:
        async with TopicReader(kafka_bootstrap, topic) as reader:
            if mode == "cdc":
                # Start writing once the slot streams, so the kill hits the streaming path
                # (test_relay_delivery covers rows written before the slot existed).
                await wait_until(
                    lambda: _slot_active(connection, slot_name_for(name)),
                    timeout=20,
                    message=lambda: f"the relay's slot to be active; log:\n{relay.log()}",
                )
            writer = PacedWriter(connection, rows)
            inserting = asyncio.create_task(writer.run())
            await reader.wait_for_count(ROWS // 2, timeout=30)
            relay.kill()
            on_topic_at_kill = len(reader.event_ids())
            written_at_kill = writer.written
            # Mid-stream, provably: the writer was still writing and not all it had written
            # was on the topic yet.
            assert not inserting.done()
            assert on_topic_at_kill < ROWS
            assert written_at_kill <= WRITTEN_BEFORE_THE_KILL < ROWS
            writer.resume.set()
            await inserting
            restarted = RelayProcess([url], [name], kafka_bootstrap, log, mode=mode).start()
            await reader.wait_for_ids(sequence, timeout=40)
            assert restarted.terminate() == 0, restarted.log()
    finally:
        relay.kill()
        if restarted is not None:
            restarted.kill()
        if mode == "cdc":
            await drop_slot(url, slot_name_for(name))
        await connection.close()

    counts = Counter(message.event_id for message in reader.received)
    missing = set(sequence) - set(counts)
    duplicates = sum(count - 1 for count in counts.values())
    print(
        f"\n[{mode}] killed with {on_topic_at_kill}/{ROWS} on the topic; "
        f"{len(reader.received)} deliveries, {duplicates} duplicates, {len(missing)} missing"
    )
    assert not missing
    assert set(counts) == set(sequence), "messages that were never in the outbox"
    # Rows committed after the kill can only have come from the restarted relay.
    after_the_kill = {row.event_id for row in rows[written_at_kill:]}
    assert after_the_kill
    assert after_the_kill <= set(counts)
    # A restart re-sends at most what was committed before the kill and not yet
    # confirmed: never more than everything written before it.
    assert duplicates <= written_at_kill, f"{duplicates} duplicates, {written_at_kill} rows"

    first_order: dict[bytes | None, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for message in reader.received:
        if message.event_id not in seen:
            seen.add(message.event_id)
            first_order[message.key].append(sequence[message.event_id])
    assert len(first_order) == KEYS
    for key, seqs in first_order.items():
        assert seqs == sorted(seqs), f"key {key!r} out of order among first deliveries"

    sample = reader.received[0]
    envelope = json.loads(sample.value)
    assert envelope["id"] == sample.event_id == sample.headers["ce_id"].decode()
    assert envelope["specversion"] == "1.0"
    assert sample.headers["traceparent"].startswith(b"00-")


async def _slot_active(connection: asyncpg.Connection, slot: str) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot
        )
    )


async def test_sigkill_during_the_first_start_snapshot_loses_nothing(
    make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Killed while sending the rows that predate its slot, the relay has made no slot yet
    (the temporary one dies with it), so the next start takes the snapshot again."""
    url = await make_database(SERVICE.migrations)
    name = str(make_url(url).database)
    slot = slot_name_for(name)
    topic = f"test.thing-happened-{uuid.uuid4().hex[:10]}.v1"
    await create_topic(kafka_bootstrap, topic, partitions=4)
    connection = await connect(url)
    try:
        await require_logical_replication(connection)
    except BaseException:
        await connection.close()
        raise
    earlier = [outbox_row(topic, f"agg-{i % KEYS}", {"seq": i}) for i in range(30_000)]
    await connection.copy_records_to_table(
        "outbox",
        records=[row.as_args() for row in earlier],
        columns=["event_id", "topic", "message_key", "payload", "headers"],
    )
    log = tmp_path / "relay.log"
    relay = RelayProcess([url], [name], kafka_bootstrap, log, mode="cdc").start()
    restarted: RelayProcess | None = None
    try:
        async with TopicReader(kafka_bootstrap, topic) as reader:
            await reader.wait_for_count(1_000, timeout=30)
            relay.kill()
            on_topic_at_kill = len(reader.event_ids())
            assert not await _slot_exists(connection, slot), "killed after the snapshot"
            later = outbox_row(topic, "agg-0", {"seq": len(earlier)})
            await insert_rows(connection, [later])
            restarted = RelayProcess([url], [name], kafka_bootstrap, log, mode="cdc").start()
            await reader.wait_for_ids(
                [*(row.event_id for row in earlier), later.event_id], timeout=60
            )
            assert restarted.terminate() == 0, restarted.log()
    finally:
        relay.kill()
        if restarted is not None:
            restarted.kill()
        await drop_slot(url, slot)
        await connection.close()
    duplicates = len(reader.received) - len(reader.event_ids())
    print(f"\n[cdc snapshot] killed with {on_topic_at_kill}/30000 sent; {duplicates} duplicates")


async def _slot_exists(connection: asyncpg.Connection, slot: str) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT true FROM pg_replication_slots WHERE slot_name = $1", slot
        )
    )
