"""``run_relay``: pick the mode, run sessions, retry after failures, sweep old rows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

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


async def run_relay(
    database_url: str,
    kafka_bootstrap: str,
    *,
    name: str,
    mode: RelayMode = "auto",
    stop: asyncio.Event | None = None,
    producer: AIOKafkaProducer | None = None,
    options: RelayOptions | None = None,
) -> None:
    """Relay one database's outbox to Kafka until ``stop`` is set (or the task is cancelled).

    ``name`` labels logs and metrics and names the CDC slot (``marquee_outbox_<name>``), so
    it must be unique per database across the PostgreSQL cluster. A failed session (the
    database restarted, the broker is away, the slot is still held by a dying relay) is
    logged and retried with capped exponential backoff; only a configuration error
    (:class:`RelayConfigError`) is raised. Pass ``producer`` to share one across several
    databases; otherwise each session makes (and stops) its own. ``options`` holds the
    tuning knobs (poll interval, retention window, …).
    """
    options = options or RelayOptions()
    stop = stop or asyncio.Event()
    dsn = libpq_dsn(database_url)
    progress = CdcProgress()
    sweeper = asyncio.create_task(
        retention_loop(
            dsn,
            name=name,
            retention=options.retention,
            interval=options.retention_interval,
            stop=stop,
            relayed_up_to=lambda: progress.confirmed_position,
        ),
        name=f"relay-retention-{name}",
    )
    backoff = 0.5
    try:
        while not stop.is_set():
            try:
                chosen = await resolve_mode(dsn, mode)
                await _session(
                    dsn, kafka_bootstrap, name, chosen, stop, producer, options, progress
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
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


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
