"""The notifications API under ``/api/v1/notifications``. Each summary says who may call.

- ``GET/PUT …/preferences``: a person's choices (reminders, announcements);
- ``GET/POST …/unsubscribe?token=``: the signed one-click link of RFC 8058 (a GET shows a
  page with a button, because link scanners fetch links; the POST unsubscribes);
- ``GET/PUT …/events/{event_id}/settings``: the reminder time of an event (its organizer);
- ``GET …/admin/messages``, ``POST …/admin/messages/{id}/retry``: failed and other
  messages, for admins;
- ``GET …/users/me/messages``: what was sent to me, and when.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from marquee_notifications.handlers import Handlers
from marquee_notifications.models import EventSettings, Message, NotificationEvent, Preferences
from marquee_notifications.settings import NotificationsSettings
from marquee_notifications.unsubscribe import UnsubscribeLinks
from marquee_platform.deps import ClockDep
from marquee_platform.errors import Conflict, NotFound
from marquee_platform.http import ReadSessionDep, WriteSessionDep, router
from marquee_platform.pagination import CursorParamsDep, Page, paginate
from marquee_platform.security import CurrentUser, Principal, Role, require_roles

notifications = router(prefix="/api/v1/notifications", tags=["notifications"])

AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


def _settings(request: Request) -> NotificationsSettings:
    settings: NotificationsSettings = request.app.state.settings
    return settings


def _unsubscribe_links(request: Request) -> UnsubscribeLinks:
    links: UnsubscribeLinks = request.app.state.unsubscribe_links
    return links


def _handlers(request: Request) -> Handlers:
    handlers: Handlers = request.app.state.handlers
    return handlers


SettingsDep = Annotated[NotificationsSettings, Depends(_settings)]
UnsubscribeDep = Annotated[UnsubscribeLinks, Depends(_unsubscribe_links)]
HandlersDep = Annotated[Handlers, Depends(_handlers)]


# --- preferences ---------------------------------------------------------------------------


class PreferencesRead(BaseModel):
    reminders: bool = Field(description="A reminder before each event you hold tickets for")
    announcements: bool = Field(description="News from Marquee and organizers you bought from")
    transactional: Literal["always"] = Field(
        default="always",
        description="Account, order, ticket and event-change messages always go",
    )


class PreferencesWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reminders: bool | None = None
    announcements: bool | None = None


@notifications.get(
    "/preferences", summary="Your message preferences (self)", response_model=PreferencesRead
)
async def get_preferences(user: CurrentUser, session: ReadSessionDep) -> PreferencesRead:
    chosen = await session.get(Preferences, user.user_id)
    if chosen is None:
        return PreferencesRead(reminders=True, announcements=True)
    return PreferencesRead(reminders=chosen.reminders, announcements=chosen.announcements)


@notifications.put(
    "/preferences", summary="Change your message preferences (self)", response_model=PreferencesRead
)
async def put_preferences(
    body: PreferencesWrite, user: CurrentUser, session: WriteSessionDep, clock: ClockDep
) -> PreferencesRead:
    """Only the fields given change. Transactional messages cannot be turned off."""
    changes = body.model_dump(exclude_none=True)
    row = await _set_preferences(session, user.user_id, changes, clock())
    return PreferencesRead(reminders=row.reminders, announcements=row.announcements)


async def _set_preferences(
    session: WriteSessionDep, user_id: str, changes: dict[str, Any], now: datetime
) -> Preferences:
    statement = insert(Preferences).values(user_id=user_id, updated_at=now, **changes)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Preferences.user_id], set_={"updated_at": now, **changes}
        )
    )
    row = await session.get(Preferences, user_id, populate_existing=True)
    assert row is not None
    return row


# --- one-click unsubscribe (RFC 8058) ------------------------------------------------------


class Unsubscribed(BaseModel):
    unsubscribed: str = Field(description="The preference now off", examples=["reminders"])


@notifications.get(
    "/unsubscribe",
    summary="The unsubscribe page of a message's link (anyone with the link)",
    response_class=HTMLResponse,
)
async def unsubscribe_page(
    token: Annotated[str, Query(max_length=1000)], links: UnsubscribeDep
) -> HTMLResponse:
    """Shows a button; does not unsubscribe by itself (mail scanners fetch every link)."""
    _, preference = links.verify(token)
    safe_token = html.escape(token, quote=True)
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>"
        f"<p>Stop receiving <b>{html.escape(preference)}</b> from Marquee?</p>"
        f'<form method=post action="?token={safe_token}">'
        '<input type=hidden name="List-Unsubscribe" value="One-Click">'
        "<button type=submit>Unsubscribe</button></form>"
    )


@notifications.post(
    "/unsubscribe",
    summary="Unsubscribe in one click (anyone with the link: RFC 8058)",
    response_model=Unsubscribed,
)
async def unsubscribe(
    token: Annotated[str, Query(max_length=1000)],
    links: UnsubscribeDep,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Unsubscribed:
    """A mail client POSTs ``List-Unsubscribe=One-Click`` here (the body is not needed: the
    token says who and what). Idempotent: unsubscribing twice is the same as once."""
    user_id, preference = links.verify(token)
    await _set_preferences(session, user_id, {preference: False}, clock())
    return Unsubscribed(unsubscribed=preference)


# --- an event's settings -------------------------------------------------------------------


class EventSettingsRead(BaseModel):
    event_id: uuid.UUID
    reminder_hours_before: int | None = Field(
        description="Hours before the start a reminder goes to each holder; null: none"
    )


class EventSettingsWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reminder_hours_before: int | None = Field(ge=1, le=720)


async def _organized_event(
    session: ReadSessionDep | WriteSessionDep, event_id: uuid.UUID, user: Principal
) -> NotificationEvent:
    event = await session.get(NotificationEvent, event_id)
    if event is None or not (user.is_admin or event.organizer_id == user.user_id):
        # Someone else's event is as unknown as one that does not exist.
        raise NotFound(f"No event {event_id} of yours is known to notifications.")
    return event


@notifications.get(
    "/events/{event_id}/settings",
    summary="An event's message settings (its organizer, admins)",
    response_model=EventSettingsRead,
)
async def get_event_settings(
    event_id: uuid.UUID, user: CurrentUser, session: ReadSessionDep, settings: SettingsDep
) -> EventSettingsRead:
    await _organized_event(session, event_id, user)
    chosen = await session.get(EventSettings, event_id)
    hours = settings.reminder_hours_before if chosen is None else chosen.reminder_hours_before
    return EventSettingsRead(event_id=event_id, reminder_hours_before=hours)


@notifications.put(
    "/events/{event_id}/settings",
    summary="Change an event's reminder time (its organizer, admins)",
    response_model=EventSettingsRead,
)
async def put_event_settings(
    event_id: uuid.UUID,
    body: EventSettingsWrite,
    user: CurrentUser,
    session: WriteSessionDep,
    handlers: HandlersDep,
    clock: ClockDep,
) -> EventSettingsRead:
    """Reminders not sent yet move to the new time (null turns them off)."""
    await _organized_event(session, event_id, user)
    values = {
        "reminder_hours_before": body.reminder_hours_before,
        "updated_by": user.user_id,
        "updated_at": clock(),
    }
    await session.execute(
        insert(EventSettings)
        .values(event_id=event_id, **values)
        .on_conflict_do_update(index_elements=[EventSettings.event_id], set_=values)
    )
    await handlers.reschedule_for_settings(session, event_id, body.reminder_hours_before)
    return EventSettingsRead(event_id=event_id, reminder_hours_before=body.reminder_hours_before)


# --- messages ------------------------------------------------------------------------------


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    lane: str
    transactional: bool
    status: str
    attempts: int
    last_error: str | None
    event_id: uuid.UUID | None
    cause_type: str
    cause_id: str
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None


class MessageAdminRead(MessageRead):
    user_id: str | None
    to_address: str | None


MessageStatus = Literal["pending", "sending", "sent", "failed", "skipped"]


@notifications.get(
    "/users/me/messages",
    summary="The messages sent or due to you, newest first (self)",
    response_model=Page[MessageRead],
)
async def my_messages(
    user: CurrentUser, session: ReadSessionDep, params: CursorParamsDep
) -> Page[MessageRead]:
    statement = select(Message).where(Message.user_id == user.user_id)
    page = await paginate(
        session,
        statement,
        order_by=(Message.created_at, Message.id),
        params=params,
        descending=True,
    )
    return page.map(MessageRead.model_validate)


@notifications.get(
    "/admin/messages",
    summary="Messages by status, e.g. the failed ones, newest first (admins)",
    response_model=Page[MessageAdminRead],
)
async def admin_messages(
    _admin: AdminUser,
    session: ReadSessionDep,
    params: CursorParamsDep,
    status: MessageStatus | None = None,
    kind: Annotated[str | None, Query(max_length=60)] = None,
    event_id: uuid.UUID | None = None,
) -> Page[MessageAdminRead]:
    statement = select(Message)
    if status is not None:
        statement = statement.where(Message.status == status)
    if kind is not None:
        statement = statement.where(Message.kind == kind)
    if event_id is not None:
        statement = statement.where(Message.event_id == event_id)
    page = await paginate(
        session,
        statement,
        order_by=(Message.created_at, Message.id),
        params=params,
        descending=True,
    )
    return page.map(MessageAdminRead.model_validate)


@notifications.post(
    "/admin/messages/{message_id}/retry",
    summary="Send a failed message again (admins)",
    response_model=MessageAdminRead,
)
async def retry_message(
    message_id: uuid.UUID, _admin: AdminUser, session: WriteSessionDep, clock: ClockDep
) -> MessageAdminRead:
    """Only a ``failed`` message: it is due at once with its attempts counted from zero."""
    message = await session.get(Message, message_id, with_for_update=True)
    if message is None:
        raise NotFound(f"No message {message_id}.")
    if message.status != "failed":
        raise Conflict(
            f"Message {message_id} is {message.status}; only a failed message can be retried.",
            code="not-failed",
        )
    await session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(status="pending", attempts=0, next_attempt_at=clock())
    )
    refreshed = await session.get(Message, message_id, populate_existing=True)
    return MessageAdminRead.model_validate(refreshed)
