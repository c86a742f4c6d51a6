"""A stopped background round stops, even when the Redis client swallowed the cancel.

redis-py can return normally from a command whose task was cancelled mid-command; the
periodic tasks' ``stop()`` cancels once and waits, so such a round used to sleep on and a
shutdown hung (seen as test teardowns timing out while the first reconcile ran)."""

from __future__ import annotations

import asyncio
import random

from marquee_inventory import tasks
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_testing.inventory import Catalog, published_event


async def test_a_cancelled_round_always_ends_cancelled(
    catalog: Catalog, database: Database, store: HoldStore
) -> None:
    await catalog.publish(published_event())
    await catalog.publish(published_event())
    cancelled = 0
    for _ in range(150):
        task = asyncio.create_task(tasks.honouring_cancellation(tasks.reconcile(database, store)))
        await asyncio.sleep(random.uniform(0, 0.01))
        if not task.cancel():
            continue  # it had finished already: nothing to stop
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
        else:
            raise AssertionError("a cancelled reconcile round returned as if not stopped")
    assert cancelled > 0
