"""The waitroom's admission loop as a process of its own, for the crash tests: run with
``python admission_child.py <redis url> <index prefix> <event id> <seed hex> <rounds>``
(and ``MARQUEE_CRASH_AT`` to die at a crash point). It prints ``round <n> admitted <k>``
after each round and stops after ``rounds`` rounds."""

from __future__ import annotations

import asyncio
import sys
import uuid

import redis.asyncio as redis_asyncio

from marquee_waitroom.admission import AdmissionEngine
from marquee_waitroom.queue import QueueStore
from marquee_waitroom.tokens import AdmissionKey


async def main(redis_url: str, prefix: str, event: str, seed_hex: str, rounds: int) -> None:
    redis = redis_asyncio.Redis.from_url(redis_url)
    key = AdmissionKey(**__import__("json").loads(sys.stdin.read()))

    async def seeds(_: uuid.UUID) -> bytes | None:
        return bytes.fromhex(seed_hex)

    async def signing_key() -> AdmissionKey:
        return key

    engine = AdmissionEngine(
        store=QueueStore(redis, index_prefix=prefix),
        redis=redis,
        seeds=seeds,
        signing_key=signing_key,
    )
    for number in range(rounds):
        outcome = await engine.admit_event(uuid.UUID(event))
        print(f"round {number} admitted {len(outcome.admitted)}", flush=True)
    await redis.aclose()


if __name__ == "__main__":
    url, prefix, event, seed_hex, rounds = sys.argv[1:6]
    asyncio.run(main(url, prefix, event, seed_hex, int(rounds)))
