"""Events: creating one, loading one for a reader or its manager, editing it, and moving
it along its lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from marquee_contracts.catalog import EVENT_CANCELLED, EVENT_PUBLISHED
from marquee_events.domain import (
    PUBLIC_STATUSES,
    Actor,
    ChangeStatus,
    CreateEvent,
    EventDetails,
    EventStatus,
    ExpectedVersion,
    Problem,
    authorize_management,
    can_manage,
    check_event_editable,
    check_ready_to_publish,
    check_still_ready,
    check_transition,
    check_version,
    invalid,
    validate_cancellation_reason,
    validate_event_details,
)
from marquee_events.handlers.shared import apply, changed_fields, record_event_change
from marquee_events.messages import (
    EventAggregate,
    event_cancelled_message,
    event_details_of,
    event_published_message,
    seating_summary_of,
    ticket_type_spec_of,
)
from marquee_events.models import Event, Venue
from marquee_events.repository import EventRepository, VenueRepository, event_not_found
from marquee_platform.clock import Clock
from marquee_platform.errors import Conflict, NotFound
from marquee_platform.outbox import Outbox

_EVENT_DETAIL_FIELDS = frozenset(field.name for field in fields(EventDetails))


async def _venue_for_event(
    venue_id: uuid.UUID, *, actor: Actor, venues: VenueRepository, with_seating_map: bool = False
) -> Venue:
    try:
        venue = await venues.get(venue_id, with_seating_map=with_seating_map)
    except NotFound:
        raise invalid(
            [Problem("venue_id", f"there is no venue {venue_id}")], what="event"
        ) from None
    authorize_management(
        actor, owner_id=venue.owner_id, action=f"hold an event at venue '{venue.name}'"
    )
    return venue


async def create_event(
    command: CreateEvent,
    *,
    actor: Actor,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> EventAggregate:
    """A new draft event, owned by the organizer creating it, at one of their venues."""
    authorize_management(actor, owner_id=None, action="create an event")
    details = validate_event_details(command.details)
    venue = await _venue_for_event(command.venue_id, actor=actor, venues=venues)
    now = clock()
    event = Event(
        id=uuid.uuid4(),
        organizer_id=actor.user_id,
        venue_id=venue.id,
        status=EventStatus.DRAFT.value,
        cancellation_reason=None,
        version=0,  # record_event_change makes it 1
        created_at=now,
        updated_at=now,
        published_at=None,
        deleted_at=None,
        **{name: getattr(details, name) for name in _EVENT_DETAIL_FIELDS},
    )
    apply(event, {"tags": details.tags, "image_urls": details.image_urls})
    await record_event_change(event, venue=venue, ticket_types=[], outbox=outbox, now=now)
    await events.add(event)
    return EventAggregate(event=event, venue=venue, ticket_types=[])


# ---- loading ------------------------------------------------------------------------------


async def visible_event(
    event_id: uuid.UUID, *, viewer: Actor | None, events: EventRepository
) -> Event:
    """The event with its venue, for ``viewer``: anyone sees published-or-later events;
    drafts only their organizer and admins (a 404 to everyone else, as if missing)."""
    event = await events.get(event_id)
    if EventStatus(event.status) not in PUBLIC_STATUSES and not can_manage(
        viewer, event.organizer_id
    ):
        raise event_not_found(event_id)
    return event


async def event_to_manage(
    event_id: uuid.UUID,
    *,
    actor: Actor,
    action: str,
    expected: ExpectedVersion | None,
    events: EventRepository,
) -> Event:
    """The event, locked for a change by its organizer or an admin: 404 if there is none,
    403 for anyone else (naming ``action``, as in "edit event"), 412/409 if it is no
    longer at the ``expected`` version."""
    event = await events.get_for_update(event_id)
    authorize_management(actor, owner_id=event.organizer_id, action=f"{action} '{event.name}'")
    check_version(event.version, expected, what=f"event '{event.name}'")
    return event


def status_change_action(status: EventStatus) -> str:
    """How a refused status change is named: "change to published the status of event"."""
    return f"change to {status.value} the status of event"


# ---- changes ------------------------------------------------------------------------------


async def update_event(
    event: Event,
    changes: Mapping[str, Any],
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> EventAggregate:
    """Edit an event (from :func:`event_to_manage`). ``expected`` is a version asked for
    besides the one it was loaded at (the body's ``expected_version``). Final events don't
    change; the venue only while it is a draft; a public event must stay publishable (sale
    window set, ticket types consistent)."""
    check_version(event.version, expected, what=f"event '{event.name}'")
    status = EventStatus(event.status)
    current = event_details_of(event)
    details = validate_event_details(
        replace(current, **{name: changes[name] for name in _EVENT_DETAIL_FIELDS & changes.keys()})
    )
    changed = changed_fields(current, details, _EVENT_DETAIL_FIELDS)
    new_venue_id: uuid.UUID | None = changes.get("venue_id")
    if new_venue_id is not None and new_venue_id != event.venue_id:
        changed.add("venue_id")
    check_event_editable(status, changes=changed)
    if new_venue_id is not None and "venue_id" in changed:
        venue = await _venue_for_event(new_venue_id, actor=actor, venues=venues)
    else:
        venue = await venues.get(event.venue_id)
    ticket_types = await events.ticket_types(event.id)
    if not changed:
        return EventAggregate(event=event, venue=venue, ticket_types=ticket_types)
    if status is not EventStatus.DRAFT:
        check_still_ready(
            details,
            ticket_types=[ticket_type_spec_of(ticket_type) for ticket_type in ticket_types],
            seating=seating_summary_of(venue),
        )
    apply(event, {name: getattr(details, name) for name in changed - {"venue_id"}})
    if "venue_id" in changed:
        event.venue_id = venue.id
    await record_event_change(
        event, venue=venue, ticket_types=ticket_types, outbox=outbox, now=clock()
    )
    return EventAggregate(event=event, venue=venue, ticket_types=ticket_types)


async def delete_event(
    event: Event,
    *,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    """Delete a draft (a public event is cancelled instead, so buyers hear of it).

    The row stays, marked deleted, so its last snapshot can go out with ``deleted`` set
    and a higher version than any before it.
    """
    if event.status != EventStatus.DRAFT:
        raise Conflict(
            f"Only drafts can be deleted; event '{event.name}' is {event.status}. Cancel it "
            "instead.",
            code="event-not-a-draft",
            current_status=event.status,
        )
    now = clock()
    event.deleted_at = now
    await record_event_change(
        event,
        venue=await venues.get(event.venue_id),
        ticket_types=await events.ticket_types(event.id),
        outbox=outbox,
        now=now,
    )


async def change_status(
    event: Event,
    command: ChangeStatus,
    *,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> EventAggregate:
    """Move an event (from :func:`event_to_manage`, with :func:`status_change_action`)
    along its lifecycle (see :func:`marquee_events.domain.check_transition`).

    Publishing checks the event is complete and sends ``events.event-published.v1`` with
    its seats; cancelling sends ``events.event-cancelled.v1``. Both also send the new
    snapshot on ``events.event-changed.v1``.
    """
    requested = command.status
    current = EventStatus(event.status)
    now = clock()
    check_transition(current, requested, now=now, ends_at=event.ends_at)
    publishing = requested is EventStatus.PUBLISHED
    venue = await venues.get(event.venue_id, with_seating_map=publishing)
    ticket_types = await events.ticket_types(event.id)
    if publishing:
        check_ready_to_publish(
            event_details_of(event),
            ticket_types=[ticket_type_spec_of(ticket_type) for ticket_type in ticket_types],
            seating=seating_summary_of(venue),
            now=now,
        )
        event.published_at = now
    if requested is EventStatus.CANCELLED:
        event.cancellation_reason = validate_cancellation_reason(command.reason)
    event.status = requested.value
    await record_event_change(event, venue=venue, ticket_types=ticket_types, outbox=outbox, now=now)
    if publishing:
        await outbox.add(
            EVENT_PUBLISHED.name,
            event_published_message(event, venue, ticket_types),
            key=event.id,
        )
    if requested is EventStatus.CANCELLED:
        await outbox.add(
            EVENT_CANCELLED.name,
            event_cancelled_message(event, previous_status=current, cancelled_at=now),
            key=event.id,
        )
    return EventAggregate(event=event, venue=venue, ticket_types=ticket_types)
