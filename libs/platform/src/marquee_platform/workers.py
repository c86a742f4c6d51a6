"""Workers (consumers and relays) say they are alive, and what they hold, in Redis.

A worker has no HTTP port anyone probes, so a dead consumer would otherwise leave every
``/readyz`` green while its events go unapplied. Each worker process runs a
:class:`WorkerBeacon`: every ``interval`` seconds it writes its :class:`WorkerStatus`
(kind, group, role, partitions, lag) under its own key with a time-to-live of a few
intervals. A process that dies stops writing and its key expires; one that stops cleanly
deletes its key at once. :func:`read_workers` lists the live ones, which is what the
gateway's ``/readyz`` and ``marquee dev``'s table report.

Keys: ``marquee:workers:<kind>:<group>:<instance>``, the instance being
``<host>:<pid>`` (unique per process on a host, readable by an operator).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "marquee:workers:"
WorkerKind = Literal["consumer", "relay"]


def this_instance() -> str:
    """``<host>:<pid>``: names this process among the replicas of a worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    kind: WorkerKind
    group: str
    """The consumer group, or the relayed database's name."""
    bootstrap: str = ""
    """The Kafka cluster it works for: Redis may be shared by several platforms (a
    developer's ``make dev`` and a test's), so readers keep their own cluster's workers."""
    instance: str = field(default_factory=this_instance)
    role: str = "member"
    """``member`` for a consumer; ``active`` or ``standby`` for a relay."""
    partitions: tuple[str, ...] = ()
    """Assigned partitions as ``topic[n]``."""
    lag: int | None = None
    """Messages between what this worker applied and the partitions' ends (consumers)."""
    started_at: float = 0.0
    reported_at: float = 0.0

    @property
    def pid(self) -> int:
        """The process id part of :attr:`instance` (``<host>:<pid>``)."""
        return int(self.instance.rsplit(":", 1)[1])

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.kind}:{self.group}:{self.instance}"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "partitions": list(self.partitions)})

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkerStatus:
        data: dict[str, Any] = json.loads(raw)
        data["partitions"] = tuple(data.get("partitions", ()))
        return cls(**data)


StatusSource = Callable[[], WorkerStatus]


@dataclass
class WorkerBeacon:
    """Writes ``status()`` to Redis every ``interval`` seconds until stopped."""

    redis_url: str
    status: StatusSource
    interval: float = 1.0
    ttl_intervals: int = 3
    """The key lives this many intervals: a missed write or two is not a death."""
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _client: redis_asyncio.Redis | None = field(default=None, init=False, repr=False)
    _last_key: str | None = field(default=None, init=False, repr=False)

    def start(self) -> WorkerBeacon:
        self._client = redis_asyncio.Redis.from_url(
            self.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
        )
        self._task = asyncio.create_task(self._loop(), name="worker-beacon")
        return self

    async def announce(self) -> None:
        """Write the status now (also called on changes, so a rebalance shows at once)."""
        if self._client is None:
            return
        status = replace(self.status(), reported_at=time.time())
        ttl_ms = int(self.interval * self.ttl_intervals * 1000)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                if self._last_key is not None and self._last_key != status.key:
                    pipe.delete(self._last_key)
                pipe.set(status.key, status.to_json(), px=ttl_ms)
                await pipe.execute()
            self._last_key = status.key
        except (RedisError, OSError) as error:
            # Visibility only: a worker keeps working while Redis is away.
            logger.debug("worker status not written: %s", error)

    async def _loop(self) -> None:
        while True:
            await self.announce()
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            if self._last_key is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._client.delete(self._last_key)
            await self._client.aclose()
            self._client = None


async def read_workers(
    client: redis_asyncio.Redis, *, bootstrap: str | None = None
) -> list[WorkerStatus]:
    """Every live worker's last status (of the Kafka cluster ``bootstrap`` if given),
    sorted by kind, group and instance."""
    keys = [key async for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=500)]
    if not keys:
        return []
    values = await client.mget(keys)
    statuses = []
    for value in values:
        if value is None:  # expired between SCAN and MGET
            continue
        with contextlib.suppress(ValueError, TypeError):
            status = WorkerStatus.from_json(value)
            if bootstrap is None or status.bootstrap == bootstrap:
                statuses.append(status)
    return sorted(statuses, key=lambda status: (status.kind, status.group, status.instance))
