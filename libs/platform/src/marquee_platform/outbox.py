"""The transactional outbox and the consumer inbox.

A service writes its events to ``outbox`` in the same transaction as the change; a relay
(:mod:`marquee_platform.relay`) carries them to Kafka. A consumer records each applied
event id in ``inbox`` in the same transaction as its effect, so a redelivery is a no-op.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_contracts import REGISTRY, CloudEvent, TopicRegistry
from marquee_platform.tracing import current_trace_headers

OUTBOX_PUBLICATION = "marquee_outbox"


def define_outbox(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("position", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("message_key", String(200), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index(
            "outbox_unpublished",
            "position",
            postgresql_where="published_at IS NULL",
        ),
    )


def define_inbox(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(200), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("consumer_group", String(100), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def define_idempotency_keys(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("principal", String(200), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("method", String(10), nullable=False),
        Column("path", Text, nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", BigInteger, nullable=False),
        Column("response_headers", JSONB, nullable=False),
        Column("response_body", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("idempotency_keys_created_at", "created_at"),
    )


def define_platform_tables(metadata: MetaData) -> dict[str, Table]:
    """Add ``outbox``, ``inbox`` and ``idempotency_keys`` to a service's metadata."""
    return {
        "outbox": define_outbox(metadata),
        "inbox": define_inbox(metadata),
        "idempotency_keys": define_idempotency_keys(metadata),
    }


_platform_metadata = MetaData()
PLATFORM_TABLES = define_platform_tables(_platform_metadata)
OUTBOX = PLATFORM_TABLES["outbox"]
INBOX = PLATFORM_TABLES["inbox"]
IDEMPOTENCY_KEYS = PLATFORM_TABLES["idempotency_keys"]


class Outbox:
    """Writes events into the outbox inside the caller's transaction."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        source: str,
        registry: TopicRegistry = REGISTRY,
    ) -> None:
        self._session = session
        self._source = source
        self._registry = registry

    async def add(self, topic: str, data: BaseModel, *, key: str | uuid.UUID) -> CloudEvent:
        """Queue ``data`` on ``topic``, keyed by its aggregate id so its events stay in order."""
        event = self._registry.event(topic, data, source=self._source, subject=str(key))
        await add_event(self._session, event, topic=topic, key=str(key))
        return event


async def add_event(
    session: AsyncSession,
    event: CloudEvent,
    *,
    topic: str,
    key: str,
    headers: dict[str, Any] | None = None,
) -> None:
    """Insert one already-built envelope into the outbox (the relay does the rest)."""
    await session.execute(
        insert(OUTBOX).values(
            event_id=event.id,
            topic=topic,
            message_key=key,
            payload=event.model_dump(mode="json", exclude_none=True),
            headers={**current_trace_headers(), **(headers or {})},
        )
    )
