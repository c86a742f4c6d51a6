"""Kafka entry points of the inventory service.

- ``events.event-published.v1`` → the event's seats and ticket types, then its Redis state;
- ``events.event-changed.v1`` / ``events.event-cancelled.v1`` → status, sale windows,
  caps, ticket types and capacities (a newer version only), applied to Redis in place;
- ``booking.order-paid.v1`` → the hold's places sold, ``sale-confirmed`` or ``-rejected``;
- ``booking.order-closed.v1`` → an unpaid order's hold is released at once;
- ``booking.ticket-cancelled.v1`` → the ticket's place is sellable again;
- ``inventory.hold-requested.v1`` → high-demand mode: one event's queued hold requests,
  applied first come, first served (its own topic, keyed by event id);
- ``waitroom.onsale-configured.v1`` → the event's admission gate (do holds need a
  waiting-room admission token?), a newer ``configured_at`` only; it may come before the
  event is published here.

Redis is brought up to date after each transaction committed (``after_commit``); if that
is lost to a crash, the reconcile task finds the state behind and reloads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as redis_asyncio

from marquee_contracts.booking import (
    ORDER_CLOSED,
    ORDER_PAID,
    TICKET_CANCELLED,
    OrderClosed,
    OrderPaid,
    TicketCancelled,
)
from marquee_contracts.catalog import (
    EVENT_CANCELLED,
    EVENT_CHANGED,
    EVENT_PUBLISHED,
    EventCancelled,
    EventChanged,
    EventPublished,
)
from marquee_contracts.inventory import HOLD_REQUESTED, HoldRequested
from marquee_contracts.waitroom import ONSALE_CONFIGURED, OnSaleConfigured
from marquee_inventory import handlers, queue
from marquee_inventory.handlers import SeatMaps
from marquee_inventory.repository import (
    AdmissionGateRepository,
    EventRepository,
    SaleRepository,
    SeatRepository,
)
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.clock import Clock, utc_now
from marquee_platform.consumer import ConsumerRunner, Delivery, Handler
from marquee_platform.db import Database, WriteSession, after_commit
from marquee_platform.deps import outbox_source
from marquee_platform.outbox import Outbox

CONSUMER_GROUP = "inventory"
CONSUMED_TOPICS = (
    HOLD_REQUESTED.name,
    EVENT_PUBLISHED.name,
    EVENT_CHANGED.name,
    EVENT_CANCELLED.name,
    ORDER_PAID.name,
    ORDER_CLOSED.name,
    TICKET_CANCELLED.name,
    ONSALE_CONFIGURED.name,
)


@dataclass(frozen=True, slots=True)
class InventoryConsumers:
    """The handlers, bound to this process's database, Redis and clock."""

    database: Database
    store: HoldStore
    clock: Clock = utc_now
    seat_maps: SeatMaps | None = None

    def _push_after_commit(self, session: WriteSession, event_id: object) -> None:
        import uuid

        assert isinstance(event_id, uuid.UUID)
        after_commit(
            session,
            lambda: handlers.push_config(event_id, database=self.database, store=self.store),
        )

    async def on_event_published(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, EventPublished)
        if await handlers.apply_event_published(
            delivery.data, events=EventRepository(session), seats=SeatRepository(session)
        ):
            self._push_after_commit(session, delivery.data.event_id)

    async def on_event_changed(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, EventChanged)
        if await handlers.apply_event_changed(delivery.data, events=EventRepository(session)):
            self._push_after_commit(session, delivery.data.event_id)

    async def on_event_cancelled(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, EventCancelled)
        if await handlers.apply_event_cancelled(delivery.data, events=EventRepository(session)):
            self._push_after_commit(session, delivery.data.event_id)

    async def on_order_paid(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, OrderPaid)
        await handlers.confirm_sale(
            delivery.data,
            events=EventRepository(session),
            seats=SeatRepository(session),
            sales=SaleRepository(session),
            outbox=Outbox(session, source=outbox_source("inventory")),
            store=self.store,
            database=self.database,
            clock=self.clock,
        )

    async def on_order_closed(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, OrderClosed)
        await handlers.release_for_closed_order(delivery.data, store=self.store, clock=self.clock)

    async def on_ticket_cancelled(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, TicketCancelled)
        await handlers.return_place(
            delivery.data,
            seats=SeatRepository(session),
            sales=SaleRepository(session),
            store=self.store,
            database=self.database,
            clock=self.clock,
        )

    async def on_hold_requested(self, delivery: Delivery, session: WriteSession) -> None:
        """High-demand mode: one partition's requests, in arrival order."""
        assert isinstance(delivery.data, HoldRequested)
        await queue.apply_queued_hold(
            delivery.data,
            store=self.store,
            seat_maps=self.seat_maps or SeatMaps(self.database),
            database=self.database,
            clock=self.clock,
        )

    async def on_onsale_configured(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, OnSaleConfigured)
        event_id = delivery.data.event_id
        gate = await handlers.apply_onsale_configured(
            delivery.data, gates=AdmissionGateRepository(session)
        )
        if gate is not None:
            after_commit(
                session, lambda: handlers.push_admission_gate(event_id, gate, store=self.store)
            )

    def handlers(self) -> Mapping[str, Handler]:
        return {
            HOLD_REQUESTED.name: self.on_hold_requested,
            EVENT_PUBLISHED.name: self.on_event_published,
            EVENT_CHANGED.name: self.on_event_changed,
            EVENT_CANCELLED.name: self.on_event_cancelled,
            ORDER_PAID.name: self.on_order_paid,
            ORDER_CLOSED.name: self.on_order_closed,
            TICKET_CANCELLED.name: self.on_ticket_cancelled,
            ONSALE_CONFIGURED.name: self.on_onsale_configured,
        }


def build_consumer(
    settings: InventorySettings,
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
        application_name="marquee-inventory-consumer",
    )
    redis = redis or redis_asyncio.Redis.from_url(settings.redis_url)
    bound = InventoryConsumers(
        database=database,
        store=HoldStore(redis, index_prefix=settings.redis_index_prefix),
        clock=clock,
        seat_maps=SeatMaps(database),
    )
    renamed = {HOLD_REQUESTED.name: settings.hold_requests_topic, **(topic_names or {})}
    return ConsumerRunner(
        group=group,
        bootstrap=settings.kafka_bootstrap,
        database=database,
        handlers={
            renamed.get(topic, topic): handler for topic, handler in bound.handlers().items()
        },
    )


def create_consumer() -> ConsumerRunner:
    """What ``marquee consume --service inventory`` runs (ServiceSpec.consumer_factory)."""
    return build_consumer(InventorySettings())
