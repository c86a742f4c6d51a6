"""What the relay delivers, and what it never does: rows committed while it was down, rows
from before its slot existed, rolled-back rows, several databases from one process, and
the retention sweep."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from marquee_auth.main import SERVICE
from marquee_platform.relay import (
    RelayConfigError,
    RelayOptions,
    resolve_mode,
    run_relay,
    slot_name_for,
)
from marquee_platform.relay.common import libpq_dsn
from marquee_platform.relay.retention import purge_relayed
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.relay import (
    INSERT_OUTBOX,
    RelayProcess,
    TopicReader,
    connect,
    create_topic,
    drop_slot,
    insert_rows,
    outbox_row,
    slot_exists,
    wait_until,
)

FAST = RelayOptions(poll_interval=0.05, retention_interval=0.2)


@dataclass
class Outbox:
    url: str
    name: str
    topic: str
    connection: asyncpg.Connection

    @property
    def slot(self) -> str:
        return slot_name_for(self.name)


@pytest.fixture
async def outbox(make_database: DatabaseFactory, kafka_bootstrap: str) -> AsyncIterator[Outbox]:
    """A migrated database, a connection to it and a fresh topic (4 partitions).

    Afterwards the relay's slot is dropped; each test stops its relay before that.
    """
    url = await make_database(SERVICE.migrations)
    topic = f"test.thing-happened-{uuid.uuid4().hex[:10]}.v1"
    await create_topic(kafka_bootstrap, topic, partitions=4)
    connection = await connect(url)
    box = Outbox(url=url, name=str(make_url(url).database), topic=topic, connection=connection)
    try:
        yield box
    finally:
        await connection.close()
        await drop_slot(url, box.slot)


async def skip_unless_logical(connection: asyncpg.Connection, mode: str) -> None:
    if mode in ("cdc", "auto") and await connection.fetchval("SHOW wal_level") != "logical":
        pytest.fail(
            "CDC needs wal_level=logical: ALTER SYSTEM SET wal_level = logical and restart "
            "PostgreSQL (see .ci/run)"
        )


@contextlib.asynccontextmanager
async def relay_in_process(
    outbox: Outbox, bootstrap: str, mode: str, options: RelayOptions = FAST
) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_relay(outbox.url, bootstrap, name=outbox.name, mode=mode, stop=stop, options=options)
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("mode", ["cdc", "polling"])
async def test_row_committed_while_the_relay_is_down_is_delivered_after_restart(
    mode: str, outbox: Outbox, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await skip_unless_logical(outbox.connection, mode)
    before, during = (outbox_row(outbox.topic, "agg-1", {"n": n}) for n in (1, 2))
    log = tmp_path / "relay.log"
    relay = RelayProcess([outbox.url], [outbox.name], kafka_bootstrap, log, mode=mode)
    async with TopicReader(kafka_bootstrap, outbox.topic) as reader:
        try:
            relay.start()
            await insert_rows(outbox.connection, [before])
            await reader.wait_for_ids([before.event_id], timeout=20)
            assert relay.terminate() == 0, relay.log()  # SIGTERM: a clean exit

            if mode == "cdc":
                assert await slot_exists(outbox.url, outbox.slot), "the slot outlives the relay"
            await insert_rows(outbox.connection, [during])

            relay = RelayProcess([outbox.url], [outbox.name], kafka_bootstrap, log, mode=mode)
            relay.start()
            await reader.wait_for_ids([during.event_id], timeout=20)
            assert relay.terminate() == 0, relay.log()
        finally:
            relay.kill()
    counts = Counter(message.event_id for message in reader.received)
    # A clean stop confirms what was acknowledged, so nothing is sent twice.
    assert counts == {before.event_id: 1, during.event_id: 1}


async def test_rows_written_before_the_slot_existed_are_sent_from_its_snapshot(
    outbox: Outbox, kafka_bootstrap: str
) -> None:
    await skip_unless_logical(outbox.connection, "cdc")
    earlier = [outbox_row(outbox.topic, f"agg-{i % 3}", {"i": i}) for i in range(50)]
    await insert_rows(outbox.connection, earlier)
    assert not await slot_exists(outbox.url, outbox.slot)
    async with (
        TopicReader(kafka_bootstrap, outbox.topic) as reader,
        relay_in_process(outbox, kafka_bootstrap, "cdc"),
    ):
        await reader.wait_for_ids([row.event_id for row in earlier], timeout=20)
        # The permanent slot appears once those rows are acknowledged and marked.
        await wait_until(
            lambda: slot_exists(outbox.url, outbox.slot), timeout=20, message="the slot"
        )
        later = [outbox_row(outbox.topic, "agg-0", {"i": i}) for i in range(50, 60)]
        await insert_rows(outbox.connection, later)
        await reader.wait_for_ids([row.event_id for row in later], timeout=20)
    unpublished = await outbox.connection.fetchval(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND event_id = ANY($1::uuid[])",
        [row.event_id for row in earlier],
    )
    assert unpublished == 0, "the snapshot's rows are marked published"
    assert Counter(message.event_id for message in reader.received).most_common(1)[0][1] == 1


@pytest.mark.parametrize("mode", ["cdc", "polling"])
async def test_rolled_back_rows_never_reach_the_topic(
    mode: str, outbox: Outbox, kafka_bootstrap: str
) -> None:
    await skip_unless_logical(outbox.connection, mode)
    connection = outbox.connection
    rolled_back: list[str] = []
    kept: list[str] = []

    def row(label: str) -> tuple[str, str, str, str, str]:
        # One key, so one partition: anything relayed before the marker is read before it.
        made = outbox_row(outbox.topic, "agg-1", {"label": label})
        return made.as_args()

    async with (
        TopicReader(kafka_bootstrap, outbox.topic) as reader,
        relay_in_process(outbox, kafka_bootstrap, mode),
    ):
        # 1. An explicit rollback.
        transaction = connection.transaction()
        await transaction.start()
        for _ in range(5):
            args = row("rolled back")
            rolled_back.append(args[0])
            await connection.execute(INSERT_OUTBOX, *args)
        await transaction.rollback()

        # 2. A transaction that fails part-way (duplicate event id) after inserting.
        duplicate = row("kept")
        kept.append(duplicate[0])
        await connection.execute(INSERT_OUTBOX, *duplicate)
        failing = row("failed")
        rolled_back.append(failing[0])

        async def insert_then_fail() -> None:
            async with connection.transaction():
                await connection.execute(INSERT_OUTBOX, *failing)
                await connection.execute(INSERT_OUTBOX, *duplicate)

        with pytest.raises(asyncpg.UniqueViolationError):
            await insert_then_fail()

        # 3. A savepoint rolled back inside a transaction that commits.
        async with connection.transaction():
            args = row("kept")
            kept.append(args[0])
            await connection.execute(INSERT_OUTBOX, *args)
            with contextlib.suppress(RuntimeError):
                async with connection.transaction():  # a savepoint
                    args = row("rolled back to savepoint")
                    rolled_back.append(args[0])
                    await connection.execute(INSERT_OUTBOX, *args)
                    raise RuntimeError("roll back to the savepoint")

        marker = row("marker")
        await connection.execute(INSERT_OUTBOX, *marker)
        await reader.wait_for_ids([*kept, marker[0]], timeout=20)

    assert reader.event_ids().isdisjoint(rolled_back)
    assert reader.event_ids() == {*kept, marker[0]}
    relayed = REGISTRY.get_sample_value(
        "marquee_relay_messages_total", {"database": outbox.name, "mode": mode}
    )
    assert relayed is not None
    assert relayed >= 3


async def test_auto_mode_picks_cdc_where_wal_level_is_logical(outbox: Outbox) -> None:
    level = await outbox.connection.fetchval("SHOW wal_level")
    expected = "cdc" if level == "logical" else "polling"
    assert await resolve_mode(libpq_dsn(outbox.url), "auto") == expected
    assert await resolve_mode(libpq_dsn(outbox.url), "polling") == "polling"


async def test_one_process_relays_several_databases(
    make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    urls = [await make_database(SERVICE.migrations) for _ in range(2)]
    names = [str(make_url(url).database) for url in urls]
    topic = f"test.thing-happened-{uuid.uuid4().hex[:10]}.v1"
    await create_topic(kafka_bootstrap, topic, partitions=2)
    rows = [outbox_row(topic, f"agg-{i}", {"db": i}) for i in range(2)]
    relay = RelayProcess(urls, names, kafka_bootstrap, tmp_path / "relay.log", mode="auto")
    try:
        async with TopicReader(kafka_bootstrap, topic) as reader:
            relay.start()
            for url, row in zip(urls, rows, strict=True):
                connection = await connect(url)
                try:
                    await insert_rows(connection, [row])
                finally:
                    await connection.close()
            await reader.wait_for_ids([row.event_id for row in rows], timeout=20)
        assert relay.terminate() == 0, relay.log()
    finally:
        relay.kill()
        for url, name in zip(urls, names, strict=True):
            await drop_slot(url, slot_name_for(name))


async def _insert_aged(
    connection: asyncpg.Connection, topic: str, *, age: timedelta, published: bool
) -> int:
    row = outbox_row(topic, "agg-1", {"age": str(age)})
    return int(
        await connection.fetchval(
            "INSERT INTO outbox (event_id, topic, message_key, payload, headers, created_at,"
            " published_at) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, now() - $6::interval,"
            " CASE WHEN $7 THEN now() END) RETURNING position",
            *row.as_args(),
            age,
            published,
        )
    )


async def test_retention_deletes_only_old_relayed_rows(outbox: Outbox) -> None:
    connection = outbox.connection
    await _insert_aged(  # old and published: the one polling-mode sweep deletes
        connection, outbox.topic, age=timedelta(days=2), published=True
    )
    old_unpublished = await _insert_aged(
        connection, outbox.topic, age=timedelta(days=2), published=False
    )
    old_streamed = await _insert_aged(
        connection, outbox.topic, age=timedelta(days=2), published=False
    )
    young_published = await _insert_aged(
        connection, outbox.topic, age=timedelta(minutes=5), published=True
    )

    async def positions() -> set[int]:
        return {r["position"] for r in await connection.fetch("SELECT position FROM outbox")}

    # Polling mode: published_at says what was relayed.
    assert await purge_relayed(connection, retention=timedelta(hours=24)) == 1
    assert await positions() == {old_unpublished, old_streamed, young_published}
    # CDC mode: everything up to the confirmed position was relayed.
    deleted = await purge_relayed(
        connection, retention=timedelta(hours=24), relayed_up_to=old_unpublished
    )
    assert deleted == 1
    assert await positions() == {old_streamed, young_published}


async def test_the_relay_sweeps_old_rows_while_it_runs(
    outbox: Outbox, kafka_bootstrap: str
) -> None:
    old = await _insert_aged(
        outbox.connection, outbox.topic, age=timedelta(days=2), published=False
    )
    options = RelayOptions(poll_interval=0.05, retention_interval=0.1)
    async with relay_in_process(outbox, kafka_bootstrap, "polling", options):

        async def swept() -> bool:
            return not await outbox.connection.fetchval(
                "SELECT count(*) FROM outbox WHERE position = $1", old
            )

        await wait_until(swept, timeout=20, message="the relayed old row to be deleted")


async def test_a_name_whose_slot_belongs_to_another_database_stops_the_relay(
    outbox: Outbox, make_database: DatabaseFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Slot names are cluster-wide; reusing one for a second database is a configuration
    error (exit code 2), not something to retry forever."""
    await skip_unless_logical(outbox.connection, "cdc")
    async with relay_in_process(outbox, kafka_bootstrap, "cdc"):
        await wait_until(
            lambda: slot_exists(outbox.url, outbox.slot), timeout=20, message="the slot"
        )
    other = await make_database(SERVICE.migrations)
    with pytest.raises(RelayConfigError, match="belongs to database"):
        await run_relay(other, kafka_bootstrap, name=outbox.name, mode="cdc")

    relay = RelayProcess([other], [outbox.name], kafka_bootstrap, tmp_path / "relay.log")
    relay.start()
    try:
        await wait_until(lambda: not relay.running(), timeout=20, message="the relay to exit")
        assert relay.terminate() == 2, relay.log()
        assert "belongs to database" in relay.log()
    finally:
        relay.kill()
