"""Kafka entry points of the waitroom service.

- ``events.event-changed.v1`` → who organizes each event (for on-sale permissions);
- ``inventory.hold-created.v1`` → an admitted fan holds: no longer pending, and their
  shopper's slot lasts as long as the hold;
- ``inventory.hold-released.v1`` / ``inventory.hold-expired.v1`` → the slot lasts no longer
  than the admission window;
- ``inventory.sale-confirmed.v1`` → the fan bought: their slot is free for the next fan.

A hold or a purchase by a fan with a waitlist offer also keeps the offer alive while the
hold lives, or ends it as ``bought``.

Redis effects are idempotent (a redelivery sets the same scores), so they run inside the
handler; the inbox row makes the catalog update exactly-once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as redis_asyncio

from marquee_contracts.catalog import EVENT_CHANGED, EventChanged
from marquee_contracts.inventory import (
    HOLD_CREATED,
    HOLD_EXPIRED,
    HOLD_RELEASED,
    SALE_CONFIRMED,
    HoldCreated,
    HoldEnded,
    SaleConfirmed,
)
from marquee_platform.clock import Clock, utc_now
from marquee_platform.consumer import ConsumerRunner, Delivery, Handler
from marquee_platform.db import Database, WriteSession
from marquee_waitroom import handlers, waitlist
from marquee_waitroom.admission import now_ms, to_ms
from marquee_waitroom.queue import QueueStore
from marquee_waitroom.settings import WaitroomSettings

CONSUMER_GROUP = "waitroom"
CONSUMED_TOPICS = (
    EVENT_CHANGED.name,
    HOLD_CREATED.name,
    HOLD_RELEASED.name,
    HOLD_EXPIRED.name,
    SALE_CONFIRMED.name,
)


@dataclass(frozen=True, slots=True)
class WaitroomConsumers:
    store: QueueStore
    clock: Clock = utc_now

    async def on_event_changed(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, EventChanged)
        await handlers.apply_event_changed(session, delivery.data)

    async def on_hold_created(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, HoldCreated)
        hold = delivery.data
        await self.store.hold_seen(hold.event_id, hold.user_id, until_ms=to_ms(hold.expires_at))
        await waitlist.hold_placed(session, hold.event_id, hold.user_id, until=hold.expires_at)

    async def on_hold_ended(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, HoldEnded)
        hold = delivery.data
        await self.store.hold_ended(
            hold.event_id, hold.user_id, now_ms=now_ms(self.clock), sold=False
        )

    async def on_sale_confirmed(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, SaleConfirmed)
        sale = delivery.data
        await waitlist.bought(session, sale.event_id, sale.user_id, self.clock())
        await self.store.hold_ended(
            sale.event_id, sale.user_id, now_ms=now_ms(self.clock), sold=True
        )

    def handlers(self) -> Mapping[str, Handler]:
        return {
            EVENT_CHANGED.name: self.on_event_changed,
            HOLD_CREATED.name: self.on_hold_created,
            HOLD_RELEASED.name: self.on_hold_ended,
            HOLD_EXPIRED.name: self.on_hold_ended,
            SALE_CONFIRMED.name: self.on_sale_confirmed,
        }


def build_consumer(
    settings: WaitroomSettings,
    *,
    database: Database | None = None,
    redis: redis_asyncio.Redis | None = None,
    group: str = CONSUMER_GROUP,
    topic_names: Mapping[str, str] | None = None,
    clock: Clock = utc_now,
) -> ConsumerRunner:
    """The runner as ``group``; ``topic_names`` renames topics (tests on a shared broker)."""
    database = database or Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        application_name="marquee-waitroom-consumer",
    )
    redis = redis or redis_asyncio.Redis.from_url(settings.redis_url)
    bound = WaitroomConsumers(QueueStore(redis, index_prefix=settings.redis_index_prefix), clock)
    renamed = topic_names or {}
    return ConsumerRunner(
        group=group,
        bootstrap=settings.kafka_bootstrap,
        database=database,
        handlers={
            renamed.get(topic, topic): handler for topic, handler in bound.handlers().items()
        },
    )


def create_consumer() -> ConsumerRunner:
    """What ``marquee consume --service waitroom`` runs (ServiceSpec.consumer_factory)."""
    return build_consumer(WaitroomSettings())
