"""Kafka entry points of the booking service: the saga's other half.

Each message is applied in one transaction with its inbox row (the platform's consumer
runner), so a redelivery changes nothing; each handler also checks the order's status
under a row lock, so messages arriving late or out of order are harmless.

- ``events.event-published.v1`` / ``event-changed.v1`` → the prices it sells from;
  ``event-cancelled.v1`` → every paid order refunded;
- ``auth.user-registered.v1`` / ``email-changed.v1`` / ``user-deleted.v1`` → who a ticket
  can be transferred to (by email);
- ``inventory.hold-expired.v1`` / ``hold-released.v1`` → an unpaid order closes;
- ``inventory.sale-confirmed.v1`` → tickets; ``sale-rejected.v1`` → a full refund;
- ``payments.payment-succeeded.v1`` → ``booking.order-paid.v1``; ``payment-failed.v1`` →
  the order closes; ``refund-succeeded.v1`` / ``refund-failed.v1`` → the refund settles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from marquee_booking import handlers
from marquee_booking.deps import BookingHandlerDependencies
from marquee_booking.repository import (
    CheckInRepository,
    EventRepository,
    OrderRepository,
    PeopleRepository,
    PromoRepository,
    RefundRepository,
    TicketRepository,
)
from marquee_booking.settings import BookingSettings
from marquee_contracts.auth import (
    EMAIL_CHANGED,
    USER_DELETED,
    USER_REGISTERED,
    EmailChanged,
    UserDeleted,
    UserRegistered,
)
from marquee_contracts.catalog import (
    EVENT_CANCELLED,
    EVENT_CHANGED,
    EVENT_PUBLISHED,
    EventCancelled,
    EventChanged,
    EventPublished,
)
from marquee_contracts.inventory import (
    HOLD_EXPIRED,
    HOLD_RELEASED,
    SALE_CONFIRMED,
    SALE_REJECTED,
    HoldEnded,
    SaleConfirmed,
    SaleRejected,
)
from marquee_contracts.payments import (
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    PaymentFailed,
    PaymentSucceeded,
    RefundFailed,
    RefundSucceeded,
)
from marquee_platform.clock import Clock, utc_now
from marquee_platform.consumer import ConsumerRunner, Delivery, Handler
from marquee_platform.db import Database, WriteSession
from marquee_platform.deps import outbox_source
from marquee_platform.outbox import Outbox

CONSUMER_GROUP = "booking"


class BookingConsumers:
    """The handlers, each given the repositories of the message's transaction."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    def _dependencies(self, session: WriteSession) -> BookingHandlerDependencies:
        return BookingHandlerDependencies(
            events=EventRepository(session),
            orders=OrderRepository(session),
            tickets=TicketRepository(session),
            promos=PromoRepository(session),
            refunds=RefundRepository(session),
            checkins=CheckInRepository(session),
            people=PeopleRepository(session),
            outbox=Outbox(session, source=outbox_source("booking")),
            clock=self.clock,
        )

    def _bind(self, handler: Callable[..., Awaitable[Any]], schema: type, **fixed: Any) -> Handler:
        """The handler for one topic: given the message's data and, as the API's endpoints
        are, the repositories of its transaction that it names (HandlerDependencies)."""

        async def apply(delivery: Delivery, session: WriteSession) -> None:
            assert isinstance(delivery.data, schema)
            await self._dependencies(session)(handler, delivery.data, **fixed)

        return apply

    async def _user_registered(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, UserRegistered)
        await handlers.remember_person(
            str(delivery.data.user_id), delivery.data.email, people=PeopleRepository(session)
        )

    async def _email_changed(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, EmailChanged)
        await handlers.remember_person(
            str(delivery.data.user_id), delivery.data.email, people=PeopleRepository(session)
        )

    async def _user_deleted(self, delivery: Delivery, session: WriteSession) -> None:
        assert isinstance(delivery.data, UserDeleted)
        await handlers.forget_person(str(delivery.data.user_id), people=PeopleRepository(session))

    def handlers(self) -> Mapping[str, Handler]:
        return {
            EVENT_PUBLISHED.name: self._bind(handlers.apply_event_snapshot, EventPublished),
            EVENT_CHANGED.name: self._bind(handlers.apply_event_snapshot, EventChanged),
            EVENT_CANCELLED.name: self._bind(handlers.apply_event_cancelled, EventCancelled),
            USER_REGISTERED.name: self._user_registered,
            EMAIL_CHANGED.name: self._email_changed,
            USER_DELETED.name: self._user_deleted,
            HOLD_EXPIRED.name: self._bind(handlers.on_hold_ended, HoldEnded, expired=True),
            HOLD_RELEASED.name: self._bind(handlers.on_hold_ended, HoldEnded, expired=False),
            SALE_CONFIRMED.name: self._bind(handlers.on_sale_confirmed, SaleConfirmed),
            SALE_REJECTED.name: self._bind(handlers.on_sale_rejected, SaleRejected),
            PAYMENT_SUCCEEDED.name: self._bind(handlers.on_payment_succeeded, PaymentSucceeded),
            PAYMENT_FAILED.name: self._bind(handlers.on_payment_failed, PaymentFailed),
            REFUND_SUCCEEDED.name: self._bind(handlers.on_refund_succeeded, RefundSucceeded),
            REFUND_FAILED.name: self._bind(handlers.on_refund_failed, RefundFailed),
        }


CONSUMED_TOPICS = tuple(BookingConsumers().handlers())


def build_consumer(
    settings: BookingSettings,
    *,
    database: Database | None = None,
    group: str = CONSUMER_GROUP,
    topic_names: Mapping[str, str] | None = None,
    clock: Clock = utc_now,
) -> ConsumerRunner:
    """The runner as ``group``; ``topic_names`` renames topics (tests on a shared broker)."""
    renamed = topic_names or {}
    return ConsumerRunner(
        group=group,
        bootstrap=settings.kafka_bootstrap,
        database=database
        or Database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name="marquee-booking-consumer",
        ),
        handlers={
            renamed.get(topic, topic): handler
            for topic, handler in BookingConsumers(clock).handlers().items()
        },
    )


def create_consumer() -> ConsumerRunner:
    """What ``marquee consume --service booking`` runs (ServiceSpec.consumer_factory)."""
    return build_consumer(BookingSettings())
