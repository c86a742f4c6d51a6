"""SIGKILL the waitroom's admission loop in the middle of admission (real Redis, a real
process): every fan keeps their place and nobody is admitted twice.

The crash points (``marquee_platform.faults``) prove where the process died: after the
admission script admitted a round of fans and before any of them was told, and halfway
through numbering the shuffled pre-queue."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio

from marquee_platform.faults import ENVIRONMENT_VARIABLE, MARKER
from marquee_platform.lua import decode
from marquee_platform.realtime import CHANNEL_PREFIX
from marquee_waitroom import fairness
from marquee_waitroom.admission import to_ms
from marquee_waitroom.queue import OnSaleTimes, QueueKeys, QueueStore
from marquee_waitroom.tokens import generate_admission_key

CHILD = Path(__file__).with_name("admission_child.py")
FANS = 1200
MAX_ACTIVE = 100


def times(starts: datetime) -> OnSaleTimes:
    return OnSaleTimes(
        opens_ms=to_ms(datetime.now(UTC) - timedelta(minutes=1)),
        starts_ms=to_ms(starts),
        window_ms=10 * 60 * 1000,
        grace_ms=60 * 60 * 1000,
        max_active=MAX_ACTIVE,
        adaptive=False,
    )


async def queue_of_fans(store: QueueStore, event_id: uuid.UUID) -> dict[str, str]:
    """FANS fans in the pre-queue, then the start moved to now. Their accounts start with
    the event id, so a listener can tell them from other tests' fans on the same Redis."""
    await store.configure(event_id, times(datetime.now(UTC) + timedelta(hours=1)))
    tickets: dict[str, str] = {}
    accounts = [f"{event_id}-fan-{n:04d}" for n in range(FANS)]
    for start in range(0, FANS, 20):
        batch = accounts[start : start + 20]
        outcomes = await asyncio.gather(
            *(
                store.join(event_id, account, f"q_{uuid.uuid4().hex}", to_ms(datetime.now(UTC)))
                for account in batch
            )
        )
        for account, outcome in zip(batch, outcomes, strict=True):
            assert outcome[0] == "joined"
            tickets[account] = outcome[1]
    await store.configure(event_id, times(datetime.now(UTC)))
    return tickets


def run_child(
    redis_url: str,
    store: QueueStore,
    event_id: uuid.UUID,
    seed: bytes,
    *,
    rounds: int,
    crash_at: str | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MARQUEE_WAITROOM_PLACE_BATCH": "500"}
    environment.pop(ENVIRONMENT_VARIABLE, None)
    if crash_at:
        environment[ENVIRONMENT_VARIABLE] = crash_at
    key = generate_admission_key(datetime.now(UTC))
    return subprocess.run(
        [
            sys.executable,
            str(CHILD),
            redis_url,
            store.onsales_key.removesuffix(":onsales"),
            str(event_id),
            seed.hex(),
            str(rounds),
        ],
        input=json.dumps(dataclasses.asdict(key)),
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


async def admitted_numbers(redis: redis_asyncio.Redis, event_id: uuid.UUID) -> dict[str, int]:
    records = decode(await redis.hgetall(QueueKeys.of(event_id).named("adm")["adm"]))
    return {ticket: int(record.split("|")[2]) for ticket, record in records.items()}


async def assert_everyone_keeps_their_place(
    redis: redis_asyncio.Redis, event_id: uuid.UUID, tickets: dict[str, str], admitted: int
) -> None:
    keys = QueueKeys.of(event_id).named("adm", "line", "num", "gone")
    numbers = {t: int(n) for t, n in decode(await redis.hgetall(keys["num"])).items()}
    assert sorted(numbers.values()) == list(range(1, FANS + 1)), "every fan numbered once"
    waiting: Any = await redis.zrange(keys["line"], 0, -1, withscores=True)
    in_line = {decode(ticket): int(score) for ticket, score in waiting}
    let_in = await admitted_numbers(redis, event_id)
    assert not set(in_line) & set(let_in), "nobody both admitted and still waiting"
    assert await redis.hlen(keys["gone"]) == 0
    assert set(in_line) | set(let_in) == set(tickets.values()), "nobody lost"
    assert sorted(let_in.values()) == list(range(1, admitted + 1)), "admitted in order, once"
    assert sorted(in_line.values()) == list(range(admitted + 1, FANS + 1))
    assert all(numbers[t] == n for t, n in in_line.items())


async def test_killed_after_admitting_before_telling_nobody_is_admitted_twice_or_untold(
    redis: redis_asyncio.Redis, redis_url: str, queue_store: QueueStore
) -> None:
    event_id = uuid.uuid4()
    seed = fairness.new_seed()
    tickets = await queue_of_fans(queue_store, event_id)
    listener = redis.pubsub()
    await listener.psubscribe(f"{CHANNEL_PREFIX}user:{event_id}-*")
    try:
        crashed = run_child(
            redis_url,
            queue_store,
            event_id,
            seed,
            rounds=5,
            crash_at="waitroom.admitted-not-yet-told",
        )
        assert crashed.returncode == -9, crashed.stderr
        assert MARKER.format(name="waitroom.admitted-not-yet-told") in crashed.stderr
        assert "round 0" not in crashed.stdout, "it died inside its first admitting round"
        await assert_everyone_keeps_their_place(redis, event_id, tickets, MAX_ACTIVE)

        # Restarted, it admits nobody new while the first hundred hold their slots ...
        again = run_child(redis_url, queue_store, event_id, seed, rounds=2)
        assert again.returncode == 0, again.stderr
        assert again.stdout.split() == [
            "round",
            "0",
            "admitted",
            "0",
            "round",
            "1",
            "admitted",
            "0",
        ]
        await assert_everyone_keeps_their_place(redis, event_id, tickets, MAX_ACTIVE)

        # ... and the next hundred, in order, once those are done.
        first = await admitted_numbers(redis, event_id)
        account_of = {ticket: account for account, ticket in tickets.items()}
        for ticket in first:
            assert await queue_store.hold_ended(
                event_id, account_of[ticket], now_ms=to_ms(datetime.now(UTC)), sold=True
            )
        resumed = run_child(redis_url, queue_store, event_id, seed, rounds=1)
        assert resumed.stdout.split() == ["round", "0", "admitted", str(MAX_ACTIVE)], resumed.stderr
        await assert_everyone_keeps_their_place(redis, event_id, tickets, 2 * MAX_ACTIVE)

        told: list[str] = []
        while (message := await listener.get_message(timeout=1.0)) is not None:
            if message["type"] == "pmessage" and b"\nadmission-granted\n" in message["data"]:
                told.append(message["channel"].decode().removeprefix(f"{CHANNEL_PREFIX}user:"))
        second = set(await admitted_numbers(redis, event_id)) - set(first)
        assert sorted(told) == sorted(account_of[ticket] for ticket in second)
        # The fans the crash left untold find their admission where they look ...
        for ticket in list(first)[:10]:
            place = await queue_store.me(
                event_id, account_of[ticket], now_ms=to_ms(datetime.now(UTC)), touch=False
            )
            assert place.status == "admitted"
        # ... and the admission events for notifications were all kept for Kafka.
        log = QueueKeys.of(event_id).named("log")["log"]
        assert await redis.xlen(log) == 2 * MAX_ACTIVE
    finally:
        await listener.aclose()  # type: ignore[no-untyped-call]
        await queue_store.remove(event_id)


async def test_killed_halfway_through_numbering_the_pre_queue_the_order_is_the_same(
    redis: redis_asyncio.Redis, redis_url: str, queue_store: QueueStore
) -> None:
    event_id = uuid.uuid4()
    seed = fairness.new_seed()
    tickets = await queue_of_fans(queue_store, event_id)
    try:
        crashed = run_child(
            redis_url,
            queue_store,
            event_id,
            seed,
            rounds=3,
            crash_at="waitroom.pre-queue-partly-numbered",
        )
        assert crashed.returncode == -9, crashed.stderr
        assert MARKER.format(name="waitroom.pre-queue-partly-numbered") in crashed.stderr
        keys = QueueKeys.of(event_id).named("num", "cfg", "adm")
        assert await redis.hlen(keys["num"]) == 500, "one batch of three was numbered"
        assert decode(await redis.hget(keys["cfg"], "state")) == "closed"
        assert await redis.hlen(keys["adm"]) == 0

        resumed = run_child(redis_url, queue_store, event_id, seed, rounds=1)
        assert resumed.stdout.split() == ["round", "0", "admitted", str(MAX_ACTIVE)], resumed.stderr
        await assert_everyone_keeps_their_place(redis, event_id, tickets, MAX_ACTIVE)
        numbers = {t: int(n) for t, n in decode(await redis.hgetall(keys["num"])).items()}
        order = fairness.shuffled(seed, await queue_store.pre_queue(event_id))
        assert [numbers[ticket] for ticket in order] == list(range(1, FANS + 1))
    finally:
        await queue_store.remove(event_id)
