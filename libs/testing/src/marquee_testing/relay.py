"""Harness for the relay's integration tests and benchmark (not used at run time).

A relay subprocess stopped by its PID, a reader that collects everything on a topic, an
outbox-row factory and a deadline-based wait, so tests poll for conditions instead of
sleeping for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from marquee_contracts import CloudEvent
from marquee_platform.relay.common import libpq_dsn
from marquee_testing.waiting import wait_until

# -- the relay as a subprocess --------------------------------------------------------


@dataclass
class RelayProcess:
    """``python -m marquee_platform.relay`` in its own process group, logging to a file."""

    database_urls: Sequence[str]
    names: Sequence[str]
    kafka_bootstrap: str
    log_path: Path
    mode: str = "auto"
    extra_args: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> RelayProcess:
        args = [sys.executable, "-m", "marquee_platform.relay"]
        for url, name in zip(self.database_urls, self.names, strict=True):
            args += ["--database-url", url, "--name", name]
        args += ["--kafka-bootstrap", self.kafka_bootstrap, "--mode", self.mode]
        args += ["--log-format", "text", *self.extra_args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "the relay was not started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, the crash a test wants: no cleanup code runs at all."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            assert self.process is not None
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit; SIGKILL if it does not come. The exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# -- topics ---------------------------------------------------------------------------


async def create_topic(bootstrap: str, topic: str, *, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


@dataclass(frozen=True, slots=True)
class Received:
    event_id: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    partition: int
    offset: int
    received_at: float
    """``time.time()`` when the reader got it."""


class TopicReader:
    """Reads every partition of one topic from the beginning into :attr:`received`.

    No consumer group (so no rebalance delay): the topic must exist first, see
    :func:`create_topic`. Records of one partition are appended in offset order, so the
    order of one key's messages in :attr:`received` is the order on the broker.
    """

    def __init__(self, bootstrap: str, topic: str, *, fetch_max_wait_ms: int = 10) -> None:
        self.topic = topic
        self.received: list[Received] = []
        self._ids: set[str] = set()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            # tansu answers a fetch only when this wait is over, even if data arrived in
            # the meantime (Kafka answers at once): the default 500 ms would be the lag.
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        partitions: set[int] | None = None
        deadline = time.monotonic() + 15
        while not partitions:
            partitions = self._consumer.partitions_for_topic(self.topic)
            if not partitions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topic {self.topic} has no partitions")
                # No public way to refresh an unsubscribed topic's metadata.
                await self._consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
        assignment = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(assignment)
        await self._consumer.seek_to_beginning(*assignment)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers or ())
                    event_id = headers.get("ce_id", b"").decode()
                    self._ids.add(event_id)
                    self.received.append(
                        Received(
                            event_id=event_id,
                            key=record.key,
                            value=record.value or b"",
                            headers=headers,
                            partition=record.partition,
                            offset=record.offset,
                            received_at=now,
                        )
                    )

    def event_ids(self) -> set[str]:
        """The distinct event ids read so far (a copy)."""
        return set(self._ids)

    async def wait_for_ids(self, wanted: Iterable[str], *, timeout: float) -> None:
        pending = set(wanted)

        def arrived() -> bool:
            pending.difference_update(self._ids)
            return not pending

        await wait_until(
            arrived,
            timeout=timeout,
            message=lambda: f"{len(pending)} events on {self.topic}, e.g. {sorted(pending)[:3]}",
        )

    async def wait_for_count(self, count: int, *, timeout: float) -> None:
        await wait_until(
            lambda: len(self._ids) >= count,
            timeout=timeout,
            message=lambda: (
                f"{count} distinct events on {self.topic} (have {len(self.event_ids())})"
            ),
        )


# -- outbox rows ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: str
    topic: str
    key: str
    payload: str
    headers: str

    def as_args(self) -> tuple[str, str, str, str, str]:
        return (self.event_id, self.topic, self.key, self.payload, self.headers)


def outbox_row(topic: str, key: str, data: dict[str, Any]) -> OutboxRow:
    """An outbox row the way :func:`marquee_platform.outbox.add_event` writes one."""
    event = CloudEvent(
        source="/marquee/relay-test", type="test.thing-happened.v1", subject=key, data=data
    )
    return OutboxRow(
        event_id=event.id,
        topic=topic,
        key=key,
        payload=json.dumps(event.model_dump(mode="json", exclude_none=True)),
        headers=json.dumps({"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"}),
    )


INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, topic, message_key, payload, headers) "
    "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)"
)


async def insert_rows(connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    """Insert ``rows`` in one transaction."""
    async with connection.transaction():
        await connection.executemany(INSERT_OUTBOX, [row.as_args() for row in rows])


async def connect(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(libpq_dsn(database_url))


async def drop_slot(database_url: str, slot: str, *, timeout: float = 15.0) -> None:
    """Drop ``slot`` once no relay holds it any more (a killed relay's walsender may take
    a moment to notice)."""
    connection = await connect(database_url)
    try:

        async def dropped() -> bool:
            row = await connection.fetchrow(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot
            )
            if row is None:
                return True
            if row["active"]:
                return False
            with contextlib.suppress(asyncpg.UndefinedObjectError, asyncpg.ObjectInUseError):
                await connection.execute("SELECT pg_drop_replication_slot($1)", slot)
            return False

        await wait_until(dropped, timeout=timeout, message=f"slot {slot} to be released")
    finally:
        await connection.close()


async def slot_exists(database_url: str, slot: str) -> bool:
    connection = await connect(database_url)
    try:
        return bool(
            await connection.fetchval(
                "SELECT true FROM pg_replication_slots WHERE slot_name = $1", slot
            )
        )
    finally:
        await connection.close()
