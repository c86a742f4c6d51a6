"""The one Lua runner against real Redis: EVALSHA, reload on NOSCRIPT, named keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio
from redis.exceptions import ResponseError

from marquee_platform.lua import LuaScript, decode, hash_tag, tagged_key

ADD_TO_BOTH = LuaScript(
    "test-add-to-both",
    keys=("first", "second"),
    args=("amount", "label"),
    source="""
local a = redis.call('INCRBY', KEYS[1], ARGV[1])
local b = redis.call('INCRBY', KEYS[2], ARGV[1])
return {a, b, ARGV[2]}
""",
)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_runs_by_sha_and_reloads_after_the_server_forgot_it(
    redis: redis_asyncio.Redis,
) -> None:
    tag = hash_tag("test", id(redis))
    keys = {"first": tagged_key(tag, "a"), "second": tagged_key(tag, "b")}
    await redis.delete(*keys.values())
    await redis.script_flush()
    assert await redis.script_exists(ADD_TO_BOTH.sha) == [False]

    first = decode(await ADD_TO_BOTH.run(redis, **keys, amount=2, label="one"))
    assert await redis.script_exists(ADD_TO_BOTH.sha) == [True]  # loaded once, by SHA
    await redis.script_flush()  # a restart or failover forgets every script
    second = decode(await ADD_TO_BOTH.run(redis, **keys, amount=3, label="two"))

    assert first == [2, 2, "one"]
    assert second == [5, 5, "two"]
    await redis.delete(*keys.values())


async def test_a_script_error_is_raised_not_retried(redis: redis_asyncio.Redis) -> None:
    failing = LuaScript("test-fails", source="return redis.error_reply('refused by the script')")
    with pytest.raises(ResponseError, match="refused by the script"):
        await failing.run(redis)
