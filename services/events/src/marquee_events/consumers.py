"""Kafka entry points of the events service: what it learns from other services.

- ``booking.ticket-issued.v1`` → ``ticket_holders``: who may review which event.
- ``auth.user-deleted.v1`` → that person's reviews and ticket-holder rows are erased.
"""

from __future__ import annotations

from collections.abc import Mapping

from marquee_contracts.auth import USER_DELETED, UserDeleted
from marquee_contracts.booking import TICKET_ISSUED, TicketIssued
from marquee_events import handlers
from marquee_events.repository import ReviewRepository, TicketHolderRepository
from marquee_events.settings import EventsSettings
from marquee_platform.consumer import ConsumerRunner, Delivery, Handler
from marquee_platform.db import Database, WriteSession

CONSUMER_GROUP = "events"


async def on_ticket_issued(delivery: Delivery, session: WriteSession) -> None:
    assert isinstance(delivery.data, TicketIssued)
    await handlers.record_ticket_holder(delivery.data, holders=TicketHolderRepository(session))


async def on_user_deleted(delivery: Delivery, session: WriteSession) -> None:
    assert isinstance(delivery.data, UserDeleted)
    await handlers.forget_user(
        delivery.data,
        holders=TicketHolderRepository(session),
        reviews=ReviewRepository(session),
    )


HANDLERS: Mapping[str, Handler] = {
    TICKET_ISSUED.name: on_ticket_issued,
    USER_DELETED.name: on_user_deleted,
}
"""Topic → handler."""


def build_consumer(
    settings: EventsSettings,
    *,
    database: Database | None = None,
    group: str = CONSUMER_GROUP,
    topic_names: Mapping[str, str] | None = None,
) -> ConsumerRunner:
    """The runner applying :data:`HANDLERS` as ``group``.

    ``topic_names`` subscribes to a topic under another Kafka topic name (tests sharing
    one broker use per-test names); events are still parsed by their CloudEvent type.
    """
    renamed = topic_names or {}
    return ConsumerRunner(
        group=group,
        bootstrap=settings.kafka_bootstrap,
        database=database
        or Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name="marquee-events-consumer",
        ),
        handlers={renamed.get(topic, topic): handler for topic, handler in HANDLERS.items()},
    )


def create_consumer() -> ConsumerRunner:
    """What ``marquee consume --service events`` runs (ServiceSpec.consumer_factory)."""
    return build_consumer(EventsSettings())
