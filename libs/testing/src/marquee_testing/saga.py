"""The purchase saga in one process: inventory, booking and payments apps on their own
migrated databases and the worker's Redis, each service's outbox (and inventory's Redis
hold logs) carried to the other services' consumers.

What is real: the three apps and their HTTP APIs, PostgreSQL, Redis, the simulated
provider posting signed webhooks to the payments app, every consumer handler and its
inbox (``ConsumerRunner.apply`` is the runner's own apply-once path). What is collapsed:
the relay and the broker between an outbox row and the consumer — those have their own
tests (relay crash tests, consumer runner tests) and run for real in ``tests/e2e``. In
return the saga's steps happen exactly when a test calls :meth:`Saga.pump`, so a test can
stop between any two of them, deliver a message twice, or deliver them out of order.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from marquee_booking.consumers import build_consumer as build_booking_consumer
from marquee_booking.inventory_client import InventoryClient
from marquee_booking.main import SERVICE as BOOKING
from marquee_booking.main import create_app as create_booking_app
from marquee_booking.settings import BookingSettings
from marquee_contracts import CloudEvent
from marquee_contracts.catalog import (
    EVENT_CANCELLED,
    EVENT_CHANGED,
    EVENT_PUBLISHED,
    EventCancelled,
    EventPublished,
)
from marquee_inventory.consumers import build_consumer as build_inventory_consumer
from marquee_inventory.holds import EventKeys
from marquee_inventory.main import SERVICE as INVENTORY
from marquee_inventory.main import create_app as create_inventory_app
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_inventory.tasks import expire_holds, log_entry_event
from marquee_payments.booking_client import BookingClient
from marquee_payments.consumers import build_consumer as build_payments_consumer
from marquee_payments.main import SERVICE as PAYMENTS
from marquee_payments.main import create_app as create_payments_app
from marquee_payments.providers.base import PaymentProvider
from marquee_payments.settings import PaymentsSettings
from marquee_payments.simulator import SimulatedProvider
from marquee_platform.consumer import ConsumerRunner
from marquee_platform.db import Database
from marquee_testing.events import Clock
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer
from marquee_testing.inventory import PublishedEvent, changed_snapshot

Mailbox = list[tuple[str, CloudEvent]]


@dataclass
class Service:
    name: str
    app: FastAPI
    database: Database
    runner: ConsumerRunner
    client: httpx.AsyncClient
    last_position: int = 0


@dataclass
class Saga:
    inventory: Service
    booking: Service
    payments: Service
    store: HoldStore
    provider: PaymentProvider
    clock: Clock
    log_positions: dict[uuid.UUID, str] = field(default_factory=dict)
    delivered: list[tuple[str, str]] = field(default_factory=list)
    """(topic, consumer) of every message carried, in order."""
    webhooks: Callable[[], Awaitable[int]] | None = None
    """Carries webhooks a real provider (localstripe) sent since the last round to the
    payments app; how many. The simulated provider delivers its own."""
    held_back: Callable[[str, CloudEvent], bool] | None = None
    """A test's filter: messages it answers True for stay undelivered (in ``parked``)."""
    parked: Mailbox = field(default_factory=list)

    @property
    def simulator(self) -> SimulatedProvider:
        assert isinstance(self.provider, SimulatedProvider), "this saga pays through Stripe"
        return self.provider

    @property
    def services(self) -> tuple[Service, ...]:
        return (self.inventory, self.booking, self.payments)

    async def publish(self, message: EventPublished) -> None:
        """The events service published an event: inventory and booking learn it."""
        event = CloudEvent(
            id=str(uuid.uuid4()),
            source="/marquee/events",
            type=EVENT_PUBLISHED.name,
            subject=str(message.event_id),
            data=message.model_dump(mode="json"),
        )
        for service in (self.inventory, self.booking):
            await service.runner.apply(event, topic=EVENT_PUBLISHED.name)
        await self.pump()

    async def cancel_event(self, event: PublishedEvent, *, version: int) -> None:
        """The organizer cancelled the event: the snapshot first, then the cancellation,
        as the events service writes them, to inventory and booking."""
        message = event.message
        cancelled = EventCancelled(
            event_id=message.event_id,
            version=version,
            organizer_id=message.organizer_id,
            name=message.name,
            starts_at=message.starts_at,
            ends_at=message.ends_at,
            venue_id=message.venue_id,
            previous_status="on_sale",
            reason="The band split up",
            cancelled_at=self.clock(),
        )
        for topic, data in (
            (EVENT_CHANGED.name, changed_snapshot(event, version=version, status="cancelled")),
            (EVENT_CANCELLED.name, cancelled),
        ):
            envelope = CloudEvent(
                source="/marquee/events",
                type=topic,
                subject=str(message.event_id),
                data=data.model_dump(mode="json"),
            )
            await self.deliver(topic, envelope)
        await self.pump()

    async def collect(self) -> Mailbox:
        """Everything written since the last collection: outbox rows, hold logs."""
        found: Mailbox = []
        for service in self.services:
            async with service.database.reading() as session:
                rows = await session.execute(
                    text(
                        "SELECT position, topic, payload FROM outbox WHERE position > :after "
                        "ORDER BY position"
                    ),
                    {"after": service.last_position},
                )
                for row in rows:
                    service.last_position = row.position
                    found.append((row.topic, CloudEvent.model_validate(row.payload)))
        redis = self.store.redis
        for raw_member in await redis.smembers(self.store.log_index):
            event_id = uuid.UUID(
                raw_member.decode() if isinstance(raw_member, bytes) else raw_member
            )
            after = self.log_positions.get(event_id, "-")
            start = f"({after}" if after != "-" else "-"
            for raw_id, raw_fields in await redis.xrange(EventKeys.of(event_id).log, min=start):
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
                fields = {
                    (k.decode() if isinstance(k, bytes) else k): (
                        v.decode() if isinstance(v, bytes) else v
                    )
                    for k, v in raw_fields.items()
                }
                self.log_positions[event_id] = entry_id
                made = log_entry_event(event_id, entry_id, fields)
                if made is not None:
                    found.append(made)
        return found

    async def deliver(self, topic: str, event: CloudEvent) -> int:
        """Give one message to every consumer of its topic; how many applied it."""
        applied = 0
        for service in self.services:
            if topic in service.runner.handlers:
                if await service.runner.apply(event, topic=topic):
                    applied += 1
                self.delivered.append((topic, service.name))
        return applied

    async def pump(self, *, rounds: int = 50) -> Mailbox:
        """Carry messages until none is left (webhooks the simulator owes included);
        answers what was carried."""
        carried: Mailbox = []
        for _ in range(rounds):
            if isinstance(self.provider, SimulatedProvider):
                await self.provider.settle()
                await self.provider.deliver_due()
            if self.webhooks is not None:
                await self.webhooks()
            batch = await self.collect()
            if not batch:
                return carried
            for topic, event in batch:
                if self.held_back is not None and self.held_back(topic, event):
                    self.parked.append((topic, event))
                    continue
                await self.deliver(topic, event)
                carried.append((topic, event))
        raise AssertionError(f"the saga did not settle in {rounds} rounds")

    async def release_parked(self) -> None:
        parked, self.parked = self.parked, []
        for topic, event in parked:
            await self.deliver(topic, event)
        await self.pump()

    async def expire_holds(self) -> None:
        """Inventory's sweeper, once (the clock decides what is due)."""
        await expire_holds(self.store, clock=self.clock, on_change=lambda event_id: None)


@asynccontextmanager
async def running_saga(
    *,
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
    token_issuer: TokenIssuer,
    unique_name: Callable[[str], str],
    clock: Clock,
    payments_overrides: dict[str, Any] | None = None,
    provider: PaymentProvider | None = None,
) -> AsyncIterator[Saga]:
    """The three services on fresh databases; ``provider`` replaces the simulated one (a
    StripeProvider on localstripe; its settings' ``provider`` must name it)."""
    urls = {}
    for name, spec in (("inventory", INVENTORY), ("booking", BOOKING), ("payments", PAYMENTS)):
        assert spec.migrations is not None
        urls[name] = await make_database(spec.migrations, prefix=name)
    common: dict[str, Any] = {
        "redis_url": redis_url,
        "jwks_url": token_issuer.jwks_url,
        "kafka_bootstrap": kafka_bootstrap,
        "log_json": False,
        "database_pool_size": 4,
    }
    index_prefix = unique_name("saga")
    inventory_settings = InventorySettings(
        database_url=urls["inventory"],
        redis_index_prefix=index_prefix,
        sweep_interval_seconds=3600,
        forward_interval_seconds=3600,
        reconcile_interval_seconds=3600,
        **common,
    )
    booking_settings = BookingSettings(database_url=urls["booking"], **common)
    payments_settings = PaymentsSettings(
        database_url=urls["payments"],
        simulator_webhook_url="http://payments.test/api/v1/payments/webhooks/simulated",
        simulator_retry_seconds=3600,
        simulator_enabled=True,
        **{**common, **(payments_overrides or {})},
    )
    async with AsyncExitStack() as stack:
        inventory_app = create_inventory_app(inventory_settings)
        booking_app = create_booking_app(booking_settings)
        payments_app = create_payments_app(payments_settings)
        for app in (inventory_app, booking_app, payments_app):
            app.state.clock = clock

        def transport(app: FastAPI) -> httpx.ASGITransport:
            return httpx.ASGITransport(app=app)

        booking_app.state.inventory_client = InventoryClient(
            "http://inventory.test", transport=transport(inventory_app)
        )
        payments_app.state.booking_client = BookingClient(
            "http://booking.test", transport=transport(booking_app)
        )
        payments_database = Database(urls["payments"], pool_size=4)
        stack.push_async_callback(payments_database.dispose)
        if provider is None:
            simulated = SimulatedProvider(
                payments_database,
                webhook_secret=payments_settings.simulator_webhook_secret.get_secret_value(),
                webhook_url=payments_settings.simulator_webhook_url or "",
                transport=transport(payments_app),
                clock=clock,
            )
            stack.push_async_callback(simulated.aclose)
            provider = simulated
        payments_app.state.provider = provider
        for app in (inventory_app, booking_app, payments_app):
            await stack.enter_async_context(app.router.lifespan_context(app))
        redis = redis_asyncio.Redis.from_url(redis_url)
        stack.push_async_callback(redis.aclose)
        store = HoldStore(redis, index_prefix=index_prefix)

        def client(app: FastAPI, name: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=transport(app), base_url=f"http://{name}.test")

        services = {}
        for name, app, runner in (
            (
                "inventory",
                inventory_app,
                build_inventory_consumer(
                    inventory_settings,
                    database=Database(urls["inventory"], pool_size=4),
                    redis=redis,
                    clock=clock,
                ),
            ),
            (
                "booking",
                booking_app,
                build_booking_consumer(
                    booking_settings,
                    database=Database(urls["booking"], pool_size=4),
                    clock=clock,
                ),
            ),
            (
                "payments",
                payments_app,
                build_payments_consumer(
                    payments_settings,
                    database=payments_database,
                    provider=provider,
                    clock=clock,
                ),
            ),
        ):
            http = await stack.enter_async_context(client(app, name))
            if name != "payments":
                stack.push_async_callback(runner.database.dispose)
            services[name] = Service(name, app, runner.database, runner, http)
        yield Saga(
            inventory=services["inventory"],
            booking=services["booking"],
            payments=services["payments"],
            store=store,
            provider=provider,
            clock=clock,
        )


def bodies(messages: Sequence[tuple[str, CloudEvent]], topic: str) -> list[dict[str, Any]]:
    return [dict(event.data or {}) for name, event in messages if name == topic]


@pytest.fixture
def payments_overrides() -> dict[str, Any]:
    """Payments settings a test module changes (override this fixture in the module)."""
    return {}


@pytest.fixture
async def saga(
    payments_overrides: dict[str, Any],
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
    token_issuer: TokenIssuer,
    unique_name: Callable[[str], str],
    clock: Clock,
) -> AsyncIterator[Saga]:
    """The saga on databases of this test's own (import it into a conftest)."""
    async with running_saga(
        make_database=make_database,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        token_issuer=token_issuer,
        unique_name=unique_name,
        clock=clock,
        payments_overrides=payments_overrides,
    ) as running:
        yield running
