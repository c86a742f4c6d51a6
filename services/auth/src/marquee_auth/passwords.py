"""argon2id password hashing, off the event loop and with bounded concurrency."""

from __future__ import annotations

import asyncio
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from marquee_auth.domain import normalize_password


class PasswordHasher:
    """Hashes and checks passwords with argon2id.

    Each hash takes ``memory_kib`` of memory and tens of milliseconds of CPU, on purpose.
    Hashing runs in worker threads (argon2 releases the GIL) so the event loop keeps
    serving, and at most ``concurrency`` run at once so a burst of logins queues instead of
    taking the process's memory.
    """

    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int
    ) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None
        self._dummy_hash: str | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._slots

    async def hash(self, password: str) -> str:
        async with self._semaphore():
            return await asyncio.to_thread(self._argon2.hash, normalize_password(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches. Without a hash (no such account) a dummy one is
        checked anyway, so the answer takes as long and does not reveal who has an account."""
        if password_hash is None:
            password_hash = await self._dummy()
            await self._verify(password_hash, password)
            return False
        return await self._verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's (rehash at login)."""
        return self._argon2.check_needs_rehash(password_hash)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._semaphore():
            try:
                return await asyncio.to_thread(
                    self._argon2.verify, password_hash, normalize_password(password)
                )
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
