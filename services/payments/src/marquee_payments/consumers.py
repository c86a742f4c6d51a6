"""Kafka entry points of the payments service.

- ``booking.order-created.v1`` → the order's amount, fees and deadline (what may be
  charged);
- ``booking.order-closed.v1`` → its PaymentIntent is cancelled;
- ``booking.order-confirmed.v1`` → noted (reconciliation compares it with the ledger);
- ``booking.refund-requested.v1`` → the money goes back at the provider.

A provider that cannot be reached raises, and the runner retries the message later (its
inbox row is not written, so it applies in full next time); every provider call carries
an idempotency key, so a retry never refunds or cancels twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from marquee_contracts.booking import (
    ORDER_CLOSED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    REFUND_REQUESTED,
    OrderClosed,
    OrderConfirmed,
    OrderCreated,
    RefundRequested,
)
from marquee_payments import handlers
from marquee_payments.providers.base import PaymentProvider
from marquee_payments.providers_factory import build_provider
from marquee_payments.settings import PaymentsSettings
from marquee_platform.clock import Clock, utc_now
from marquee_platform.consumer import ConsumerRunner, Delivery, Handler
from marquee_platform.db import Database, WriteSession
from marquee_platform.deps import outbox_source
from marquee_platform.outbox import Outbox

CONSUMER_GROUP = "payments"


class PaymentsConsumers:
    def __init__(self, provider: PaymentProvider, clock: Clock = utc_now) -> None:
        self.provider = provider
        self.clock = clock

    async def on_order_created(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, OrderCreated)
        await handlers.remember_order(delivery.data, session=session, clock=self.clock)

    async def on_order_confirmed(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, OrderConfirmed)
        await handlers.order_confirmed(delivery.data, session=session, clock=self.clock)

    async def on_order_closed(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, OrderClosed)
        await handlers.order_closed(
            delivery.data, session=session, provider=self.provider, clock=self.clock
        )

    async def on_refund_requested(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, RefundRequested)
        await handlers.refund(
            delivery.data,
            session=session,
            provider=self.provider,
            outbox=Outbox(session, source=outbox_source("payments")),
            clock=self.clock,
        )

    def handlers(self) -> Mapping[str, Handler]:
        return {
            ORDER_CREATED.name: self.on_order_created,
            ORDER_CONFIRMED.name: self.on_order_confirmed,
            ORDER_CLOSED.name: self.on_order_closed,
            REFUND_REQUESTED.name: self.on_refund_requested,
        }


CONSUMED_TOPICS = (
    ORDER_CREATED.name,
    ORDER_CONFIRMED.name,
    ORDER_CLOSED.name,
    REFUND_REQUESTED.name,
)


def build_consumer(
    settings: PaymentsSettings,
    *,
    database: Database | None = None,
    provider: PaymentProvider | None = None,
    group: str = CONSUMER_GROUP,
    topic_names: Mapping[str, str] | None = None,
    clock: Clock = utc_now,
) -> ConsumerRunner:
    database = database or Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        application_name="marquee-payments-consumer",
    )
    bound = PaymentsConsumers(provider or build_provider(settings, database), clock)
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
    """What ``marquee consume --service payments`` runs (ServiceSpec.consumer_factory)."""
    return build_consumer(PaymentsSettings())
