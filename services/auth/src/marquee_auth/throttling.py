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

_COUNT_IN_FIXED_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""
"""INCR that starts the window's clock on the first failure (PEXPIRE NX needs Redis 7)."""


def _account_tag(email: str) -> str:
    return "{auth:a:" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:32] + "}"


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
    ``lockout_base_seconds``, doubling with every further failure (up to the maximum);
    a successful sign-in clears the count. Per address: more than ``max_address_failures``
    failures within the window refuse that address until the window ends — a higher limit,
    since many people may share one address.

    Locking an account on failures lets someone lock another person out for a while; the
    cap on the lockout and password reset (which still works, and clears the count) bound
    that. Counting by email also covers addresses that have no account, so a 429 says
    nothing about who has one.
    """

    def __init__(self, redis: Any, policy: ThrottlePolicy) -> None:
        self._redis = redis
        self._policy = policy
        self._count_in_fixed_window = redis.register_script(_COUNT_IN_FIXED_WINDOW)

    async def check(self, email: str, address: str) -> None:
        """Raise :class:`RateLimited` if this account or this address may not try now."""
        tag = _account_tag(email)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.pttl(f"{tag}:locked")
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
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(f"{tag}:failures")
            pipe.pexpire(f"{tag}:failures", window_ms)
            failures, _ = await pipe.execute()
        # A fixed window per address: a sliding one would never end for a busy shared NAT.
        await self._count_in_fixed_window(keys=[self._address_key(address)], args=[window_ms])
        lock_seconds = lockout_seconds(
            int(failures),
            threshold=self._policy.max_account_failures,
            base=self._policy.lockout_base_seconds,
            maximum=self._policy.lockout_max_seconds,
        )
        if lock_seconds:
            lock_ms = lock_seconds * 1000
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(f"{tag}:locked", "1", px=lock_ms)
                # Remember the count past the lock, so the next failure doubles it.
                pipe.pexpire(f"{tag}:failures", lock_ms + window_ms)
                await pipe.execute()
            raise self._account_locked(lock_ms)

    async def reset_account(self, email: str) -> None:
        tag = _account_tag(email)
        await self._redis.delete(f"{tag}:failures", f"{tag}:locked")

    async def first_in(self, purpose: str, email: str, *, seconds: int) -> bool:
        """True the first time in ``seconds`` for this purpose and account (a cooldown)."""
        if seconds <= 0:
            return True
        key = f"{_account_tag(email)}:{purpose}"
        return bool(await self._redis.set(key, "1", nx=True, ex=seconds))

    @staticmethod
    def _address_key(address: str) -> str:
        return "{auth:ip:" + address + "}:failures"

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
