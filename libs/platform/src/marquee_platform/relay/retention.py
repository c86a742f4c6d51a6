"""Deleting relayed outbox rows once they are older than the retention window.

The outbox is a queue, not an archive: without a sweep it grows forever. A row may go
once it is older than the window *and* known to be relayed: in polling mode that is
``published_at IS NOT NULL``; in CDC mode the relay never writes to the rows (that would
double the write load), so it passes the highest ``position`` it has confirmed instead.
Deleting a committed row the CDC relay has not streamed yet is harmless anyway: the
stream is read from the WAL, not from the table. The publication carries inserts only,
so the deletes themselves never reach the stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from marquee_platform.relay.common import wait_or_stop

logger = logging.getLogger("marquee.relay")

_PURGE = """
DELETE FROM outbox WHERE position IN (
    SELECT position FROM outbox
    WHERE created_at < now() - $1::interval
      AND (published_at IS NOT NULL OR position <= $2)
    ORDER BY position
    LIMIT $3
)
"""


async def purge_relayed(
    connection: asyncpg.Connection,
    *,
    retention: timedelta,
    relayed_up_to: int = 0,
    chunk: int = 5_000,
) -> int:
    """Delete relayed rows older than ``retention``, in chunks; returns how many.

    ``relayed_up_to``: rows at or below this position count as relayed even when their
    ``published_at`` is NULL (CDC mode). Chunks keep each delete's locks and WAL small.
    """
    total = 0
    while True:
        status = await connection.execute(_PURGE, retention, relayed_up_to, chunk)
        deleted = int(status.rsplit(" ", 1)[-1])
        total += deleted
        if deleted < chunk:
            return total


async def retention_loop(
    dsn: str,
    *,
    name: str,
    retention: timedelta,
    interval: float,
    stop: asyncio.Event,
    relayed_up_to: Callable[[], int],
) -> None:
    """Run :func:`purge_relayed` now and every ``interval`` seconds until ``stop``.

    A failed sweep is logged and tried again next time: it must never stop the relay.
    """
    while not stop.is_set():
        try:
            connection = await asyncpg.connect(dsn)
            try:
                deleted = await purge_relayed(
                    connection, retention=retention, relayed_up_to=relayed_up_to()
                )
            finally:
                await connection.close()
            if deleted:
                logger.info("outbox %s: deleted %d relayed rows past retention", name, deleted)
        except (OSError, asyncpg.PostgresError) as error:
            logger.warning("outbox %s: retention sweep failed: %s", name, error)
        if await wait_or_stop(stop, interval):
            return
