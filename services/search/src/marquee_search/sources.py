"""Where a reindex reads every event from: the change topic, or the events service's API.

Both yield batches of index entries, the newest snapshot per event. Either is complete
on its own: the topic keeps every change (replaying it from the beginning is always
possible), and the events service holds the current state of every event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from marquee_contracts import CloudEvent
from marquee_search.changes import EVENT_CHANGED, entry_from_message_data
from marquee_search.domain import IndexEntry

logger = logging.getLogger(__name__)

SNAPSHOTS_PATH = "/api/v1/events/snapshots"
"""What the HTTP source pages through (see docs/services/search.md): ``?limit=&cursor=``
answering ``{"items": [<events.event-changed.v1 data>, …], "next_cursor": …}``."""


def _batched(entries: Sequence[IndexEntry], size: int) -> list[Sequence[IndexEntry]]:
    return [entries[start : start + size] for start in range(0, len(entries), size)]


async def replay_topic(
    bootstrap: str, *, topic: str = EVENT_CHANGED, batch_size: int = 500
) -> AsyncIterator[Sequence[IndexEntry]]:
    """Read ``topic`` from the beginning up to its end as of now; newest entry per event.

    No consumer group: nothing is committed and the live indexer is not disturbed.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="marquee-search-reindex",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    latest: dict[str, IndexEntry] = {}
    skipped = 0
    try:
        await consumer.topics()  # loads the cluster metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        if assigned:
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
            remaining = {tp for tp in assigned if ends[tp] > 0}
            while remaining:
                batches = await consumer.getmany(*remaining, timeout_ms=1000)
                for partition, records in batches.items():
                    for record in records:
                        if record.value is None:
                            continue
                        entry = _entry_from_record(record.value)
                        if entry is None:
                            skipped += 1
                        else:
                            known = latest.get(entry.event_id)
                            if known is None or entry.version > known.version:
                                latest[entry.event_id] = entry
                    if records and records[-1].offset + 1 >= ends[partition]:
                        remaining.discard(partition)
                for partition in list(remaining):
                    if await consumer.position(partition) >= ends[partition]:
                        remaining.discard(partition)
    finally:
        await consumer.stop()
    if skipped:
        logger.warning("skipped %d messages on %s that are not event changes", skipped, topic)
    for batch in _batched(list(latest.values()), batch_size):
        yield batch


def _entry_from_record(value: bytes) -> IndexEntry | None:
    try:
        event = CloudEvent.from_json_bytes(value)
        if event.type != EVENT_CHANGED:
            return None
        return entry_from_message_data(event.data)
    except (ValidationError, ValueError):
        return None


async def page_events_service(
    events_url: str,
    *,
    token: str | None = None,
    page_size: int = 100,
    client: httpx.AsyncClient | None = None,
) -> AsyncIterator[Sequence[IndexEntry]]:
    """Page through the events service's snapshots (``GET /api/v1/events/snapshots``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=30)
    try:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            response = await http.get(
                events_url.rstrip("/") + SNAPSHOTS_PATH, params=params, headers=headers
            )
            response.raise_for_status()
            page = response.json()
            entries = [entry_from_message_data(item) for item in page.get("items", [])]
            if entries:
                yield entries
            cursor = page.get("next_cursor")
            if not cursor:
                return
    finally:
        if own_client:
            await http.aclose()
