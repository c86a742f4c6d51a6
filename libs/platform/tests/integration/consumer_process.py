"""A consumer in its own process, for tests that kill it at chosen moments.

Usage: python consumer_process.py DATABASE_URL BOOTSTRAP TOPIC GROUP [CRASH_AFTER]
Each applied event inserts one row into ``effects``. With CRASH_AFTER=n the process
SIGKILLs itself right after the n-th effect committed and before its offset commit.
With MARQUEE_REDIS_URL set it reports its partitions there (marquee_platform.workers).
At a clean exit it prints how many redeliveries the inbox turned into no-ops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from pydantic import BaseModel
from sqlalchemy import text

from marquee_contracts import Topic, TopicRegistry
from marquee_platform.consumer import ConsumerRunner, Delivery, run_until_signalled
from marquee_platform.db import Database, WriteSession
from marquee_platform.metrics import CONSUMED


class ThingHappened(BaseModel):
    sequence: int


async def main() -> None:
    database_url, bootstrap, topic, group = sys.argv[1:5]
    crash_after = int(sys.argv[5]) if len(sys.argv) > 5 else None
    registry = TopicRegistry()
    registry.register(Topic(topic, ThingHappened, owner="test", description="test events"))
    database = Database(database_url)
    applied = 0

    async def record_effect(delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, ThingHappened)
        await session.execute(
            text("INSERT INTO effects (event_id, sequence) VALUES (:id, :sequence)"),
            {"id": delivery.event.id, "sequence": delivery.data.sequence},
        )

    async def crash_in_the_gap(delivery: Delivery) -> None:
        nonlocal applied
        applied += 1
        if crash_after is not None and applied >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    runner = ConsumerRunner(
        group=group,
        bootstrap=bootstrap,
        database=database,
        handlers={topic: record_effect},
        registry=registry,
        after_apply=crash_in_the_gap,
        status_redis_url=os.environ.get("MARQUEE_REDIS_URL"),
    )
    print("started", flush=True)
    await run_until_signalled(runner)
    await database.dispose()
    duplicates = CONSUMED.labels(group, topic, "duplicate")._value.get()
    print(f"duplicates={int(duplicates)}", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    asyncio.run(main())
