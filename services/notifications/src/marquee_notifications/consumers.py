"""Kafka entry points of the notifications service: every topic that should reach someone.

| topic | what it does here |
|---|---|
| ``auth.user-registered.v1`` | keeps the account's address and language |
| ``auth.email-verification-requested.v1`` | *verify-email* to the address to prove |
| ``auth.password-reset-requested.v1`` | *password-reset* to the account's address |
| ``auth.email-changed.v1`` | new address kept; *email-changed* to the previous one |
| ``auth.password-changed.v1`` | *password-changed* |
| ``auth.user-deleted.v1`` | *account-deleted* to the last address, then every trace erased |
| ``events.event-changed.v1`` | the event kept; time or venue moved → *event-changed* to holders |
| ``events.event-cancelled.v1`` | *event-cancelled* to every holder; reminders dropped |
| ``booking.order-created.v1`` | whose order is whose |
| ``booking.ticket-issued.v1`` | who holds what (and a reminder); a transfer → *ticket-received* |
| ``booking.order-confirmed.v1`` | *order-confirmation* with the tickets (PDF) and an ``.ics`` |
| ``booking.order-closed.v1`` | expired → *order-expired*; payment failed → *payment-failed* |
| ``booking.ticket-transferred.v1`` | *ticket-transferred* to the sender |
| ``booking.ticket-cancelled.v1`` | the ticket is no longer held |
| ``payments.refund-succeeded.v1`` | *refund-issued* |
| ``waitroom.admission-granted.v1`` | *waitroom-turn* |
| ``waitroom.waitlist-offered.v1`` | *waitlist-offer* |

Each handler writes the messages it causes in the consumer's transaction (the inbox makes
the event apply once, the messages' unique key makes each message exist once); the
sender sends them after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from marquee_contracts.auth import (
    EMAIL_CHANGED,
    EMAIL_VERIFICATION_REQUESTED,
    PASSWORD_CHANGED,
    PASSWORD_RESET_REQUESTED,
    USER_DELETED,
    USER_REGISTERED,
)
from marquee_contracts.booking import (
    ORDER_CLOSED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    TICKET_CANCELLED,
    TICKET_ISSUED,
    TICKET_TRANSFERRED,
)
from marquee_contracts.catalog import EVENT_CANCELLED, EVENT_CHANGED
from marquee_contracts.payments import REFUND_SUCCEEDED
from marquee_contracts.topics import Topic
from marquee_contracts.waitroom import ADMISSION_GRANTED, WAITLIST_OFFERED
from marquee_notifications.handlers import Handlers
from marquee_notifications.settings import NotificationsSettings
from marquee_platform.clock import Clock, utc_now
from marquee_platform.consumer import ConsumerRunner, Delivery, Handler
from marquee_platform.db import Database, WriteSession

CONSUMER_GROUP = "notifications"


def _routes(handlers: Handlers) -> Mapping[Topic, Callable[..., Awaitable[None]]]:
    return {
        USER_REGISTERED: handlers.user_registered,
        EMAIL_VERIFICATION_REQUESTED: handlers.email_verification_requested,
        PASSWORD_RESET_REQUESTED: handlers.password_reset_requested,
        EMAIL_CHANGED: handlers.email_changed,
        PASSWORD_CHANGED: handlers.password_changed,
        USER_DELETED: handlers.user_deleted,
        EVENT_CHANGED: handlers.event_changed,
        EVENT_CANCELLED: handlers.event_cancelled,
        ORDER_CREATED: handlers.order_created,
        TICKET_ISSUED: handlers.ticket_issued,
        ORDER_CONFIRMED: handlers.order_confirmed,
        ORDER_CLOSED: handlers.order_closed,
        TICKET_TRANSFERRED: handlers.ticket_transferred,
        TICKET_CANCELLED: handlers.ticket_cancelled,
        REFUND_SUCCEEDED: handlers.refund_succeeded,
        ADMISSION_GRANTED: handlers.admission_granted,
        WAITLIST_OFFERED: handlers.waitlist_offered,
    }


CONSUMED_TOPICS = tuple(topic.name for topic in _routes(Handlers(public_url="http://unused")))


def consumer_handlers(handlers: Handlers) -> dict[str, Handler]:
    """Topic name → the runner's handler (the event's data checked against its schema)."""

    def wrap(topic: Topic, handle: Callable[..., Awaitable[None]]) -> Handler:
        async def handler(delivery: Delivery, session: WriteSession) -> None:
            data: Any = delivery.data
            assert isinstance(data, topic.schema), f"{topic.name} carries {topic.schema}"
            await handle(data, delivery.event, session)

        return handler

    return {topic.name: wrap(topic, handle) for topic, handle in _routes(handlers).items()}


def build_consumer(
    settings: NotificationsSettings,
    *,
    database: Database | None = None,
    group: str = CONSUMER_GROUP,
    topic_names: Mapping[str, str] | None = None,
    clock: Clock = utc_now,
) -> ConsumerRunner:
    """The runner as ``group``; ``topic_names`` renames topics (tests on a shared broker)."""
    renamed = topic_names or {}
    handlers = Handlers(
        public_url=settings.public_url,
        reminder_hours_before=settings.reminder_hours_before,
        clock=clock,
    )
    return ConsumerRunner(
        group=group,
        bootstrap=settings.kafka_bootstrap,
        database=database
        or Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name="marquee-notifications-consumer",
        ),
        handlers={
            renamed.get(topic, topic): handler
            for topic, handler in consumer_handlers(handlers).items()
        },
    )


def create_consumer() -> ConsumerRunner:
    """What ``marquee consume --service notifications`` runs (ServiceSpec.consumer_factory)."""
    return build_consumer(NotificationsSettings())
