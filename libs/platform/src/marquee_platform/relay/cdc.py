"""The CDC relay: outbox inserts streamed from PostgreSQL's logical replication.

psycopg2's ``LogicalReplicationConnection`` reads the ``pgoutput`` stream of the
``marquee_outbox`` publication from one slot per database (``marquee_outbox_<name>``);
psycopg 3 and asyncpg cannot speak the replication protocol. Each inserted row is sent
to Kafka as it arrives, many sends in flight. The slot position is confirmed only up to
the end of the last transaction whose every row the broker acknowledged, and only in
commit order, so a crash at any instant replays from a point where nothing after it was
confirmed: duplicates, never losses.

The replication connection is a blocking psycopg2 connection, but ``read_message()``
never blocks: the loop reads until it returns None, then waits for the socket with
``loop.add_reader``. Setup commands that can wait on the server (slot creation waits for
running transactions) run in a thread.

**First start.** A slot only streams changes committed after it was created. Rows
already in the outbox (written before the relay ever ran, or left by the polling relay)
are sent from the snapshot the slot was created with, so the hand-over is exact. To make
that crash-safe the slot is first created *temporary* (it vanishes with the session),
the snapshot's unpublished rows are sent and marked published, and only then is the
temporary slot copied to the permanent one (same start position). A crash before the
copy leaves no slot and the next start does it all again.

**Caveats.** Rows streamed here keep ``published_at`` NULL (marking them would double the
write load), so moving a database from CDC back to polling resends up to the retention
window: duplicates, which consumers absorb. Per-key order holds because aiokafka keeps one
request in flight per broker; only if the broker rejects a batch for good while later ones
succeed can a key's first deliveries reorder (the session restarts and resends).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psycopg2
import psycopg2.extras
from aiokafka import AIOKafkaProducer

from marquee_platform.metrics import RELAYED
from marquee_platform.outbox import OUTBOX_PUBLICATION
from marquee_platform.relay import pgoutput
from marquee_platform.relay.common import (
    RelayConfigError,
    RelayOptions,
    kafka_headers,
    slot_name_for,
)

logger = logging.getLogger("marquee.relay")

_SNAPSHOT_NAME = re.compile(r"^[0-9A-Fa-f-]+$")
_BACKFILL = """
SELECT position, event_id::text AS event_id, topic, message_key,
       payload::text AS payload, headers::text AS headers
FROM outbox
WHERE published_at IS NULL
ORDER BY position
"""
_MARK = "UPDATE outbox SET published_at = now() WHERE position = ANY($1::bigint[])"


@dataclass
class CdcProgress:
    """What survives one CDC session for the next, and for the retention sweep."""

    confirmed_position: int = 0
    """Highest outbox position in a transaction whose slot position was confirmed."""


@dataclass(slots=True)
class _Transaction:
    unacked: int = 0
    rows: int = 0
    committed: bool = False
    end_lsn: int = 0
    max_position: int = 0

    @property
    def done(self) -> bool:
        return self.committed and self.unacked == 0


@dataclass(frozen=True, slots=True)
class _OutboxLayout:
    """Where the relay's columns sit in the outbox's tuples (from its Relation message)."""

    position: int
    event_id: int
    topic: int
    message_key: int
    payload: int
    headers: int

    @classmethod
    def of(cls, relation: pgoutput.Relation) -> _OutboxLayout | None:
        if relation.name != "outbox":
            return None
        return cls(
            position=relation.column_index("position"),
            event_id=relation.column_index("event_id"),
            topic=relation.column_index("topic"),
            message_key=relation.column_index("message_key"),
            payload=relation.column_index("payload"),
            headers=relation.column_index("headers"),
        )


class ReplicationStreamEnded(RuntimeError):
    """The server stopped sending without an error; reconnecting is the cure."""


def _connect_replication(dsn: str) -> psycopg2.extras.LogicalReplicationConnection:
    connection = psycopg2.connect(
        dsn,
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
        application_name="marquee-relay",
    )
    assert isinstance(connection, psycopg2.extras.LogicalReplicationConnection)
    return connection


def _create_temporary_slot(
    connection: psycopg2.extras.LogicalReplicationConnection, slot: str
) -> tuple[str, str]:
    """Create a temporary pgoutput slot exporting its snapshot; (consistent point, snapshot).

    Blocks until every transaction running now has finished (that is how the server finds a
    consistent point), hence called in a thread.
    """
    cursor = connection.cursor()
    cursor.execute(
        f"CREATE_REPLICATION_SLOT \"{slot}\" TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')"
    )
    row = cursor.fetchone()
    assert row is not None
    _, consistent_point, snapshot, _ = row
    return str(consistent_point), str(snapshot)


@dataclass
class CdcRelay:
    """One session of streaming one database's outbox; ends on ``stop`` or on an error."""

    dsn: str
    producer: AIOKafkaProducer
    name: str
    options: RelayOptions
    stop: asyncio.Event
    progress: CdcProgress = field(default_factory=CdcProgress)

    def __post_init__(self) -> None:
        self.slot = slot_name_for(self.name)
        self._relayed = RELAYED.labels(database=self.name, mode="cdc")
        self._layouts: dict[int, _OutboxLayout | None] = {}
        self._open: _Transaction | None = None
        self._transactions: deque[_Transaction] = deque()
        self._in_flight = 0
        self._failure: BaseException | None = None
        self._progressed = asyncio.Event()
        self._confirmed_lsn = 0
        self._sent_lsn = 0
        self._last_feedback = 0.0
        self._cursor: psycopg2.extras.ReplicationCursor | None = None

    # -- the session -------------------------------------------------------------------

    async def run(self) -> None:
        await self._ensure_slot()
        connection = await asyncio.to_thread(_connect_replication, self.dsn)
        try:
            cursor = connection.cursor()
            await asyncio.to_thread(
                cursor.start_replication,
                slot_name=self.slot,
                decode=False,
                options={"proto_version": "1", "publication_names": OUTBOX_PUBLICATION},
                status_interval=self.options.status_interval,
            )
            self._cursor = cursor
            logger.info("outbox %s: streaming from slot %s", self.name, self.slot)
            await self._stream(cursor, connection.fileno())
        finally:
            connection.close()
        logger.info("outbox %s: CDC relay stopped", self.name)

    async def _stream(self, cursor: psycopg2.extras.ReplicationCursor, fd: int) -> None:
        handled = 0
        woke_readable = False
        empty_wakeups = 0
        window_started = time.monotonic()
        while not self.stop.is_set():
            self._raise_if_failed()
            message = cursor.read_message()
            if message is None:
                if woke_readable:
                    # Readable sockets that yield nothing, again and again, mean the server
                    # ended the stream (CopyDone) without an error: spin no further.
                    now = time.monotonic()
                    if now - window_started > 1.0:
                        window_started, empty_wakeups = now, 0
                    empty_wakeups += 1
                    if empty_wakeups > 500:
                        raise ReplicationStreamEnded(f"slot {self.slot} stopped streaming")
                self._send_feedback()
                woke_readable = await self._wait_readable(
                    fd, min(0.5, self.options.status_interval)
                )
                continue
            woke_readable = False
            await self._handle(message.payload)
            handled += 1
            if handled % 256 == 0:
                # Let the producer's sender and the ack callbacks run during a backlog.
                self._send_feedback()
                await asyncio.sleep(0)
        await self._drain()

    async def _wait_readable(self, fd: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await asyncio.wait_for(ready, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)

    # -- messages ----------------------------------------------------------------------

    async def _handle(self, payload: bytes) -> None:
        message = pgoutput.decode(payload)
        if isinstance(message, pgoutput.Insert):
            if message.relation_oid not in self._layouts:
                # pgoutput describes every relation before its first change in a session.
                raise pgoutput.PgOutputError(
                    f"Insert into undescribed relation {message.relation_oid}"
                )
            layout = self._layouts[message.relation_oid]
            if layout is not None:  # None: another table someone added to the publication
                await self._send_row(message, layout)
        elif isinstance(message, pgoutput.Begin):
            self._open = _Transaction()
            self._transactions.append(self._open)
        elif isinstance(message, pgoutput.Commit):
            if self._open is None:
                raise pgoutput.PgOutputError("Commit without Begin")
            self._open.end_lsn = message.end_lsn
            self._open.committed = True
            self._open = None
            self._advance()
        elif isinstance(message, pgoutput.Relation):
            self._layouts[message.oid] = _OutboxLayout.of(message)

    async def _send_row(self, insert: pgoutput.Insert, layout: _OutboxLayout) -> None:
        transaction = self._open
        if transaction is None:
            raise pgoutput.PgOutputError("Insert outside a transaction")
        values = insert.values
        topic, key, payload = (
            values[layout.topic],
            values[layout.message_key],
            values[layout.payload],
        )
        event_id, position = values[layout.event_id], values[layout.position]
        if topic is None or key is None or payload is None or event_id is None or not position:
            raise pgoutput.PgOutputError("an outbox row with a NULL required column")
        ack = await self.producer.send(
            topic.decode(),
            value=payload,
            key=key,
            headers=kafka_headers(values[layout.headers], event_id.decode()),
        )
        transaction.unacked += 1
        transaction.rows += 1
        transaction.max_position = max(transaction.max_position, int(position))
        self._in_flight += 1
        ack.add_done_callback(functools.partial(self._on_ack, transaction))
        if self._in_flight >= self.options.max_in_flight:
            await self._wait_for_room()

    def _on_ack(self, transaction: _Transaction, ack: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        if ack.cancelled():
            self._failure = self._failure or asyncio.CancelledError("send cancelled")
        elif (error := ack.exception()) is not None:
            self._failure = self._failure or error
        else:
            transaction.unacked -= 1
            if transaction.done:
                self._advance()
        self._progressed.set()

    def _advance(self) -> None:
        """Confirm every leading transaction that is committed and fully acknowledged."""
        rows = 0
        while self._transactions and self._transactions[0].done:
            transaction = self._transactions.popleft()
            self._confirmed_lsn = transaction.end_lsn
            rows += transaction.rows
            if transaction.max_position > self.progress.confirmed_position:
                self.progress.confirmed_position = transaction.max_position
        if rows:
            self._relayed.inc(rows)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the broker did not acknowledge a row: {self._failure!r}") from (
                self._failure
            )

    async def _wait_for_room(self) -> None:
        """Stop reading the slot while too much is unacknowledged (the server buffers)."""
        while self._in_flight >= self.options.max_in_flight // 2:
            self._raise_if_failed()
            self._progressed.clear()
            try:
                await asyncio.wait_for(self._progressed.wait(), self.options.status_interval)
            except TimeoutError:
                self._send_feedback(force=True)

    async def _drain(self) -> None:
        """On stop: wait (bounded) for the acks in flight, then confirm what they allow."""
        deadline = time.monotonic() + self.options.drain_timeout
        while self._in_flight and self._failure is None:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.warning(
                    "outbox %s: %d rows unacknowledged at stop; they will be sent again",
                    self.name,
                    self._in_flight,
                )
                break
            self._progressed.clear()
            try:
                await asyncio.wait_for(self._progressed.wait(), left)
            except TimeoutError:
                continue
        self._send_feedback(force=True)

    def _send_feedback(self, *, force: bool = False) -> None:
        """Confirm the slot position (rate-limited unless forced). Keepalives while idle are
        sent by psycopg2 itself from ``read_message()`` every ``status_interval``."""
        now = time.monotonic()
        if self._confirmed_lsn <= self._sent_lsn and not force:
            return
        if not force and now - self._last_feedback < self.options.feedback_interval:
            return
        assert self._cursor is not None, "feedback before replication started"
        flush = max(self._confirmed_lsn, self._sent_lsn)
        # types-psycopg2 leaves send_feedback untyped.
        if flush:
            self._cursor.send_feedback(  # type: ignore[no-untyped-call]
                write_lsn=flush, flush_lsn=flush, force=True
            )
        else:
            self._cursor.send_feedback(force=True)  # type: ignore[no-untyped-call]
        self._sent_lsn = flush
        self._last_feedback = now

    # -- the slot ----------------------------------------------------------------------

    async def _ensure_slot(self) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            row = await connection.fetchrow(
                "SELECT database, plugin, current_database() AS here"
                " FROM pg_replication_slots WHERE slot_name = $1",
                self.slot,
            )
        finally:
            await connection.close()
        if row is None:
            await self._create_slot_with_backfill()
        elif (row["database"], row["plugin"]) != (row["here"], "pgoutput"):
            # Slot names are cluster-wide: two databases relayed under one name would fight
            # over one slot forever. No retry fixes that.
            raise RelayConfigError(
                f"slot {self.slot} belongs to database {row['database']} "
                f"(plugin {row['plugin']}), not to {row['here']}: give this relay another --name"
            )

    async def _create_slot_with_backfill(self) -> None:
        temporary = f"{self.slot}_init"
        replication = await asyncio.to_thread(_connect_replication, self.dsn)
        try:
            consistent_point, snapshot = await asyncio.to_thread(
                _create_temporary_slot, replication, temporary
            )
            if not _SNAPSHOT_NAME.match(snapshot):
                raise RuntimeError(f"unexpected snapshot name {snapshot!r}")
            connection = await asyncpg.connect(self.dsn)
            try:
                positions = await self._backfill(connection, snapshot)
                for start in range(0, len(positions), 10_000):
                    await connection.execute(_MARK, positions[start : start + 10_000])
                await connection.execute(
                    "SELECT pg_copy_logical_replication_slot($1, $2, false)",
                    temporary,
                    self.slot,
                )
            finally:
                await connection.close()
        finally:
            replication.close()
        logger.info(
            "outbox %s: created slot %s at %s after sending %d earlier rows",
            self.name,
            self.slot,
            consistent_point,
            len(positions),
        )

    async def _backfill(self, connection: asyncpg.Connection, snapshot: str) -> list[int]:
        """Send the unpublished rows the slot's snapshot sees; return their positions."""
        positions: list[int] = []
        acks: list[asyncio.Future[Any]] = []
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            await connection.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            async for row in connection.cursor(_BACKFILL, prefetch=1_000):
                acks.append(
                    await self.producer.send(
                        row["topic"],
                        value=row["payload"].encode(),
                        key=row["message_key"].encode(),
                        headers=kafka_headers(row["headers"], row["event_id"]),
                    )
                )
                positions.append(row["position"])
                if len(acks) >= self.options.max_in_flight:
                    await asyncio.gather(*acks)
                    acks.clear()
            await asyncio.gather(*acks)
        if positions:
            self._relayed.inc(len(positions))
        return positions
