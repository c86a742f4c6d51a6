"""``run_relay``: pick the mode, run sessions, retry after failures, sweep old rows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from marquee_platform.relay.cdc import CdcProgress, CdcRelay
from marquee_platform.relay.common import (
    RelayConfigError,
    RelayMode,
    RelayOptions,
    create_relay_producer,
    libpq_dsn,
    wait_or_stop,
)
from marquee_platform.relay.leadership import RelayLeadership
from marquee_platform.relay.polling import PollingRelay
from marquee_platform.relay.retention import retention_loop

logger = logging.getLogger("marquee.relay")


async def wal_level(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval("SHOW wal_level"))
    finally:
        await connection.close()


async def resolve_mode(dsn: str, mode: RelayMode) -> RelayMode:
    """``auto`` becomes ``cdc`` where ``wal_level`` is ``logical``, else ``polling``."""
    if mode == "polling":
        return mode
    level = await wal_level(dsn)
    if level == "logical":
        return "cdc"
    if mode == "cdc":
        raise RelayConfigError(
            f"CDC mode needs wal_level=logical (the server has {level}); use --mode polling or auto"
        )
    return "polling"


@dataclass
class RelayRole:
    """Whether this relay is the active one for its database (for status reports)."""

    active: bool = False


async def run_relay(
    database_url: str,
    kafka_bootstrap: str,
    *,
    name: str,
    mode: RelayMode = "auto",
    stop: asyncio.Event | None = None,
    producer: AIOKafkaProducer | None = None,
    options: RelayOptions | None = None,
    role: RelayRole | None = None,
) -> None:
    """Relay one database's outbox to Kafka until ``stop`` is set (or the task is cancelled).

    ``name`` labels logs and metrics and names the CDC slot (``marquee_outbox_<name>``), so
    it must be unique per database across the PostgreSQL cluster. Any number of relays may
    run for one database: one holds its leadership lock and relays, the others stand by
    (:mod:`marquee_platform.relay.leadership`). A failed session (the database restarted,
    the broker is away, the slot is still held by a dying relay) is logged and retried
    with capped exponential backoff; only a configuration error (:class:`RelayConfigError`)
    is raised. Pass ``producer`` to share one across several databases; otherwise each
    session makes (and stops) its own. ``options`` holds the tuning knobs (poll interval,
    retention window, …); ``role`` is kept up to date with whether this one is active.
    """
    options = options or RelayOptions()
    stop = stop or asyncio.Event()
    role = role or RelayRole()
    dsn = libpq_dsn(database_url)
    progress = CdcProgress()
    backoff = 0.5
    while not stop.is_set():
        leadership = RelayLeadership(dsn, name, check_interval=options.leadership_interval)
        try:
            if not await leadership.acquire(stop):
                break
            role.active = True
            await _lead(
                dsn, kafka_bootstrap, name, mode, stop, producer, options, progress, leadership
            )
            backoff = 0.5
        except RelayConfigError:
            raise
        except Exception as error:
            delay = random.uniform(backoff / 2, backoff)  # noqa: S311 - jitter
            logger.warning(
                "outbox %s: relay session failed (%s: %s); retrying in %.1fs",
                name,
                type(error).__name__,
                error,
                delay,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            await wait_or_stop(stop, delay)
            backoff = min(backoff * 2, options.max_backoff)
        finally:
            role.active = False
            await leadership.release()


async def _lead(
    dsn: str,
    kafka_bootstrap: str,
    name: str,
    mode: RelayMode,
    stop: asyncio.Event,
    producer: AIOKafkaProducer | None,
    options: RelayOptions,
    progress: CdcProgress,
    leadership: RelayLeadership,
) -> None:
    """Relay while this one holds the lock: sessions end when ``stop`` is set or the lock
    is lost, whichever comes first."""
    term_over = asyncio.Event()
    watcher = asyncio.create_task(leadership.watch(term_over, stop), name=f"relay-lock-{name}")
    sweeper = asyncio.create_task(
        retention_loop(
            dsn,
            name=name,
            retention=options.retention,
            interval=options.retention_interval,
            stop=term_over,
            relayed_up_to=lambda: progress.confirmed_position,
        ),
        name=f"relay-retention-{name}",
    )
    try:
        chosen = await resolve_mode(dsn, mode)
        await _session(dsn, kafka_bootstrap, name, chosen, term_over, producer, options, progress)
    finally:
        for task in (watcher, sweeper):
            task.cancel()
        for task in (watcher, sweeper):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _session(
    dsn: str,
    bootstrap: str,
    name: str,
    mode: RelayMode,
    stop: asyncio.Event,
    shared_producer: AIOKafkaProducer | None,
    options: RelayOptions,
    progress: CdcProgress,
) -> None:
    producer = shared_producer or create_relay_producer(bootstrap, name=name, options=options)
    try:
        if shared_producer is None:
            await producer.start()
        if mode == "cdc":
            await CdcRelay(
                dsn, producer, name=name, options=options, stop=stop, progress=progress
            ).run()
        else:
            await PollingRelay(dsn, producer, name=name, options=options, stop=stop).run()
    finally:
        if shared_producer is None:
            await producer.stop()
