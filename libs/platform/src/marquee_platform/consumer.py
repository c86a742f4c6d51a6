"""The consumer runner: one consumer group per service, exactly-once effects.

For every message the runner opens one transaction, records the event id in ``inbox``
(a duplicate is a no-op) and applies the handler; it commits the offset only after that
transaction committed. A crash between the two redelivers the message, and the inbox
turns the redelivery into nothing. A message that keeps failing is retried with
exponential backoff and then parked on the group's dead-letter topic, so one poison
message never stalls the partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert

from marquee_contracts import REGISTRY, CloudEvent, TopicRegistry, UnknownEventType
from marquee_contracts.topics import dead_letter_topic
from marquee_platform.db import Database, WriteSession
from marquee_platform.kafka import create_producer, ensure_topics
from marquee_platform.metrics import ASSIGNED_PARTITIONS, CONSUMED, CONSUMER_LAG, REBALANCES
from marquee_platform.outbox import INBOX
from marquee_platform.tracing import headers_from_kafka, span_from_headers
from marquee_platform.workers import WorkerBeacon, WorkerStatus, this_instance

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One consumed event, as a handler sees it."""

    event: CloudEvent
    data: BaseModel
    topic: str
    partition: int
    offset: int
    headers: Mapping[str, str]


Handler = Callable[[Delivery, WriteSession], Awaitable[None]]
AfterApply = Callable[[Delivery], Awaitable[None]]


class PoisonMessage(Exception):
    """The message can never be applied (not JSON, unknown type, invalid data)."""


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    first_delay_seconds: float = 0.2
    max_delay_seconds: float = 10.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so a fleet of consumers doesn't stampede."""
        ceiling = min(self.max_delay_seconds, self.first_delay_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


@dataclass(frozen=True)
class GroupTiming:
    """How fast the group notices a member that died.

    The broker gives a dead member's partitions to the others once it has missed
    heartbeats for ``session_timeout_ms``; then the group rebalances. Kafka's client
    default (10 s, and 45 s in the Java client) left partitions stalled for up to 17 s
    after a SIGKILL; 2 s with a heartbeat every 0.3 s fails over in 3.3 to 3.7 s on tansu
    (3 s / 0.5 s took 6.1 s; measured by ``make bench-scale``). A replica whose event loop
    stalls for longer than the session loses its partitions to a rebalance: a pause and
    redeliveries, which the inbox absorbs. Real Kafka refuses a session timeout under its
    ``group.min.session.timeout.ms`` (6 s by default): lower that on the broker to match.
    A stop by signal leaves the group at once and needs no timeout. Override with
    ``MARQUEE_CONSUMER_SESSION_TIMEOUT_MS`` and ``MARQUEE_CONSUMER_HEARTBEAT_INTERVAL_MS``.
    """

    session_timeout_ms: int = 2000
    heartbeat_interval_ms: int = 300

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> GroupTiming:
        environ = os.environ if environ is None else environ
        default = cls()
        session = int(
            environ.get("MARQUEE_CONSUMER_SESSION_TIMEOUT_MS", default.session_timeout_ms)
        )
        heartbeat = int(
            environ.get("MARQUEE_CONSUMER_HEARTBEAT_INTERVAL_MS", default.heartbeat_interval_ms)
        )
        if heartbeat * 3 > session:
            raise ValueError(
                f"the heartbeat interval ({heartbeat} ms) must be at most a third of the "
                f"session timeout ({session} ms)"
            )
        return cls(session_timeout_ms=session, heartbeat_interval_ms=heartbeat)


@dataclass
class ConsumerRunner:
    """Consumes ``handlers``' topics as ``group`` and applies each event exactly once."""

    group: str
    bootstrap: str
    database: Database
    handlers: Mapping[str, Handler]
    registry: TopicRegistry = REGISTRY
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_poll_records: int = 200
    after_apply: AfterApply | None = None
    """Called after a message's transaction committed and before its offset is; tests use
    it to crash in exactly that gap."""

    timing: GroupTiming = field(default_factory=GroupTiming.from_environment)
    status_redis_url: str | None = None
    """Where this replica reports itself alive with its partitions and lag
    (:mod:`marquee_platform.workers`); ``marquee consume`` sets the service's Redis."""

    ready: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    """Set once the group has given this consumer its partitions."""
    _next_offsets: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _assigned: frozenset[TopicPartition] = field(default_factory=frozenset, init=False)
    _lag: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _started_at: float = field(default=0.0, init=False)
    _beacon: WorkerBeacon | None = field(default=None, init=False)

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_topic(self.group)

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_topics(
            self.bootstrap,
            {
                topic: self.registry.get(topic).partitions if topic in self.registry else 1
                for topic in self.handlers
            },
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=f"marquee-{self.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_poll_records,
            isolation_level="read_uncommitted",
            # tansu answers a fetch only when this runs out; real Kafka answers as soon
            # as data arrives, so a short wait costs little there and saves ~0.5 s here.
            fetch_max_wait_ms=50,
            session_timeout_ms=self.timing.session_timeout_ms,
            heartbeat_interval_ms=self.timing.heartbeat_interval_ms,
            # How long the broker waits for members to rejoin a rebalance; members rejoin
            # from aiokafka's background task, so the session timeout is plenty.
            rebalance_timeout_ms=self.timing.session_timeout_ms,
        )
        producer = create_producer(self.bootstrap, client_id=f"marquee-{self.group}-dlq")
        consumer.subscribe(list(self.handlers), listener=_Rebalances(self))
        self._started_at = time.time()
        if self.status_redis_url is not None:
            self._beacon = WorkerBeacon(self.status_redis_url, self.status).start()
        await consumer.start()
        await producer.start()
        logger.info(
            "consumer group %s started on %s as %s",
            self.group,
            sorted(self.handlers),
            this_instance(),
        )
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for partition, records in batches.items():
                    await self._apply_partition_batch(consumer, producer, partition, records, stop)
                await self._record_lag(consumer)
        finally:
            await consumer.stop()
            await producer.stop()
            if self._beacon is not None:
                await self._beacon.stop()
                self._beacon = None
            self._forget(self._assigned)
            logger.info("consumer group %s stopped", self.group)

    def status(self) -> WorkerStatus:
        """This replica as :func:`marquee_platform.workers.read_workers` reports it."""
        return WorkerStatus(
            kind="consumer",
            group=self.group,
            bootstrap=self.bootstrap,
            partitions=tuple(sorted(f"{tp.topic}[{tp.partition}]" for tp in self._assigned)),
            lag=sum(self._lag.get(tp, 0) for tp in self._assigned),
            started_at=self._started_at,
        )

    async def _on_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        gained = assigned - self._assigned
        self._assigned = assigned
        ASSIGNED_PARTITIONS.labels(self.group).set(len(assigned))
        REBALANCES.labels(self.group).inc()
        logger.info(
            "consumer group %s: this replica now holds %d partition(s)%s",
            self.group,
            len(assigned),
            f", gained {_describe(gained)}" if gained else "",
        )
        self.ready.set()
        if self._beacon is not None:
            await self._beacon.announce()

    async def _on_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        if revoked:
            logger.info(
                "consumer group %s: rebalancing, gave up %s", self.group, _describe(revoked)
            )
        self._forget(revoked)
        self._assigned = self._assigned - revoked
        ASSIGNED_PARTITIONS.labels(self.group).set(len(self._assigned))

    def _forget(self, partitions: frozenset[TopicPartition]) -> None:
        """Drop what we knew of partitions we no longer hold: their lag is another
        replica's to report now, and a stale series would hide it."""
        for tp in partitions:
            self._lag.pop(tp, None)
            self._next_offsets.pop(tp, None)
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group, tp.topic, str(tp.partition))

    async def _apply_partition_batch(
        self,
        consumer: AIOKafkaConsumer,
        producer: Any,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        stop: asyncio.Event,
    ) -> None:
        next_offset: int | None = None
        for record in records:
            if stop.is_set() or partition not in consumer.assignment():
                # Stopping, or a rebalance gave the partition to another replica while we
                # worked through its batch: that replica starts from the last committed
                # offset, so the rest is its to apply.
                break
            await self._handle_record(producer, record)
            next_offset = record.offset + 1
        if next_offset is None:
            return
        try:
            await consumer.commit({partition: next_offset})
        except (CommitFailedError, IllegalStateError) as error:
            # The partition moved to another member during a rebalance (the group refused
            # the commit, or the partition is no longer ours to commit): it redelivers
            # from the last committed offset and the inbox makes that harmless.
            logger.warning("offset commit for %s lost to a rebalance: %s", partition, error)
            return
        self._next_offsets[partition] = next_offset

    async def _handle_record(self, producer: Any, record: ConsumerRecord[bytes, bytes]) -> None:
        headers = headers_from_kafka(record.headers)
        try:
            delivery = self._decode(record, headers)
        except PoisonMessage as poison:
            await self._dead_letter(producer, record, headers, str(poison), attempts=1)
            return
        with span_from_headers(
            f"consume {record.topic}",
            headers,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.destination": record.topic, "event.id": delivery.event.id},
        ):
            attempt = 0
            while True:
                attempt += 1
                try:
                    applied = await self._apply_once(delivery)
                except Exception as error:
                    if attempt >= self.retry.max_attempts:
                        reason = "".join(traceback.format_exception_only(error)).strip()
                        await self._dead_letter(producer, record, headers, reason, attempt)
                        return
                    delay = self.retry.delay(attempt)
                    logger.warning(
                        "applying %s %s failed (attempt %d/%d), retrying in %.1fs: %s",
                        delivery.event.type,
                        delivery.event.id,
                        attempt,
                        self.retry.max_attempts,
                        delay,
                        error,
                    )
                    await asyncio.sleep(delay)
                    continue
                CONSUMED.labels(
                    self.group, record.topic, "applied" if applied else "duplicate"
                ).inc()
                if self.after_apply is not None:
                    await self.after_apply(delivery)
                return

    def _decode(self, record: ConsumerRecord[bytes, bytes], headers: Mapping[str, str]) -> Delivery:
        if record.value is None:
            raise PoisonMessage("the message has no value")
        try:
            event = CloudEvent.from_json_bytes(record.value)
            data = self.registry.parse_data(event)
        except (ValidationError, UnknownEventType, ValueError) as error:
            raise PoisonMessage(f"not a valid event for this consumer: {error}") from error
        return Delivery(
            event=event,
            data=data,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            headers=headers,
        )

    async def apply(self, event: CloudEvent, *, topic: str) -> bool:
        """Apply one event as if it had been consumed from ``topic``: the handler and the
        inbox row in one transaction, so it applies at most once (False if it had been).
        For replaying a dead letter by hand, and for tests that carry outbox rows to
        consumers without a broker in between."""
        delivery = Delivery(
            event=event,
            data=self.registry.parse_data(event),
            topic=topic,
            partition=-1,
            offset=-1,
            headers={},
        )
        return await self._apply_once(delivery)

    async def _apply_once(self, delivery: Delivery) -> bool:
        """Apply the handler and record the event id in one transaction; False if seen."""
        handler = self.handlers[delivery.topic]
        async with self.database.transaction() as session:
            recorded = await session.execute(
                insert(INBOX)
                .values(
                    event_id=delivery.event.id,
                    event_type=delivery.event.type,
                    consumer_group=self.group,
                )
                .on_conflict_do_nothing(index_elements=[INBOX.c.event_id])
                .returning(INBOX.c.event_id)
            )
            if recorded.first() is None:
                return False
            await handler(delivery, session)
        return True

    async def _dead_letter(
        self,
        producer: Any,
        record: ConsumerRecord[bytes, bytes],
        headers: Mapping[str, str],
        reason: str,
        attempts: int,
    ) -> None:
        logger.error(
            "parking message %s[%d]@%d on %s after %d attempt(s): %s",
            record.topic,
            record.partition,
            record.offset,
            self.dead_letter_topic,
            attempts,
            reason,
        )
        dead_letter_headers = {
            **headers,
            "dlq_reason": reason[:1000],
            "dlq_original_topic": record.topic,
            "dlq_original_partition": str(record.partition),
            "dlq_original_offset": str(record.offset),
            "dlq_attempts": str(attempts),
            "dlq_group": self.group,
        }
        await producer.send_and_wait(
            self.dead_letter_topic,
            record.value,
            key=record.key,
            headers=[(name, value.encode()) for name, value in dead_letter_headers.items()],
        )
        CONSUMED.labels(self.group, record.topic, "dead-lettered").inc()

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag = the partition's end (as of the last fetch) minus what we have applied
        (or, before we applied anything there, the consumer's position)."""
        for partition in list(consumer.assignment()):
            # The awaits below let a rebalance take partitions away mid-loop; aiokafka
            # then refuses to speak of them (an AssertionError or IllegalStateError).
            if partition not in consumer.assignment():
                continue
            try:
                highwater = consumer.highwater(partition)
                applied = self._next_offsets.get(partition)
                if applied is None and highwater is not None:
                    applied = await asyncio.wait_for(consumer.position(partition), 0.5)
            except (AssertionError, IllegalStateError, TimeoutError):
                continue  # no position yet, or no longer ours: the next round reports it
            if highwater is None or applied is None or partition not in self._assigned:
                continue
            lag = max(0, highwater - applied)
            self._lag[partition] = lag
            CONSUMER_LAG.labels(self.group, partition.topic, str(partition.partition)).set(lag)


def _describe(partitions: frozenset[TopicPartition]) -> str:
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{topic} {sorted(numbers)}" for topic, numbers in sorted(by_topic.items()))


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._runner._on_revoked(frozenset(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._runner._on_assigned(frozenset(assigned))


async def run_until_signalled(runner: ConsumerRunner) -> None:
    """Run a consumer until SIGTERM or SIGINT, then finish the message in hand and stop."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.run(stop)
