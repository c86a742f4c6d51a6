"""The polling relay: the fallback where logical replication is off (``wal_level`` below
``logical``, some managed databases).

Each round claims the oldest unpublished rows with ``FOR UPDATE SKIP LOCKED`` (so two
relays on one database share the work instead of sending everything twice), produces
them, waits for every acknowledgement, then marks them published and commits. A crash
anywhere before the commit leaves the rows unpublished and their locks released, so they
are sent again: duplicates, never losses. It sleeps only after an empty round.

Rows go out in ``position`` order. That is commit order for one aggregate's events as long
as its writers serialize on the aggregate (they lock its row before writing the outbox),
which every service does; the CDC relay follows commit order by construction.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiokafka import AIOKafkaProducer

from marquee_platform.metrics import RELAYED
from marquee_platform.relay.common import RelayOptions, kafka_headers, wait_or_stop

logger = logging.getLogger("marquee.relay")

_CLAIM = """
SELECT position, event_id::text AS event_id, topic, message_key,
       payload::text AS payload, headers::text AS headers
FROM outbox
WHERE published_at IS NULL
ORDER BY position
LIMIT $1
FOR UPDATE SKIP LOCKED
"""
_MARK = "UPDATE outbox SET published_at = now() WHERE position = ANY($1::bigint[])"


class PollingRelay:
    """Relays one database's outbox by polling until ``stop`` is set."""

    def __init__(
        self,
        dsn: str,
        producer: AIOKafkaProducer,
        *,
        name: str,
        options: RelayOptions,
        stop: asyncio.Event,
    ) -> None:
        self._dsn = dsn
        self._producer = producer
        self._name = name
        self._options = options
        self._stop = stop
        self._relayed = RELAYED.labels(database=name, mode="polling")

    async def run(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            logger.info("outbox %s: polling relay started", self._name)
            while not self._stop.is_set():
                if await self._round(connection) == 0 and await wait_or_stop(
                    self._stop, self._options.poll_interval
                ):
                    break
        finally:
            await connection.close()
        logger.info("outbox %s: polling relay stopped", self._name)

    async def _round(self, connection: asyncpg.Connection) -> int:
        """Claim, produce, await the acks, mark published; returns the rows relayed.

        The stop event is not consulted inside a round: a round that started is finished
        (its rows acknowledged and marked), so a clean stop sends no duplicates.
        """
        async with connection.transaction():
            rows = await connection.fetch(_CLAIM, self._options.batch_size)
            if not rows:
                return 0
            acks = [
                await self._producer.send(
                    row["topic"],
                    value=row["payload"].encode(),
                    key=row["message_key"].encode(),
                    headers=kafka_headers(row["headers"], row["event_id"]),
                )
                for row in rows
            ]
            await asyncio.gather(*acks)
            await connection.execute(_MARK, [row["position"] for row in rows])
        self._relayed.inc(len(rows))
        return len(rows)
