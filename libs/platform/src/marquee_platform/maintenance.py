"""Housekeeping every service with a database runs in the background.

Idempotency keys are forgotten after their TTL and inbox entries after a retention that
must outlast any redelivery (Kafka's retention plus the longest consumer outage we would
replay), after which a redelivered event would be applied again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func

from marquee_platform.db import Database
from marquee_platform.idempotency import delete_expired_idempotency_keys
from marquee_platform.outbox import INBOX
from marquee_platform.periodic import PeriodicTask

logger = logging.getLogger(__name__)


async def prune_platform_tables(
    database: Database, *, idempotency_key_ttl_hours: int, inbox_retention_days: int
) -> dict[str, int]:
    async with database.transaction() as session:
        keys = await delete_expired_idempotency_keys(
            session, older_than_hours=idempotency_key_ttl_hours
        )
        inbox = cast(
            CursorResult[Any],
            await session.execute(
                delete(INBOX).where(
                    INBOX.c.received_at < func.now() - timedelta(days=inbox_retention_days)
                )
            ),
        ).rowcount
    return {"idempotency_keys": keys, "inbox": inbox}


def pruning_task(
    database: Database,
    *,
    every_seconds: float,
    idempotency_key_ttl_hours: int,
    inbox_retention_days: int,
) -> PeriodicTask:
    """:func:`prune_platform_tables` every ``every_seconds``, by one replica at a time."""

    async def prune() -> None:
        pruned = await prune_platform_tables(
            database,
            idempotency_key_ttl_hours=idempotency_key_ttl_hours,
            inbox_retention_days=inbox_retention_days,
        )
        if any(pruned.values()):
            logger.info("pruned platform tables: %s", pruned)

    return PeriodicTask(
        "prune-platform-tables", every_seconds=every_seconds, run=prune, single_runner=database
    )
