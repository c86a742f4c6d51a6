"""Pieces both relay modes share: options, the producer, headers, names, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url

from marquee_platform.db import to_libpq_dsn

RelayMode = Literal["auto", "cdc", "polling"]

SLOT_PREFIX = "marquee_outbox_"
# PostgreSQL names are at most 63 bytes; leave room for the temporary slot's suffix.
_MAX_NAME = 40


class RelayConfigError(RuntimeError):
    """A mistake no retry can fix (CDC asked for where wal_level is not logical, …)."""


@dataclass(frozen=True, slots=True)
class RelayOptions:
    """Tuning knobs; the defaults suit a service database on a small machine."""

    poll_interval: float = 0.1
    """Polling mode: how long to sleep after a batch came back empty."""
    batch_size: int = 500
    """Polling mode: rows claimed per transaction."""
    max_in_flight: int = 20_000
    """CDC mode: rows sent but not yet acknowledged before we stop reading the slot."""
    feedback_interval: float = 0.1
    """CDC mode: least time between two confirmations of the slot position."""
    status_interval: int = 5
    """CDC mode: keepalive to the server at least this often, even when idle (it drops
    a replication connection that stays silent for wal_sender_timeout, 60 s)."""
    retention: timedelta = timedelta(hours=24)
    """Relayed rows older than this are deleted from the outbox."""
    retention_interval: float = 300.0
    """How often the retention sweep runs."""
    drain_timeout: float = 15.0
    """On stop: how long to wait for the broker to acknowledge what is in flight."""
    max_backoff: float = 10.0
    """Longest wait between two attempts after a failure."""
    leadership_interval: float = 0.5
    """How often a standby relay tries for the lock, and the active one checks it holds it."""
    linger_ms: int = 2
    max_batch_bytes: int = 512 * 1024


def create_relay_producer(bootstrap: str, *, name: str, options: RelayOptions) -> AIOKafkaProducer:
    """The relay's producer: acks from all replicas; no idempotence or transactions.

    tansu (and aiokafka's InitProducerId v0) cannot do idempotent producers, so the contract
    is at-least-once and consumers deduplicate on the event id (design.md). aiokafka keeps
    one request in flight per broker, so messages of one partition stay in order.
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=f"marquee-relay-{name}",
        acks="all",
        enable_idempotence=False,
        linger_ms=options.linger_ms,
        max_batch_size=options.max_batch_bytes,
        request_timeout_ms=30_000,
    )


def kafka_headers(headers_json: str | bytes | None, event_id: str) -> list[tuple[str, bytes]]:
    """The outbox row's ``headers`` object (trace context, …) plus ``ce_id``."""
    headers: dict[str, Any] = json.loads(headers_json) if headers_json else {}
    result = [
        (str(name), value.encode() if isinstance(value, str) else json.dumps(value).encode())
        for name, value in headers.items()
        if value is not None
    ]
    result.append(("ce_id", event_id.encode()))
    return result


def slot_name_for(name: str) -> str:
    """``marquee_outbox_<name>``, made a valid slot name (lower case, digits, ``_``)."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", name.lower())[:_MAX_NAME]
    if not cleaned:
        raise RelayConfigError(f"cannot make a replication slot name from {name!r}")
    return SLOT_PREFIX + cleaned


def database_name(database_url: str) -> str:
    name = make_url(database_url).database
    if not name:
        raise RelayConfigError("the database URL names no database")
    return name


def libpq_dsn(database_url: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+asyncpg://``) as well as plain ones."""
    return to_libpq_dsn(database_url)


async def wait_or_stop(stop: asyncio.Event, timeout: float) -> bool:
    """Sleep up to ``timeout`` seconds, waking early when ``stop`` is set. True if set."""
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    return stop.is_set()
