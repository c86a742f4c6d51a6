"""The one way to run sweepers and upkeep: a periodic task.

::

    from marquee_platform.periodic import PeriodicTask

    EXPIRE_HOLDS = PeriodicTask(
        "expire-holds",
        every_seconds=1.0,
        run=lambda: release_expired_holds(redis, clock=utc_now),
        single_runner=database,  # one replica sweeps; the others stand by
    )
    stack.push_async_callback(EXPIRE_HOLDS.start().stop)

Each round waits ``every_seconds`` with ±``jitter`` (a fraction) so replicas started
together drift apart, runs ``run()``, and logs and counts the outcome
(``marquee_periodic_task_runs_total{task,outcome}``, a duration histogram). A failing round
is logged with its traceback and the next round comes as usual: a task never dies of an
error, only of :meth:`RunningTask.stop`.

**Single runner.** With ``single_runner=database``, replicas compete for a PostgreSQL
session-level advisory lock named after the task, held on a connection of its own. The
replica that holds it runs every round and keeps it; the others check each round and skip
(``outcome="standby"``). If the holder dies its connection closes, PostgreSQL frees the
lock, and a stand-by replica takes over at its next round. Work that is safe to repeat but
wasteful (pruning) or that must not interleave (key rotation, hold expiry) uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from marquee_platform.db import Database

logger = logging.getLogger(__name__)

PERIODIC_RUNS = Counter(
    "marquee_periodic_task_runs_total",
    "Rounds of periodic tasks, by outcome (ran, failed, standby: another replica runs it)",
    ["task", "outcome"],
)
PERIODIC_DURATION = Histogram(
    "marquee_periodic_task_duration_seconds",
    "Time one round of a periodic task took",
    ["task"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
)


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a task's name."""
    digest = hashlib.sha256(f"marquee.periodic:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class PeriodicTask:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[Any]]
    jitter: float = 0.1
    """Each wait is ``every_seconds`` times a factor drawn from [1 - jitter, 1 + jitter]."""
    single_runner: Database | None = None
    """A database whose advisory lock lets only one replica run the task at a time."""
    run_at_start: bool = False
    """Run a first round right away instead of after the first wait."""

    def start(self) -> RunningTask:
        running = RunningTask(self)
        running.task = asyncio.create_task(running.loop(), name=f"periodic:{self.name}")
        return running

    def next_wait(self) -> float:
        spread = random.uniform(-self.jitter, self.jitter)  # noqa: S311 - jitter, not security
        return max(0.0, self.every_seconds * (1 + spread))


@dataclass
class RunningTask:
    """A started :class:`PeriodicTask`; ``await stop()`` ends it and frees its lock."""

    spec: PeriodicTask
    task: asyncio.Task[None] | None = None
    rounds: int = 0
    """Rounds this replica ran (not counting stand-by rounds)."""
    _lock_connection: AsyncConnection | None = field(default=None, repr=False)

    @property
    def is_runner(self) -> bool:
        """True while this replica holds the single-runner lock (always, without one)."""
        return self.spec.single_runner is None or self._lock_connection is not None

    async def loop(self) -> None:
        try:
            if not self.spec.run_at_start:
                await asyncio.sleep(self.spec.next_wait())
            while True:
                await self.run_once()
                raise_if_cancelled()
                await asyncio.sleep(self.spec.next_wait())
        finally:
            await self._release()

    async def run_once(self) -> str:
        """One round: ``ran``, ``failed`` or ``standby``."""
        name = self.spec.name
        if not await self._hold_lock():
            PERIODIC_RUNS.labels(name, "standby").inc()
            return "standby"
        started = time.perf_counter()
        outcome = "ran"
        try:
            await self.spec.run()
            self.rounds += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            outcome = "failed"
            logger.exception(
                "periodic task %s failed; next round in ~%.0fs", name, self.spec.every_seconds
            )
        elapsed = time.perf_counter() - started
        PERIODIC_RUNS.labels(name, outcome).inc()
        PERIODIC_DURATION.labels(name).observe(elapsed)
        logger.debug("periodic task %s: %s in %.3fs", name, outcome, elapsed)
        return outcome

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self._release()

    async def _hold_lock(self) -> bool:
        database = self.spec.single_runner
        if database is None:
            return True
        if self._lock_connection is not None:
            try:  # still ours only while its connection lives
                await self._lock_connection.execute(text("SELECT 1"))
                return True
            except Exception as error:
                logger.warning(
                    "periodic task %s lost its lock connection (%s); competing again",
                    self.spec.name,
                    error,
                )
                await self._release()
        connection = await database.write_engine.connect()
        try:
            # Autocommit: the lock is the session's, and no transaction sits open on it.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            acquired = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"),
                    {"key": advisory_lock_key(self.spec.name)},
                )
            ).scalar_one()
        except BaseException:
            await connection.close()
            raise
        if not acquired:
            await connection.close()
            return False
        self._lock_connection = connection
        logger.info("this replica now runs periodic task %s", self.spec.name)
        return True

    async def _release(self) -> None:
        connection, self._lock_connection = self._lock_connection, None
        if connection is None:
            return
        # Closing the server connection is what surely frees a session lock; returned to
        # the pool instead, it would keep the lock for whoever borrowed it next.
        with contextlib.suppress(Exception):
            await connection.invalidate()
        with contextlib.suppress(Exception):
            await connection.close()


def raise_if_cancelled() -> None:
    """Re-raise a cancellation a round swallowed.

    redis-py can return normally from a command whose task was cancelled while it waited
    for the reply: the request stays counted in ``Task.cancelling()`` but no
    ``CancelledError`` comes out, and a loop that went on to sleep its interval made
    :meth:`RunningTask.stop` (which cancels once and waits) hang."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
