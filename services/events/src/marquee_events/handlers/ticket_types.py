"""Ticket types: adding, changing and deleting what an event sells (each is a change to the
event: a new version and snapshot)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from marquee_events.domain import (
    Actor,
    EventDetails,
    EventStatus,
    ExpectedVersion,
    SaleContext,
    TicketTypeSpec,
    check_still_ready,
    check_ticket_type,
    check_ticket_type_change,
)
from marquee_events.handlers.events import event_to_manage
from marquee_events.handlers.shared import apply, changed_fields, record_event_change
from marquee_events.messages import (
    EventAggregate,
    event_details_of,
    seating_summary_of,
    ticket_type_spec_of,
)
from marquee_events.models import Event, TicketType, Venue
from marquee_events.repository import EventRepository, VenueRepository
from marquee_platform.clock import Clock
from marquee_platform.errors import NotFound
from marquee_platform.outbox import Outbox

_TICKET_TYPE_FIELDS = frozenset(field.name for field in fields(TicketTypeSpec))


def _sale_context(
    event: Event, venue: Venue, others: Sequence[TicketType], details: EventDetails | None = None
) -> SaleContext:
    details = details or event_details_of(event)
    return SaleContext(
        ends_at=details.ends_at,
        max_tickets_per_order=details.max_tickets_per_order,
        seating=seating_summary_of(venue),
        sale_starts_at=details.sale_starts_at,
        sale_ends_at=details.sale_ends_at,
        other_ticket_types=[ticket_type_spec_of(other) for other in others],
    )


@dataclass(frozen=True, slots=True)
class TicketTypeOfEvent:
    """A ticket type to change, with its event and all the event's ticket types."""

    event: Event
    ticket_type: TicketType
    ticket_types: Sequence[TicketType]
    """In the order they were added, this one included."""


async def ticket_type_to_manage(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    *,
    actor: Actor,
    action: str,
    expected: ExpectedVersion | None,
    events: EventRepository,
) -> TicketTypeOfEvent:
    """The ticket type, its event locked as :func:`~marquee_events.handlers.event_to_manage`
    locks it (404, 403, 412/409 the same), then 404 if the event has no such ticket type."""
    event = await event_to_manage(
        event_id, actor=actor, action=action, expected=expected, events=events
    )
    ticket_types = await events.ticket_types(event.id)
    for ticket_type in ticket_types:
        if ticket_type.id == ticket_type_id:
            return TicketTypeOfEvent(
                event=event, ticket_type=ticket_type, ticket_types=ticket_types
            )
    raise NotFound(
        f"Event '{event.name}' has no ticket type {ticket_type_id}.",
        code="ticket-type-not-found",
    )


async def add_ticket_type(
    event: Event,
    spec: TicketTypeSpec,
    *,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> tuple[EventAggregate, TicketType]:
    """Add a ticket type to an event (from :func:`~marquee_events.handlers.event_to_manage`);
    allowed until it is cancelled or completed."""
    check_ticket_type_change(EventStatus(event.status), name=spec.name)
    venue = await venues.get(event.venue_id)
    existing = await events.ticket_types(event.id)
    spec = check_ticket_type(spec, _sale_context(event, venue, existing))
    now = clock()
    ticket_type = TicketType(
        id=uuid.uuid4(),
        event_id=event.id,
        created_at=now,
        updated_at=now,
        **{name: getattr(spec, name) for name in _TICKET_TYPE_FIELDS},
    )
    await events.add_ticket_type(ticket_type)
    ticket_types = [*existing, ticket_type]
    await record_event_change(event, venue=venue, ticket_types=ticket_types, outbox=outbox, now=now)
    return EventAggregate(event=event, venue=venue, ticket_types=ticket_types), ticket_type


async def update_ticket_type(
    target: TicketTypeOfEvent,
    changes: Mapping[str, Any],
    *,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> tuple[EventAggregate, TicketType]:
    """Change a ticket type (from :func:`ticket_type_to_manage`); once the sale started,
    not what it sells or its price."""
    event, ticket_type, existing = target.event, target.ticket_type, target.ticket_types
    current = ticket_type_spec_of(ticket_type)
    wanted = replace(
        current, **{name: changes[name] for name in _TICKET_TYPE_FIELDS & changes.keys()}
    )
    check_ticket_type_change(
        EventStatus(event.status),
        name=ticket_type.name,
        changes=changed_fields(current, wanted, _TICKET_TYPE_FIELDS),
    )
    venue = await venues.get(event.venue_id)
    others = [other for other in existing if other.id != ticket_type.id]
    spec = check_ticket_type(wanted, _sale_context(event, venue, others))
    changed = changed_fields(current, spec, _TICKET_TYPE_FIELDS)
    if changed:
        now = clock()
        apply(ticket_type, {name: getattr(spec, name) for name in changed})
        ticket_type.updated_at = now
        await record_event_change(event, venue=venue, ticket_types=existing, outbox=outbox, now=now)
    return EventAggregate(event=event, venue=venue, ticket_types=existing), ticket_type


async def delete_ticket_type(
    target: TicketTypeOfEvent,
    *,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    """Delete a ticket type (from :func:`ticket_type_to_manage`) before its sale starts; a
    public event must keep one."""
    event, ticket_type = target.event, target.ticket_type
    status = EventStatus(event.status)
    check_ticket_type_change(status, name=ticket_type.name, deleting=True)
    venue = await venues.get(event.venue_id)
    remaining = [other for other in target.ticket_types if other.id != ticket_type.id]
    if status is not EventStatus.DRAFT:
        check_still_ready(
            event_details_of(event),
            ticket_types=[ticket_type_spec_of(other) for other in remaining],
            seating=seating_summary_of(venue),
        )
    await events.delete_ticket_type(ticket_type)
    await record_event_change(
        event, venue=venue, ticket_types=remaining, outbox=outbox, now=clock()
    )
