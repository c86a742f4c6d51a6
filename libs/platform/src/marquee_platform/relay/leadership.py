"""One active relay per database, any number standing by.

Two relays reading one outbox would each send every row (polling claims rows with SKIP
LOCKED, but a key's messages could then leave out of order) or fight over the one CDC
slot. So relays of a database compete for a PostgreSQL session-level advisory lock
named after the relay, held on a connection of its own: the holder relays, the others
try again every ``check_interval`` seconds. When the holder dies its connection closes,
PostgreSQL frees the lock, and a standby has it within one interval; its CDC session
then starts from the slot's confirmed position (duplicates at most, never a gap).

PostgreSQL only notices a silent client (a host that vanished, a cut network) through
TCP keepalives, so the lock connection asks the server to probe after 5 s idle, every
2 s, 3 times: a lock of a dead host is freed within about 11 s. The holder checks its
own connection every interval and stops relaying the moment it fails, before anyone
else can have the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

import asyncpg

from marquee_platform.relay.common import wait_or_stop

logger = logging.getLogger("marquee.relay")

_KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "application_name": "marquee-relay-leadership",
}


def leadership_lock_key(name: str) -> int:
    """A stable signed 64-bit ``pg_advisory_lock`` key for the relay called ``name``."""
    digest = hashlib.sha256(f"marquee.relay:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RelayLeadership:
    """The lock that makes this relay the active one for its database."""

    def __init__(self, dsn: str, name: str, *, check_interval: float = 0.5) -> None:
        self.dsn = dsn
        self.name = name
        self.check_interval = check_interval
        self._connection: asyncpg.Connection | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this relay holds the lock (True) or ``stop`` is set (False).

        Raises if the database cannot be reached: the caller retries with backoff."""
        connection = await asyncpg.connect(self.dsn, server_settings=_KEEPALIVES)
        announced = False
        try:
            key = leadership_lock_key(self.name)
            while not stop.is_set():
                if await connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    self._connection = connection
                    logger.info("outbox %s: this relay is now the active one", self.name)
                    return True
                if not announced:
                    logger.info(
                        "outbox %s: another relay is active; standing by to take over",
                        self.name,
                    )
                    announced = True
                await wait_or_stop(stop, self.check_interval)
            return False
        finally:
            if self._connection is None:
                await _close(connection)

    async def watch(self, lost: asyncio.Event, stop: asyncio.Event) -> None:
        """Set ``lost`` when the lock's connection fails, or when ``stop`` is set."""
        while not await wait_or_stop(stop, self.check_interval):
            connection = self._connection
            if connection is None:
                break
            try:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), self.check_interval * 4)
            except Exception as error:
                logger.warning(
                    "outbox %s: lost the leadership lock's connection (%s: %s); stopping",
                    self.name,
                    type(error).__name__,
                    error,
                )
                break
        lost.set()

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await _close(connection)


async def _close(connection: asyncpg.Connection) -> None:
    # Closing the session is what frees a session-level lock.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), 2.0)
    if not connection.is_closed():
        connection.terminate()
