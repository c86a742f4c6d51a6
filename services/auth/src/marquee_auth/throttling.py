"""Brute-force defence in Redis: failed sign-ins per account and per client address.

Keys hold a digest of the email, never the address itself, and each account's keys share
one hash tag so they live on one Redis Cluster slot.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from marquee_auth.domain import lockout_seconds
from marquee_platform.errors import RateLimited
from marquee_platform.lua import LuaScript, hash_tag, tagged_key

COUNT_IN_FIXED_WINDOW = LuaScript(
    "auth-count-in-fixed-window",
    keys=("counter",),
    args=("window_ms",),
    source="""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
""",
)
"""INCR that starts the window's clock on the first failure (PEXPIRE NX needs Redis 7)."""

RECORD_ACCOUNT_FAILURE = LuaScript(
    "auth-record-account-failure",
    keys=("failures", "locked"),
    args=("window_ms", "threshold", "lockouts_ms"),
    source="""
-- Already locked: a failure that raced past the check while a concurrent one set the lock.
-- It is refused like one the check caught and not counted for the account: escalation
-- counts lockout periods, not how many guesses were in flight when the lock began.
local locked_ms = redis.call('PTTL', KEYS[2])
if locked_ms > 0 then return locked_ms end
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local threshold = tonumber(ARGV[2])
if failures < threshold then return 0 end
local lockouts = {}
for lockout in string.gmatch(ARGV[3], '%d+') do lockouts[#lockouts + 1] = tonumber(lockout) end
local lock_ms = lockouts[math.min(failures - threshold + 1, #lockouts)]
redis.call('SET', KEYS[2], '1', 'PX', lock_ms)
-- Remember the count past the lock, so the next failure doubles it.
redis.call('PEXPIRE', KEYS[1], lock_ms + tonumber(ARGV[1]))
return lock_ms
""",
)
"""Count an account's failure and, from the ``threshold``-th on, lock it, in one step.

Failures are counted only while the account is not locked, so past the threshold every
counted failure starts the next lockout period: ``lockouts_ms`` lists the first lockout,
the second, and so on (the last one holds for every further period); it comes from
:func:`marquee_auth.domain.lockout_seconds`, so the rule lives in one place. Returns the
lockout in milliseconds (what is left of it, if the account was already locked), 0 when
the account is not locked.
"""


def _account_tag(email: str) -> str:
    return hash_tag("auth:a", hashlib.sha256(email.encode("utf-8")).hexdigest()[:32])


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    window_seconds: int
    max_account_failures: int
    lockout_base_seconds: int
    lockout_max_seconds: int
    max_address_failures: int


class LoginThrottle:
    """Counts failures; refuses sign-ins (429) while an account or an address is locked.

    Per account: ``max_account_failures`` failures within the window lock it for
    ``lockout_base_seconds``; each failure after a lockout ended locks it again for twice
    as long (up to the maximum). Failures while it is locked, including a burst of
    concurrent guesses that raced the lock, do not count for the account (they still
    count for the address). A successful sign-in or a password reset clears the count.
    Per address: more than ``max_address_failures`` failures within the window refuse that
    address until the window ends — a higher limit, since many people may share one
    address.

    Locking an account on failures lets someone lock another person out for a while; the
    cap on the lockout, escalation by lockout periods, and password reset (which still
    works, and clears the lock) bound that. Counting by email also covers addresses that
    have no account, so a 429 says nothing about who has one.
    """

    def __init__(self, redis: Any, policy: ThrottlePolicy) -> None:
        self._redis = redis
        self._policy = policy
        self._lockouts_ms = " ".join(str(seconds * 1000) for seconds in _lockouts(policy))

    async def check(self, email: str, address: str) -> None:
        """Raise :class:`RateLimited` if this account or this address may not try now."""
        tag = _account_tag(email)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.pttl(tagged_key(tag, "locked"))
            pipe.get(self._address_key(address))
            pipe.pttl(self._address_key(address))
            locked_ms, address_failures, address_ttl_ms = await pipe.execute()
        if locked_ms and locked_ms > 0:
            raise self._account_locked(locked_ms)
        if address_failures is not None and int(address_failures) >= (
            self._policy.max_address_failures
        ):
            raise self._address_limited(max(address_ttl_ms, 1000))

    async def record_failure(self, email: str, address: str) -> None:
        """Count one failure; raise :class:`RateLimited` if it just locked the account."""
        tag = _account_tag(email)
        window_ms = self._policy.window_seconds * 1000
        lock_ms = await RECORD_ACCOUNT_FAILURE.run(
            self._redis,
            failures=tagged_key(tag, "failures"),
            locked=tagged_key(tag, "locked"),
            window_ms=window_ms,
            threshold=self._policy.max_account_failures,
            lockouts_ms=self._lockouts_ms,
        )
        # A fixed window per address: a sliding one would never end for a busy shared NAT.
        await COUNT_IN_FIXED_WINDOW.run(
            self._redis, counter=self._address_key(address), window_ms=window_ms
        )
        if lock_ms:
            raise self._account_locked(int(lock_ms))

    async def reset_account(self, email: str) -> None:
        tag = _account_tag(email)
        await self._redis.delete(tagged_key(tag, "failures"), tagged_key(tag, "locked"))

    async def first_in(self, purpose: str, email: str, *, seconds: int) -> bool:
        """True the first time in ``seconds`` for this purpose and account (a cooldown)."""
        if seconds <= 0:
            return True
        key = tagged_key(_account_tag(email), purpose)
        return bool(await self._redis.set(key, "1", nx=True, ex=seconds))

    @staticmethod
    def _address_key(address: str) -> str:
        return tagged_key(hash_tag("auth:ip", address), "failures")

    @staticmethod
    def _account_locked(remaining_ms: int) -> RateLimited:
        seconds = max(1, math.ceil(remaining_ms / 1000))
        return RateLimited(
            f"Too many failed sign-ins for this account. Try again in {seconds} seconds, "
            "or reset your password.",
            code="too-many-failed-logins",
            retry_after_seconds=seconds,
        )

    @staticmethod
    def _address_limited(remaining_ms: int) -> RateLimited:
        seconds = max(1, math.ceil(remaining_ms / 1000))
        return RateLimited(
            f"Too many failed sign-ins from your network address. Try again in {seconds} seconds.",
            code="too-many-failed-logins-from-address",
            retry_after_seconds=seconds,
        )


def _lockouts(policy: ThrottlePolicy) -> list[int]:
    """The lockout, in seconds, of the ``max_account_failures``-th failure, the next, and so
    on until it stops growing (at the maximum, or after 32 doublings)."""
    lockouts: list[int] = []
    failures = policy.max_account_failures
    while len(lockouts) <= 32:
        seconds = lockout_seconds(
            failures,
            threshold=policy.max_account_failures,
            base=policy.lockout_base_seconds,
            maximum=policy.lockout_max_seconds,
        )
        if lockouts and seconds == lockouts[-1]:
            break
        lockouts.append(seconds)
        failures += 1
    return lockouts
