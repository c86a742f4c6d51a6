"""Background work of the waitroom: forwarding admissions to Kafka, and putting on-sales
back into Redis from PostgreSQL when Redis lost them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from marquee_contracts import REGISTRY
from marquee_contracts.waitroom import ADMISSION_GRANTED, AdmissionGranted
from marquee_platform.clock import Clock, utc_now
from marquee_platform.db import Database
from marquee_platform.deps import outbox_source
from marquee_platform.kafka import publish
from marquee_waitroom import handlers
from marquee_waitroom.models import OnSale
from marquee_waitroom.queue import QueueStore
from marquee_waitroom.tokens import from_timestamp_ms

SOURCE = outbox_source("waitroom")
_EVENT_IDS = uuid.UUID("5f0b6c1e-57a4-4f63-9a53-0c7c0d7a1f3e")


async def forward_logs(
    store: QueueStore,
    producer: Any,
    *,
    batch: int = 500,
    topic_names: Mapping[str, str] | None = None,
) -> int:
    """Send every on-sale's new admission entries to Kafka, then delete them; returns how
    many. At least once: entries go only after the broker acknowledged them, so a crash in
    between sends them again with the same CloudEvent ids (consumers dedupe)."""
    renamed = topic_names or {}
    topic = renamed.get(ADMISSION_GRANTED.name, ADMISSION_GRANTED.name)
    forwarded = 0
    for event_id in await store.onsale_events():
        entries = await store.log_entries(event_id, count=batch)
        if not entries:
            continue
        sends = []
        for entry_id, fields in entries:
            data = AdmissionGranted(
                event_id=event_id,
                user_id=fields["account"],
                admission_id=fields["ticket"],
                number=int(fields["number"]),
                admitted_at=from_timestamp_ms(int(fields["admitted"])),
                expires_at=from_timestamp_ms(int(fields["expires"])),
            )
            event = REGISTRY.event(
                ADMISSION_GRANTED.name, data, source=SOURCE, subject=str(event_id)
            )
            event = event.model_copy(
                update={
                    "id": str(uuid.uuid5(_EVENT_IDS, f"{event_id}/{entry_id}")),
                    "time": data.admitted_at,
                }
            )
            sends.append(publish(producer, topic, event, key=str(event_id)))
        await asyncio.gather(*sends)
        await store.trim_log(event_id, [entry_id for entry_id, _ in entries])
        forwarded += len(entries)
    return forwarded


async def reconcile(database: Database, store: QueueStore, *, clock: Clock = utc_now) -> int:
    """Every on-sale of the last day into Redis (a no-op where it is there already; after
    a Redis loss the configuration comes back, though the places in it are lost)."""
    since = clock() - timedelta(days=1)
    async with database.reading() as session:
        onsales = list(
            (await session.execute(select(OnSale).where(OnSale.sale_starts_at >= since))).scalars()
        )
    for onsale in onsales:
        await store.configure(onsale.event_id, handlers.times_of(onsale))
    return len(onsales)


async def seed_reader(database: Database, event_id: uuid.UUID) -> bytes | None:
    async with database.reading() as session:
        seed: bytes | None = (
            await session.execute(select(OnSale.seed).where(OnSale.event_id == event_id))
        ).scalar_one_or_none()
        return seed
