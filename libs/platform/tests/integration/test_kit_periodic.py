"""Periodic tasks: one runner across replicas by an advisory lock, failures survived."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from marquee_platform.db import Database
from marquee_platform.periodic import PeriodicTask, RunningTask, advisory_lock_key
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.waiting import wait_until


@pytest.fixture
async def replicas(make_database: DatabaseFactory) -> AsyncIterator[tuple[Database, Database]]:
    """Two replicas of one service: separate engines (pools) on the same database."""
    url = await make_database()
    first, second = Database(url), Database(url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def lock_holders(database: Database, name: str) -> int:
    async with database.reading() as session:
        query = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = (:key)::bigint"
        )
        return int((await session.execute(query, {"key": advisory_lock_key(name)})).scalar_one())


async def test_two_replicas_do_not_both_run_a_single_runner_task(
    replicas: tuple[Database, Database],
) -> None:
    runs: list[str] = []

    def task_of(replica: str, database: Database) -> PeriodicTask:
        async def sweep() -> None:
            runs.append(replica)

        return PeriodicTask("test-sweep", every_seconds=3600, run=sweep, single_runner=database)

    first = task_of("first", replicas[0]).start()
    second = task_of("second", replicas[1]).start()
    try:
        outcomes = []
        for _ in range(5):  # the rounds of both replicas, interleaved
            outcomes.append((await first.run_once(), await second.run_once()))
        assert outcomes == [("ran", "standby")] * 5
        assert runs == ["first"] * 5
        assert await lock_holders(replicas[0], "test-sweep") == 1

        await first.stop()  # the runner goes away (a crash closes its connection the same way)
        assert await second.run_once() == "ran"
        assert runs[-1] == "second"
        assert second.is_runner
        assert not first.is_runner
    finally:
        await first.stop()
        await second.stop()
    assert await lock_holders(replicas[0], "test-sweep") == 0


async def test_a_killed_runners_lock_passes_to_a_standby(
    replicas: tuple[Database, Database],
) -> None:
    """The runner's server connection dies (its process was killed): PostgreSQL frees the
    lock and the stand-by replica runs the next round."""

    async def nothing() -> None:
        return None

    first = PeriodicTask("test-failover", 3600, nothing, single_runner=replicas[0]).start()
    second = PeriodicTask("test-failover", 3600, nothing, single_runner=replicas[1]).start()
    try:
        assert (await first.run_once(), await second.run_once()) == ("ran", "standby")
        async with replicas[1].transaction() as session:
            killed = await session.execute(
                text(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND ((l.classid::bigint << 32) | l.objid::bigint) = (:key)::bigint"
                ),
                {"key": advisory_lock_key("test-failover")},
            )
            assert killed.scalars().all() == [True]
        await wait_until(
            lambda: ran_a_round(second),
            timeout=10,
            message="the stand-by to take the lock",
        )
        # The old runner notices its connection is gone and stands by.
        assert await first.run_once() == "standby"
    finally:
        await first.stop()
        await second.stop()


async def ran_a_round(task: RunningTask) -> bool:
    return await task.run_once() == "ran"


async def test_a_failing_round_is_logged_and_the_next_round_comes(
    replicas: tuple[Database, Database], caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("the first round breaks")

    running = PeriodicTask(
        "test-flaky", every_seconds=0.01, run=flaky, run_at_start=True, single_runner=replicas[0]
    ).start()
    try:
        await wait_until(lambda: running.rounds >= 2, timeout=10, message="two good rounds")
    finally:
        await running.stop()
    assert attempts >= 3
    assert "periodic task test-flaky failed" in caplog.text
    assert "the first round breaks" in caplog.text


async def test_stop_ends_the_loop(replicas: tuple[Database, Database]) -> None:
    async def nothing() -> None:
        return None

    running = PeriodicTask("test-stop", every_seconds=0.01, run=nothing, run_at_start=True).start()
    await running.stop()
    assert running.task is not None
    assert running.task.done()
