"""What each consumed event means for someone's mailbox.

Every handler runs inside the consumer's transaction, beside the inbox row of its event:
it updates the copies notifications keeps (recipients, events, orders, holdings) and
inserts the messages the event causes. A message's ``dedupe_key`` is
``<cause event id>/<recipient>/<kind>`` and is unique, so an event applied twice (a
redelivery past the inbox's retention, a replay from the dead-letter topic) makes no
second message. Nothing here talks to SMTP: the sender (:mod:`marquee_notifications.sender`)
sends what is due, after the commit.

A message to an account names the account, not an address: the sender reads the address
at send time, so an address that changed in between is the one written to, and a deleted
account gets nothing. A message to an address alone (a verification link for a new
address, the notice to a previous one) carries it.

Fan-outs (an event changed or cancelled, reminders) are one ``INSERT … SELECT`` over the
event's holders: 50,000 holders are 50,000 rows in one statement, in the ``bulk`` lane.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from marquee_contracts import CloudEvent
from marquee_contracts.auth import (
    EmailChanged,
    EmailVerificationRequested,
    PasswordChanged,
    PasswordResetRequested,
    UserDeleted,
    UserRegistered,
)
from marquee_contracts.booking import (
    OrderClosed,
    OrderConfirmed,
    OrderCreated,
    TicketCancelled,
    TicketIssued,
    TicketTransferred,
)
from marquee_contracts.catalog import EventCancelled, EventChanged
from marquee_contracts.payments import RefundSucceeded
from marquee_contracts.waitroom import AdmissionGranted, WaitlistOffered
from marquee_notifications.kinds import REMINDER, TRANSACTIONAL_KINDS
from marquee_notifications.models import (
    EventSettings,
    Holding,
    Message,
    NotificationEvent,
    NotificationOrder,
    Preferences,
    Recipient,
)
from marquee_platform.clock import Clock, utc_now
from marquee_platform.db import WriteSession

logger = logging.getLogger(__name__)


class Links:
    """The public URLs messages point to (the web client's pages, behind the gateway)."""

    def __init__(self, public_url: str) -> None:
        self.base = public_url.rstrip("/")

    def verify_email(self, token: str) -> str:
        return f"{self.base}/verify-email?token={token}"

    def reset_password(self, token: str) -> str:
        return f"{self.base}/reset-password?token={token}"

    def event(self, event_id: uuid.UUID) -> str:
        return f"{self.base}/events/{event_id}"

    def orders(self) -> str:
        return f"{self.base}/me/orders"

    def tickets(self) -> str:
        return f"{self.base}/me/tickets"


# --- messages ------------------------------------------------------------------------------


async def enqueue(
    session: WriteSession,
    *,
    cause: CloudEvent,
    kind: str,
    context: Mapping[str, Any],
    user_id: str | None = None,
    to_address: str | None = None,
    event_id: uuid.UUID | None = None,
    lane: str = "direct",
    due: datetime | None = None,
    dedupe_cause: str | None = None,
    status: str = "pending",
    reason: str | None = None,
    now: datetime,
) -> bool:
    """Insert one message unless the same (cause, recipient, kind) exists; True if new."""
    recipient = user_id or to_address
    assert recipient, "a message needs an account or an address"
    inserted = await session.execute(
        insert(Message)
        .values(
            id=uuid.uuid4(),
            dedupe_key=f"{dedupe_cause or cause.id}/{recipient}/{kind}",
            kind=kind,
            lane=lane,
            transactional=kind in TRANSACTIONAL_KINDS,
            user_id=user_id,
            to_address=to_address,
            event_id=event_id,
            cause_type=cause.type,
            cause_id=cause.id,
            context=dict(context),
            status=status,
            last_error=reason,
            next_attempt_at=due or now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Message.dedupe_key])
        .returning(Message.id)
    )
    return inserted.first() is not None


_FAN_OUT = text(
    """
    INSERT INTO messages (id, dedupe_key, kind, lane, transactional, user_id, event_id,
                          cause_type, cause_id, context, status, attempts, next_attempt_at,
                          created_at)
    SELECT gen_random_uuid(), :dedupe_cause || '/' || holders.user_id || '/' || :kind,
           :kind, 'bulk', :transactional, holders.user_id, :event_id, :cause_type,
           :cause_id, CAST(:context AS jsonb) || jsonb_build_object('ticket_count', holders.n),
           'pending', 0, :due, :now
      FROM (SELECT user_id, count(*) AS n FROM holdings
             WHERE event_id = :event_id AND active
               AND (CAST(:only_user AS text) IS NULL OR user_id = CAST(:only_user AS text))
             GROUP BY user_id) AS holders
    ON CONFLICT (dedupe_key) DO NOTHING
    """
).bindparams(bindparam("context", type_=JSONB))


async def fan_out(
    session: WriteSession,
    *,
    cause: CloudEvent,
    kind: str,
    event_id: uuid.UUID,
    context: Mapping[str, Any],
    due: datetime | None = None,
    dedupe_cause: str | None = None,
    only_user: str | None = None,
    now: datetime,
) -> int:
    """One message to every holder of an active ticket of the event; how many were new."""
    result = await session.execute(
        _FAN_OUT,
        {
            "dedupe_cause": dedupe_cause or cause.id,
            "kind": kind,
            "transactional": kind in TRANSACTIONAL_KINDS,
            "event_id": event_id,
            "cause_type": cause.type,
            "cause_id": cause.id,
            "context": dict(context),
            "due": due or now,
            "now": now,
            "only_user": only_user,
        },
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        logger.info("%s for event %s: %d message(s) queued", kind, event_id, count)
    return count


async def skip_pending(session: WriteSession, reason: str, *conditions: Any) -> int:
    result = await session.execute(
        update(Message)
        .where(Message.status == "pending", *conditions)
        .values(status="skipped", last_error=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- what notifications keeps ----------------------------------------------------------------


def event_context(event: NotificationEvent) -> dict[str, Any]:
    return {
        "event_id": str(event.event_id),
        "name": event.name,
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat(),
        "time_zone": event.time_zone,
        "venue": {key: event.venue.get(key) for key in ("name", "address", "city", "country")},
    }


async def known_event(session: WriteSession, event_id: uuid.UUID) -> NotificationEvent | None:
    return await session.get(NotificationEvent, event_id)


async def recipient_email(session: WriteSession, user_id: str) -> str | None:
    recipient = await session.get(Recipient, user_id)
    return None if recipient is None or recipient.deleted else recipient.email


def ticket_context(holding: Holding, event: NotificationEvent | None) -> dict[str, Any]:
    type_name = None
    if event is not None and holding.ticket_type_id is not None:
        type_name = event.ticket_types.get(str(holding.ticket_type_id))
    return {
        "ticket_id": str(holding.ticket_id),
        "barcode": holding.barcode,
        "label": f"Seat {holding.seat_id}" if holding.seat_id else "General admission",
        "ticket_type": type_name or "Ticket",
    }


async def reminder_hours(
    session: WriteSession, event_id: uuid.UUID, default_hours: int
) -> int | None:
    settings = await session.get(EventSettings, event_id)
    return default_hours if settings is None else settings.reminder_hours_before


def reminder_due(starts_at: datetime, hours: int) -> datetime:
    return starts_at - timedelta(hours=hours)


def reminder_cause(event: NotificationEvent) -> str:
    """Reminders are one per holder per event start: a moved event gets new ones."""
    return f"reminder:{event.event_id}@{event.starts_at.isoformat()}"


class Handlers:
    """The handlers, with what they need to write links and schedule reminders."""

    def __init__(
        self, *, public_url: str, reminder_hours_before: int = 24, clock: Clock = utc_now
    ) -> None:
        self.links = Links(public_url)
        self.reminder_hours_before = reminder_hours_before
        self.clock = clock

    # --- auth -------------------------------------------------------------------------------

    async def user_registered(
        self, data: UserRegistered, cause: CloudEvent, session: WriteSession
    ) -> None:
        await session.execute(
            insert(Recipient)
            .values(user_id=str(data.user_id), email=data.email, locale=data.locale)
            .on_conflict_do_update(
                index_elements=[Recipient.user_id],
                set_={"email": data.email, "locale": data.locale},
                where=Recipient.deleted.is_(False),
            )
        )

    async def email_verification_requested(
        self, data: EmailVerificationRequested, cause: CloudEvent, session: WriteSession
    ) -> None:
        if await self._deleted(session, str(data.user_id)):
            return
        await enqueue(
            session,
            now=self.clock(),
            cause=cause,
            kind="verify-email",
            user_id=None,
            to_address=data.email,
            context={
                "link": self.links.verify_email(data.token),
                "expires_at": data.expires_at.isoformat(),
                "reason": data.reason,
                "account": str(data.user_id),
            },
        )

    async def password_reset_requested(
        self, data: PasswordResetRequested, cause: CloudEvent, session: WriteSession
    ) -> None:
        if await self._deleted(session, str(data.user_id)):
            return
        await enqueue(
            session,
            now=self.clock(),
            cause=cause,
            kind="password-reset",
            to_address=data.email,
            context={
                "link": self.links.reset_password(data.token),
                "expires_at": data.expires_at.isoformat(),
                "account": str(data.user_id),
            },
        )

    async def email_changed(
        self, data: EmailChanged, cause: CloudEvent, session: WriteSession
    ) -> None:
        await session.execute(
            update(Recipient)
            .where(Recipient.user_id == str(data.user_id), Recipient.deleted.is_(False))
            .values(email=data.email)
        )
        if data.previous_email and data.previous_email != data.email:
            await enqueue(
                session,
                now=self.clock(),
                cause=cause,
                kind="email-changed",
                to_address=data.previous_email,
                context={"new_email": data.email, "changed_at": data.changed_at.isoformat()},
            )

    async def password_changed(
        self, data: PasswordChanged, cause: CloudEvent, session: WriteSession
    ) -> None:
        await enqueue(
            session,
            now=self.clock(),
            cause=cause,
            kind="password-changed",
            user_id=str(data.user_id),
            context={"changed_at": data.changed_at.isoformat(), "reason": data.reason},
        )

    async def user_deleted(
        self, data: UserDeleted, cause: CloudEvent, session: WriteSession
    ) -> None:
        """Tell the person at the address they had, then keep nothing that names them."""
        user_id = str(data.user_id)
        recipient = await session.get(Recipient, user_id, with_for_update=True)
        email = recipient.email if recipient is not None else None
        await skip_pending(session, "the account was deleted", Message.user_id == user_id)
        await session.execute(
            update(Message).where(Message.user_id == user_id).values(to_address=None, context={})
        )
        await session.execute(
            insert(Recipient)
            .values(user_id=user_id, email=None, locale=None, deleted=True)
            .on_conflict_do_update(
                index_elements=[Recipient.user_id],
                set_={"email": None, "locale": None, "deleted": True},
            )
        )
        preferences = await session.get(Preferences, user_id)
        if preferences is not None:
            await session.delete(preferences)
        if email:
            await enqueue(
                session,
                now=self.clock(),
                cause=cause,
                kind="account-deleted",
                to_address=email,
                context={"deleted_at": self.clock().isoformat(), "erase_after_send": True},
            )

    # --- events -----------------------------------------------------------------------------

    async def event_changed(
        self, data: EventChanged, cause: CloudEvent, session: WriteSession
    ) -> None:
        previous = await session.get(NotificationEvent, data.event_id, with_for_update=True)
        if previous is not None and previous.version >= data.version:
            return  # an older snapshot, late
        before = None if previous is None else _what_is_shown(previous)
        venue = {
            "id": str(data.venue.id),
            "name": data.venue.name,
            "address": data.venue.address,
            "city": data.venue.city,
            "country": data.venue.country,
        }
        values: dict[str, Any] = {
            "version": data.version,
            "organizer_id": data.organizer_id,
            "name": data.name,
            "status": data.status,
            "starts_at": data.starts_at,
            "ends_at": data.ends_at,
            "time_zone": data.time_zone,
            "venue": venue,
            "ticket_types": {str(t.ticket_type_id): t.name for t in data.ticket_types},
        }
        await session.execute(
            insert(NotificationEvent)
            .values(event_id=data.event_id, **values)
            .on_conflict_do_update(index_elements=[NotificationEvent.event_id], set_=values)
        )
        event = await session.get(NotificationEvent, data.event_id, populate_existing=True)
        assert event is not None
        if before is None or data.deleted or data.status == "cancelled":
            return
        changes = _changes(before, _what_is_shown(event))
        if not changes:
            return
        await fan_out(
            session,
            now=self.clock(),
            cause=cause,
            kind="event-changed",
            event_id=event.event_id,
            context={"event": event_context(event), "changes": changes},
        )
        if any(change["field"] == "starts_at" for change in changes):
            await self._reschedule_reminders(session, event, cause)

    async def event_cancelled(
        self, data: EventCancelled, cause: CloudEvent, session: WriteSession
    ) -> None:
        event = await session.get(NotificationEvent, data.event_id)
        context_event = (
            event_context(event)
            if event is not None
            else {
                "event_id": str(data.event_id),
                "name": data.name,
                "starts_at": data.starts_at.isoformat(),
                "ends_at": data.ends_at.isoformat(),
                "time_zone": "UTC",
                "venue": {"name": "", "address": "", "city": "", "country": ""},
            }
        )
        await skip_pending(
            session,
            "the event was cancelled",
            Message.event_id == data.event_id,
            Message.kind == REMINDER,
        )
        await fan_out(
            session,
            now=self.clock(),
            cause=cause,
            kind="event-cancelled",
            event_id=data.event_id,
            context={"event": context_event, "reason": data.reason, "refund": "automatic"},
        )

    async def _reschedule_reminders(
        self, session: WriteSession, event: NotificationEvent, cause: CloudEvent
    ) -> None:
        await skip_pending(
            session,
            "the event moved: a reminder for its new time replaces this one",
            Message.event_id == event.event_id,
            Message.kind == REMINDER,
        )
        await self._schedule_reminders(session, event, cause)

    async def _schedule_reminders(
        self,
        session: WriteSession,
        event: NotificationEvent,
        cause: CloudEvent,
        *,
        only_user: str | None = None,
    ) -> None:
        hours = await reminder_hours(session, event.event_id, self.reminder_hours_before)
        if hours is None:
            return
        due = reminder_due(event.starts_at, hours)
        if due <= self.clock():
            return  # too late to remind: the confirmation was the reminder
        await fan_out(
            session,
            now=self.clock(),
            cause=cause,
            kind=REMINDER,
            event_id=event.event_id,
            context={"event": event_context(event), "tickets_url": self.links.tickets()},
            due=due,
            dedupe_cause=reminder_cause(event),
            only_user=only_user,
        )

    async def reschedule_for_settings(
        self, session: WriteSession, event_id: uuid.UUID, hours: int | None
    ) -> int:
        """The organizer changed the reminder time: move the reminders not sent yet."""
        event = await session.get(NotificationEvent, event_id)
        if event is None:
            return 0
        pending = (Message.event_id == event_id, Message.kind == REMINDER)
        if hours is None:
            return await skip_pending(session, "the organizer turned reminders off", *pending)
        result = await session.execute(
            update(Message)
            .where(Message.status == "pending", *pending)
            .values(next_attempt_at=reminder_due(event.starts_at, hours))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- booking ----------------------------------------------------------------------------

    async def order_created(
        self, data: OrderCreated, cause: CloudEvent, session: WriteSession
    ) -> None:
        await session.execute(
            insert(NotificationOrder)
            .values(
                order_id=data.order_id,
                event_id=data.event_id,
                user_id=data.user_id,
                total_minor=data.total_minor,
                currency=data.currency,
            )
            .on_conflict_do_nothing(index_elements=[NotificationOrder.order_id])
        )

    async def ticket_issued(
        self, data: TicketIssued, cause: CloudEvent, session: WriteSession
    ) -> None:
        values = {
            "event_id": data.event_id,
            "order_id": data.order_id,
            "user_id": data.user_id,
            "seat_id": data.seat_id,
            "ticket_type_id": data.ticket_type_id,
            "barcode": data.barcode,
            "issued_at": data.issued_at,
        }
        await session.execute(
            insert(Holding)
            .values(ticket_id=data.ticket_id, **values)
            .on_conflict_do_nothing(index_elements=[Holding.ticket_id])
        )
        event = await known_event(session, data.event_id)
        if data.replaces_ticket_id is not None:
            old = await session.get(Holding, data.replaces_ticket_id, with_for_update=True)
            if old is not None:
                old.active = False
            holding = await session.get(Holding, data.ticket_id)
            assert holding is not None
            await self._ticket_received(session, cause, holding, event, old)
        if event is not None and event.status != "cancelled":
            await self._schedule_reminders(session, event, cause, only_user=data.user_id)

    async def _ticket_received(
        self,
        session: WriteSession,
        cause: CloudEvent,
        holding: Holding,
        event: NotificationEvent | None,
        old: Holding | None,
    ) -> None:
        sender = None if old is None else await recipient_email(session, old.user_id)
        await self._about_event(
            session,
            cause,
            kind="ticket-received",
            user_id=holding.user_id,
            event=event,
            context=lambda event: {
                "from_name_or_email": sender or "another Marquee user",
                "tickets": [ticket_context(holding, event)],
            },
        )

    async def order_confirmed(
        self, data: OrderConfirmed, cause: CloudEvent, session: WriteSession
    ) -> None:
        await self._about_event(
            session,
            cause,
            kind="order-confirmation",
            user_id=data.user_id,
            event=await known_event(session, data.event_id),
            context=lambda event: {
                "order_id": str(data.order_id),
                "total_minor": data.total_minor,
                "currency": data.currency,
                # Their barcodes are read when it is sent: booking's ticket-issued (another
                # topic) may reach us after this.
                "ticket_ids": [str(ticket_id) for ticket_id in data.ticket_ids],
                "orders_url": self.links.orders(),
            },
        )

    async def order_closed(
        self, data: OrderClosed, cause: CloudEvent, session: WriteSession
    ) -> None:
        kind = {"expired": "order-expired", "payment-failed": "payment-failed"}.get(data.reason)
        if kind is None:
            return  # cancelled by the buyer (they know), or the event's cancellation mail says it
        context: dict[str, Any] = {"order_id": str(data.order_id)}
        if kind == "payment-failed":
            context["reason"] = None
        await self._about_event(
            session,
            cause,
            kind=kind,
            user_id=data.user_id,
            event=await known_event(session, data.event_id),
            context=lambda event: context,
        )

    async def ticket_transferred(
        self, data: TicketTransferred, cause: CloudEvent, session: WriteSession
    ) -> None:
        old = await session.get(Holding, data.old_ticket_id)
        to_email = await recipient_email(session, data.to_user_id)
        await self._about_event(
            session,
            cause,
            kind="ticket-transferred",
            user_id=data.from_user_id,
            event=await known_event(session, data.event_id),
            context=lambda event: {
                "to_email": to_email,
                "ticket_label": ticket_context(old, event)["label"] if old else "Your ticket",
            },
        )

    async def ticket_cancelled(
        self, data: TicketCancelled, cause: CloudEvent, session: WriteSession
    ) -> None:
        await session.execute(
            update(Holding).where(Holding.ticket_id == data.ticket_id).values(active=False)
        )

    # --- payments ---------------------------------------------------------------------------

    async def refund_succeeded(
        self, data: RefundSucceeded, cause: CloudEvent, session: WriteSession
    ) -> None:
        order = await session.get(NotificationOrder, data.order_id)
        if order is None:
            # booking.order-created (another topic) names the buyer; it is published long
            # before any refund, so this is a delivery on its way: retrying waits for it,
            # and after the retries the dead-letter topic keeps it to replay.
            raise LookupError(f"refund for order {data.order_id}: its order is not known yet")
        event = await known_event(session, order.event_id)
        await enqueue(
            session,
            now=self.clock(),
            cause=cause,
            kind="refund-issued",
            user_id=order.user_id,
            event_id=order.event_id,
            context={
                "order_id": str(data.order_id),
                "event": None if event is None else event_context(event),
                "amount_minor": data.amount_minor,
                "currency": data.currency,
            },
        )

    # --- waitroom ---------------------------------------------------------------------------

    async def admission_granted(
        self, data: AdmissionGranted, cause: CloudEvent, session: WriteSession
    ) -> None:
        await self._about_event(
            session,
            cause,
            kind="waitroom-turn",
            user_id=data.user_id,
            event=await known_event(session, data.event_id),
            context=lambda event: {
                "expires_at": data.expires_at.isoformat(),
                "link": self.links.event(event.event_id),
            },
        )

    async def waitlist_offered(
        self, data: WaitlistOffered, cause: CloudEvent, session: WriteSession
    ) -> None:
        await self._about_event(
            session,
            cause,
            kind="waitlist-offer",
            user_id=data.user_id,
            event=await known_event(session, data.event_id),
            context=lambda event: {
                "quantity": data.quantity,
                "ticket_type": event.ticket_types.get(str(data.ticket_type_id)),
                "expires_at": data.expires_at.isoformat(),
                "link": self.links.event(event.event_id),
            },
        )

    # --- helpers ----------------------------------------------------------------------------

    async def _deleted(self, session: WriteSession, user_id: str) -> bool:
        recipient = await session.get(Recipient, user_id)
        return recipient is not None and recipient.deleted

    async def _about_event(
        self,
        session: WriteSession,
        cause: CloudEvent,
        *,
        kind: str,
        user_id: str,
        event: NotificationEvent | None,
        context: Callable[[NotificationEvent], Mapping[str, Any]],
    ) -> None:
        """One message to ``user_id`` about ``event``: its context is the event's and what
        ``context`` adds; an event notifications never heard of is recorded as skipped."""
        if event is None:
            await self._skip_unknown_event(session, cause, kind, user_id)
            return
        await enqueue(
            session,
            now=self.clock(),
            cause=cause,
            kind=kind,
            user_id=user_id,
            event_id=event.event_id,
            context={"event": event_context(event), **context(event)},
        )

    async def _skip_unknown_event(
        self, session: WriteSession, cause: CloudEvent, kind: str, user_id: str
    ) -> None:
        """Recorded, visible to admins, never retried in a loop: the catalog snapshot that
        would name the event never reached notifications."""
        logger.warning("%s for %s: the event of %s is unknown here", kind, user_id, cause.id)
        await enqueue(
            session,
            now=self.clock(),
            cause=cause,
            kind=kind,
            user_id=user_id,
            context={},
            status="skipped",
            reason="the event is unknown to notifications (no catalog snapshot applied)",
        )


def _what_is_shown(event: NotificationEvent) -> dict[str, Any]:
    return {
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "venue": {key: event.venue.get(key) for key in ("id", "name", "address", "city")},
    }


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for field in ("starts_at", "ends_at"):
        if before[field] != after[field]:
            changes.append(
                {
                    "field": field,
                    "before": before[field].isoformat(),
                    "after": after[field].isoformat(),
                }
            )
    if before["venue"] != after["venue"]:
        changes.append({"field": "venue", "before": before["venue"], "after": after["venue"]})
    return changes
