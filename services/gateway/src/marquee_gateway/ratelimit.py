"""Rate limits at the door: GCRA in one Redis Lua script per request.

GCRA (the generic cell rate algorithm) keeps one number per caller and class, the
*theoretical arrival time*: a budget of N requests per P seconds admits a request when
that time is less than P ahead of now, and each admitted request moves it P/N further.
The caller may spend the whole budget at once and regains one request every P/N seconds,
which is a token bucket without a refill job. The script reads Redis' clock, so gateway
replicas share budgets without trusting their own clocks, and it touches one key, so it
runs unchanged on Redis Cluster.

If Redis cannot answer in time the request goes through (fail open): a Redis outage must
not take the site down, and the services behind keep their own defences.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.exceptions import RedisError

from marquee_gateway.metrics import REDIS_FAILURES
from marquee_gateway.settings import GatewaySettings, RateLimitRule
from marquee_platform.lua import LuaScript

logger = logging.getLogger(__name__)

KEY_PREFIX = "gateway:rate:"

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_AUTH_PREFIX = "/api/v1/auth/"

# KEYS[1]: the caller's bucket. ARGV[1]: microseconds between requests (P/N);
# ARGV[2]: the burst window, N * ARGV[1]. Returns {allowed, retry_after_us, remaining,
# reset_us} where reset is when the whole budget is back.
GCRA = LuaScript(
    "gateway-gcra",
    keys=("bucket",),
    args=("interval_us", "window_us"),
    source="""
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - window
if allowed_at > now then
  return {0, allowed_at - now, 0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return {1, 0, math.floor((window - (next_tat - now)) / interval), next_tat - now}
""",
)

_FAILURE_LOG_INTERVAL_SECONDS = 10.0


class RateClass(StrEnum):
    AUTH = "auth"
    WRITE = "write"
    READ = "read"


def classify(method: str, path: str) -> RateClass:
    """Signing in and other auth writes are the strictest; then writes; then reads."""
    if method.upper() in _WRITE_METHODS:
        is_auth = path.startswith(_AUTH_PREFIX) or path == _AUTH_PREFIX.rstrip("/")
        return RateClass.AUTH if is_auth else RateClass.WRITE
    return RateClass.READ


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    window_seconds: float
    remaining: int
    reset_seconds: int
    retry_after_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``RateLimit-*`` (IETF httpapi draft, the widely used split form), plus
        ``Retry-After`` when refused."""
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
            (b"ratelimit-policy", f"{self.limit};w={self.window_seconds:g}".encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after_seconds).encode()))
        return headers


class RateLimiter:
    def __init__(self, redis: Any, settings: GatewaySettings) -> None:
        self._redis = redis
        self._enabled = settings.rate_limits_enabled
        self._timeout = settings.rate_limit_redis_timeout_seconds
        self._classes = {
            RateClass.AUTH: settings.rate_limit_auth,
            RateClass.WRITE: settings.rate_limit_write,
            RateClass.READ: settings.rate_limit_read,
        }
        self._last_failure_logged = -math.inf

    def rule_for(self, rate_class: RateClass, *, signed_in: bool) -> RateLimitRule:
        limits = self._classes[rate_class]
        return limits.per_user if signed_in else limits.per_ip

    async def check(
        self, rate_class: RateClass, *, user_id: str | None, client_address: str
    ) -> RateDecision | None:
        """Spend one request of the caller's budget; ``None`` if no decision could be made
        (disabled, or Redis unavailable: the request goes through)."""
        if not self._enabled:
            return None
        signed_in = user_id is not None
        rule = self.rule_for(rate_class, signed_in=signed_in)
        caller = f"user:{user_id}" if signed_in else f"ip:{client_address}"
        interval_us = max(1, round(rule.per_seconds * 1_000_000 / rule.requests))
        window_us = interval_us * rule.requests
        key = f"{KEY_PREFIX}{rate_class}:{caller}"
        try:
            async with asyncio.timeout(self._timeout):
                allowed, retry_us, remaining, reset_us = await self._run(
                    key, interval_us, window_us
                )
        except (RedisError, OSError, TimeoutError) as error:
            self._record_failure(error)
            return None
        return RateDecision(
            allowed=bool(allowed),
            limit=rule.requests,
            window_seconds=rule.per_seconds,
            remaining=max(0, int(remaining)),
            reset_seconds=max(0, math.ceil(int(reset_us) / 1_000_000)),
            retry_after_seconds=max(1, math.ceil(int(retry_us) / 1_000_000)),
        )

    async def _run(self, key: str, interval_us: int, window_us: int) -> list[int]:
        result = await GCRA.run(
            self._redis, bucket=key, interval_us=interval_us, window_us=window_us
        )
        return [int(value) for value in result]

    def _record_failure(self, error: BaseException) -> None:
        REDIS_FAILURES.labels("rate-limit").inc()
        now = time.monotonic()
        if now - self._last_failure_logged >= _FAILURE_LOG_INTERVAL_SECONDS:
            self._last_failure_logged = now
            logger.warning(
                "rate limits are off: Redis did not answer (%s: %s); letting requests through",
                type(error).__name__,
                error,
            )
