"""One async function per command or consumed event. Dependencies are keyword-only; the
transaction belongs to the caller (the request or the consumed message), never to these.

Every change to an event bumps its ``version`` and writes its full snapshot to
``events.event-changed.v1`` through the outbox, in the same transaction; the event row is
locked first (``SELECT … FOR UPDATE``), so versions and snapshots of one event are
produced in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from marquee_contracts.auth import UserDeleted
from marquee_contracts.booking import TicketIssued
from marquee_contracts.catalog import (
    EVENT_CANCELLED,
    EVENT_CHANGED,
    EVENT_PUBLISHED,
    REVIEW_POSTED,
    REVIEW_REPLIED,
    VENUE_CHANGED,
    EventCancelled,
    EventChanged,
    EventPublished,
    EventVenue,
    GeneralAdmissionCapacity,
    PriceRange,
    PublishedSeating,
    ReviewPosted,
    ReviewReplied,
    TicketTypeSnapshot,
    VenueChanged,
)
from marquee_events.domain import (
    LIVE_STATUSES,
    PUBLIC_STATUSES,
    Actor,
    ChangeStatus,
    CreateEvent,
    CreateVenue,
    EventDetails,
    EventStatus,
    ExpectedVersion,
    PostReview,
    Problem,
    SaleContext,
    SeatingMap,
    SeatingSummary,
    TicketTypeSpec,
    VenueDetails,
    authorize_management,
    can_manage,
    check_event_editable,
    check_ready_to_publish,
    check_review_allowed,
    check_seating_replaceable,
    check_still_ready,
    check_ticket_type,
    check_ticket_type_change,
    check_transition,
    check_version,
    invalid,
    price_range,
    seat_ids_by_price_category,
    seating_map_from_document,
    seating_map_to_document,
    validate_cancellation_reason,
    validate_event_details,
    validate_reply,
    validate_review,
    validate_seating_map,
    validate_venue_details,
)
from marquee_events.models import Event, Review, TicketType, Venue
from marquee_events.repository import (
    EventRepository,
    ReviewRepository,
    TicketHolderRepository,
    VenueRepository,
    event_not_found,
)
from marquee_platform.errors import Conflict, NotFound
from marquee_platform.outbox import Outbox

Clock = Callable[[], datetime]

SOURCE = "/marquee/events"
"""The CloudEvent ``source`` of everything this service publishes."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EventAggregate:
    """An event with what its readers need: its venue and ticket types."""

    event: Event
    venue: Venue
    ticket_types: Sequence[TicketType]


# ---- from rows to domain values -----------------------------------------------------------


def venue_details_of(venue: Venue) -> VenueDetails:
    return VenueDetails(
        name=venue.name,
        address=venue.address,
        city=venue.city,
        country=venue.country,
        latitude=venue.latitude,
        longitude=venue.longitude,
        time_zone=venue.time_zone,
        capacity=venue.capacity,
    )


def seating_summary_of(venue: Venue) -> SeatingSummary:
    return SeatingSummary(
        seated_seats=venue.seated_seats,
        general_admission={area["name"]: area["capacity"] for area in venue.general_admission},
        price_categories=tuple(venue.price_categories),
    )


def event_details_of(event: Event) -> EventDetails:
    return EventDetails(
        name=event.name,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        category=event.category,
        description=event.description,
        tags=tuple(event.tags),
        image_urls=tuple(event.image_urls),
        sale_starts_at=event.sale_starts_at,
        sale_ends_at=event.sale_ends_at,
        high_demand=event.high_demand,
        max_tickets_per_order=event.max_tickets_per_order,
    )


def ticket_type_spec_of(ticket_type: TicketType) -> TicketTypeSpec:
    return TicketTypeSpec(
        name=ticket_type.name,
        price_minor=ticket_type.price_minor,
        currency=ticket_type.currency,
        price_category=ticket_type.price_category,
        general_admission_area=ticket_type.general_admission_area,
        quantity=ticket_type.quantity,
        sale_starts_at=ticket_type.sale_starts_at,
        sale_ends_at=ticket_type.sale_ends_at,
        min_per_order=ticket_type.min_per_order,
        max_per_order=ticket_type.max_per_order,
    )


_EVENT_DETAIL_FIELDS = frozenset(field.name for field in fields(EventDetails))
_VENUE_DETAIL_FIELDS = frozenset(field.name for field in fields(VenueDetails))
_TICKET_TYPE_FIELDS = frozenset(field.name for field in fields(TicketTypeSpec))
_SNAPSHOT_VENUE_FIELDS = frozenset(
    {"name", "address", "city", "country", "latitude", "longitude", "time_zone"}
)
"""The venue's fields copied into every event snapshot: a change re-sends its events."""


def _apply(target: Any, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        setattr(target, name, list(value) if isinstance(value, tuple) else value)


def _changed_fields(old: Any, new: Any, names: Iterable[str]) -> set[str]:
    return {name for name in names if getattr(old, name) != getattr(new, name)}


# ---- messages -----------------------------------------------------------------------------


def ticket_type_snapshot(ticket_type: TicketType) -> TicketTypeSnapshot:
    spec = ticket_type_spec_of(ticket_type)
    return TicketTypeSnapshot(
        ticket_type_id=ticket_type.id,
        name=spec.name,
        price_minor=spec.price_minor,
        currency=spec.currency,
        kind=spec.kind.value,
        price_category=spec.price_category,
        general_admission_area=spec.general_admission_area,
        quantity=spec.quantity,
        sale_starts_at=spec.sale_starts_at,
        sale_ends_at=spec.sale_ends_at,
        min_per_order=spec.min_per_order,
        max_per_order=spec.max_per_order,
    )


def event_changed_message(
    event: Event, venue: Venue, ticket_types: Sequence[TicketType]
) -> EventChanged:
    prices = price_range(ticket_type_spec_of(ticket_type) for ticket_type in ticket_types)
    return EventChanged(
        event_id=event.id,
        version=event.version,
        deleted=event.deleted_at is not None,
        public=EventStatus(event.status) in PUBLIC_STATUSES,
        status=event.status,
        organizer_id=event.organizer_id,
        name=event.name,
        description=event.description,
        category=event.category,
        tags=list(event.tags),
        image_urls=list(event.image_urls),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        time_zone=venue.time_zone,
        venue=EventVenue(
            id=venue.id,
            name=venue.name,
            address=venue.address,
            city=venue.city,
            country=venue.country,
            latitude=venue.latitude,
            longitude=venue.longitude,
            time_zone=venue.time_zone,
        ),
        price_range=(
            PriceRange(min_minor=prices[0], max_minor=prices[1], currency=prices[2])
            if prices
            else None
        ),
        ticket_types=[ticket_type_snapshot(ticket_type) for ticket_type in ticket_types],
        sale_starts_at=event.sale_starts_at,
        sale_ends_at=event.sale_ends_at,
        high_demand=event.high_demand,
        max_tickets_per_order=event.max_tickets_per_order,
        cancellation_reason=event.cancellation_reason,
        created_at=event.created_at,
        updated_at=event.updated_at,
        published_at=event.published_at,
    )


def _general_admission(venue: Venue) -> list[GeneralAdmissionCapacity]:
    return [
        GeneralAdmissionCapacity(name=area["name"], capacity=area["capacity"])
        for area in venue.general_admission
    ]


def venue_changed_message(venue: Venue) -> VenueChanged:
    return VenueChanged(
        venue_id=venue.id,
        version=venue.version,
        owner_id=venue.owner_id,
        name=venue.name,
        address=venue.address,
        city=venue.city,
        country=venue.country,
        latitude=venue.latitude,
        longitude=venue.longitude,
        time_zone=venue.time_zone,
        capacity=venue.capacity,
        seated_seats=venue.seated_seats,
        price_categories=list(venue.price_categories),
        general_admission=_general_admission(venue),
        updated_at=venue.updated_at,
    )


def event_published_message(
    event: Event, venue: Venue, ticket_types: Sequence[TicketType]
) -> EventPublished:
    """Needs the venue loaded with its seating map."""
    assert event.sale_starts_at is not None
    assert event.sale_ends_at is not None
    assert event.published_at is not None
    return EventPublished(
        event_id=event.id,
        version=event.version,
        organizer_id=event.organizer_id,
        name=event.name,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        time_zone=venue.time_zone,
        venue_id=venue.id,
        sale_starts_at=event.sale_starts_at,
        sale_ends_at=event.sale_ends_at,
        high_demand=event.high_demand,
        max_tickets_per_order=event.max_tickets_per_order,
        ticket_types=[ticket_type_snapshot(ticket_type) for ticket_type in ticket_types],
        seating=PublishedSeating(
            capacity=venue.capacity,
            seat_ids_by_price_category=seat_ids_by_price_category(
                seating_map_from_document(venue.seating_map)
            ),
            general_admission=_general_admission(venue),
        ),
        published_at=event.published_at,
    )


async def _event_changed(
    event: Event,
    *,
    venue: Venue,
    ticket_types: Sequence[TicketType],
    outbox: Outbox,
    now: datetime,
) -> None:
    """Bump the event's version and queue its new snapshot: after *every* change."""
    event.version += 1
    event.updated_at = now
    await outbox.add(
        EVENT_CHANGED.name, event_changed_message(event, venue, ticket_types), key=event.id
    )


# ---- venues -------------------------------------------------------------------------------


def _seating_columns(seating: SeatingMap, summary: SeatingSummary) -> dict[str, Any]:
    return {
        "seating_map": seating_map_to_document(seating),
        "seated_seats": summary.seated_seats,
        "price_categories": list(summary.price_categories),
        "general_admission": [
            {"name": name, "capacity": capacity}
            for name, capacity in summary.general_admission.items()
        ],
    }


async def create_venue(
    command: CreateVenue,
    *,
    actor: Actor,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> Venue:
    authorize_management(actor, owner_id=None, action="create a venue")
    details = validate_venue_details(command.details)
    summary = validate_seating_map(command.seating, capacity=details.capacity)
    now = clock()
    venue = Venue(
        id=uuid.uuid4(),
        owner_id=actor.user_id,
        version=1,
        created_at=now,
        updated_at=now,
        **{name: getattr(details, name) for name in _VENUE_DETAIL_FIELDS},
        **_seating_columns(command.seating, summary),
    )
    await venues.add(venue)
    await outbox.add(VENUE_CHANGED.name, venue_changed_message(venue), key=venue.id)
    return venue


async def update_venue(
    venue_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    venues: VenueRepository,
    events: EventRepository,
    outbox: Outbox,
    clock: Clock,
) -> Venue:
    """Change a venue's details and/or seating map.

    The seating map (and so the capacity, which must match it) is frozen while one of
    the venue's events is live. A change to what event snapshots show of the venue (name,
    place, time zone) re-sends every one of its events with a new version.
    """
    venue = await venues.get_for_update(venue_id)
    authorize_management(actor, owner_id=venue.owner_id, action=f"edit venue '{venue.name}'")
    check_version(venue.version, expected, what=f"venue '{venue.name}'")
    current = venue_details_of(venue)
    details = validate_venue_details(
        replace(current, **{name: changes[name] for name in _VENUE_DETAIL_FIELDS & changes.keys()})
    )
    new_seating: SeatingMap | None = changes.get("seating_map")
    seating_columns: dict[str, Any] = {}
    if new_seating is not None or details.capacity != current.capacity:
        seating = new_seating or seating_map_from_document(venue.seating_map)
        summary = validate_seating_map(seating, capacity=details.capacity)
        seating_columns = _seating_columns(seating, summary)
        if seating_columns["seating_map"] == venue.seating_map:
            seating_columns = {}
    changed = _changed_fields(current, details, _VENUE_DETAIL_FIELDS)
    if not changed and not seating_columns:
        return venue  # nothing to do: no new version, nothing sent

    events_at_venue = await events.lock_events_at_venue(venue.id)
    if seating_columns or "capacity" in changed:
        check_seating_replaceable(
            [event.name for event in events_at_venue if EventStatus(event.status) in LIVE_STATUSES]
        )
    now = clock()
    _apply(venue, {name: getattr(details, name) for name in changed})
    _apply(venue, seating_columns)
    venue.version += 1
    venue.updated_at = now
    await outbox.add(VENUE_CHANGED.name, venue_changed_message(venue), key=venue.id)
    if changed & _SNAPSHOT_VENUE_FIELDS:
        for event in events_at_venue:
            await _event_changed(
                event,
                venue=venue,
                ticket_types=await events.ticket_types(event.id),
                outbox=outbox,
                now=now,
            )
    return venue


# ---- events -------------------------------------------------------------------------------


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
        version=0,  # _event_changed makes it 1
        created_at=now,
        updated_at=now,
        published_at=None,
        deleted_at=None,
        **{name: getattr(details, name) for name in _EVENT_DETAIL_FIELDS},
    )
    _apply(event, {"tags": details.tags, "image_urls": details.image_urls})
    await _event_changed(event, venue=venue, ticket_types=[], outbox=outbox, now=now)
    await events.add(event)
    return EventAggregate(event=event, venue=venue, ticket_types=[])


async def get_event(
    event_id: uuid.UUID, *, viewer: Actor | None, events: EventRepository
) -> EventAggregate:
    """Anyone sees published-or-later events; drafts only their organizer and admins."""
    event = await events.get(event_id)
    if EventStatus(event.status) not in PUBLIC_STATUSES and not can_manage(
        viewer, event.organizer_id
    ):
        raise event_not_found(event_id)
    return EventAggregate(
        event=event, venue=event.venue, ticket_types=await events.ticket_types(event.id)
    )


async def _load_for_change(
    event_id: uuid.UUID,
    *,
    actor: Actor,
    action: str,
    expected: ExpectedVersion | None,
    events: EventRepository,
) -> Event:
    event = await events.get_for_update(event_id)
    authorize_management(actor, owner_id=event.organizer_id, action=f"{action} '{event.name}'")
    check_version(event.version, expected, what=f"event '{event.name}'")
    return event


async def update_event(
    event_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> EventAggregate:
    """Edit an event. Final events don't change; the venue only while it is a draft; a
    public event must stay publishable (sale window set, ticket types consistent)."""
    event = await _load_for_change(
        event_id, actor=actor, action="edit event", expected=expected, events=events
    )
    status = EventStatus(event.status)
    current = event_details_of(event)
    details = validate_event_details(
        replace(current, **{name: changes[name] for name in _EVENT_DETAIL_FIELDS & changes.keys()})
    )
    changed = _changed_fields(current, details, _EVENT_DETAIL_FIELDS)
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
    _apply(event, {name: getattr(details, name) for name in changed - {"venue_id"}})
    if "venue_id" in changed:
        event.venue_id = venue.id
    await _event_changed(event, venue=venue, ticket_types=ticket_types, outbox=outbox, now=clock())
    return EventAggregate(event=event, venue=venue, ticket_types=ticket_types)


async def delete_event(
    event_id: uuid.UUID,
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    """Delete a draft (a public event is cancelled instead, so buyers hear of it).

    The row stays, marked deleted, so its last snapshot can go out with ``deleted`` set
    and a higher version than any before it.
    """
    event = await _load_for_change(
        event_id, actor=actor, action="delete event", expected=expected, events=events
    )
    if event.status != EventStatus.DRAFT:
        raise Conflict(
            f"Only drafts can be deleted; event '{event.name}' is {event.status}. Cancel it "
            "instead.",
            code="event-not-a-draft",
            current_status=event.status,
        )
    now = clock()
    event.deleted_at = now
    await _event_changed(
        event,
        venue=await venues.get(event.venue_id),
        ticket_types=await events.ticket_types(event.id),
        outbox=outbox,
        now=now,
    )


async def change_status(
    event_id: uuid.UUID,
    command: ChangeStatus,
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> EventAggregate:
    """Move an event along its lifecycle (see :func:`domain.check_transition`).

    Publishing checks the event is complete and sends ``events.event-published.v1`` with
    its seats; cancelling sends ``events.event-cancelled.v1``. Both also send the new
    snapshot on ``events.event-changed.v1``.
    """
    requested = command.status
    event = await _load_for_change(
        event_id,
        actor=actor,
        action=f"change to {requested.value} the status of event",
        expected=expected,
        events=events,
    )
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
    await _event_changed(event, venue=venue, ticket_types=ticket_types, outbox=outbox, now=now)
    if publishing:
        await outbox.add(
            EVENT_PUBLISHED.name,
            event_published_message(event, venue, ticket_types),
            key=event.id,
        )
    if requested is EventStatus.CANCELLED:
        await outbox.add(
            EVENT_CANCELLED.name,
            EventCancelled(
                event_id=event.id,
                version=event.version,
                organizer_id=event.organizer_id,
                name=event.name,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                venue_id=event.venue_id,
                previous_status=current.value,
                reason=event.cancellation_reason,
                cancelled_at=now,
            ),
            key=event.id,
        )
    return EventAggregate(event=event, venue=venue, ticket_types=ticket_types)


# ---- ticket types -------------------------------------------------------------------------


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


async def add_ticket_type(
    event_id: uuid.UUID,
    spec: TicketTypeSpec,
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> tuple[EventAggregate, TicketType]:
    event = await _load_for_change(
        event_id,
        actor=actor,
        action="add a ticket type to event",
        expected=expected,
        events=events,
    )
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
    await _event_changed(event, venue=venue, ticket_types=ticket_types, outbox=outbox, now=now)
    return EventAggregate(event=event, venue=venue, ticket_types=ticket_types), ticket_type


def _find_ticket_type(
    ticket_types: Sequence[TicketType], ticket_type_id: uuid.UUID, event: Event
) -> TicketType:
    for ticket_type in ticket_types:
        if ticket_type.id == ticket_type_id:
            return ticket_type
    raise NotFound(
        f"Event '{event.name}' has no ticket type {ticket_type_id}.",
        code="ticket-type-not-found",
    )


async def update_ticket_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> tuple[EventAggregate, TicketType]:
    event = await _load_for_change(
        event_id,
        actor=actor,
        action="change a ticket type of event",
        expected=expected,
        events=events,
    )
    existing = await events.ticket_types(event.id)
    ticket_type = _find_ticket_type(existing, ticket_type_id, event)
    current = ticket_type_spec_of(ticket_type)
    wanted = replace(
        current, **{name: changes[name] for name in _TICKET_TYPE_FIELDS & changes.keys()}
    )
    check_ticket_type_change(
        EventStatus(event.status),
        name=ticket_type.name,
        changes=_changed_fields(current, wanted, _TICKET_TYPE_FIELDS),
    )
    venue = await venues.get(event.venue_id)
    others = [other for other in existing if other.id != ticket_type.id]
    spec = check_ticket_type(wanted, _sale_context(event, venue, others))
    changed = _changed_fields(current, spec, _TICKET_TYPE_FIELDS)
    if changed:
        now = clock()
        _apply(ticket_type, {name: getattr(spec, name) for name in changed})
        ticket_type.updated_at = now
        await _event_changed(event, venue=venue, ticket_types=existing, outbox=outbox, now=now)
    return EventAggregate(event=event, venue=venue, ticket_types=existing), ticket_type


async def delete_ticket_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    events: EventRepository,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    event = await _load_for_change(
        event_id,
        actor=actor,
        action="delete a ticket type of event",
        expected=expected,
        events=events,
    )
    existing = await events.ticket_types(event.id)
    ticket_type = _find_ticket_type(existing, ticket_type_id, event)
    status = EventStatus(event.status)
    check_ticket_type_change(status, name=ticket_type.name, deleting=True)
    venue = await venues.get(event.venue_id)
    remaining = [other for other in existing if other.id != ticket_type.id]
    if status is not EventStatus.DRAFT:
        check_still_ready(
            event_details_of(event),
            ticket_types=[ticket_type_spec_of(other) for other in remaining],
            seating=seating_summary_of(venue),
        )
    await events.delete_ticket_type(ticket_type)
    await _event_changed(event, venue=venue, ticket_types=remaining, outbox=outbox, now=clock())


# ---- reviews ------------------------------------------------------------------------------


async def post_review(
    event_id: uuid.UUID,
    command: PostReview,
    *,
    actor: Actor,
    events: EventRepository,
    reviews: ReviewRepository,
    holders: TicketHolderRepository,
    outbox: Outbox,
    clock: Clock,
) -> Review:
    """A ticket holder's one review of an event that has ended."""
    event = await events.get(event_id)
    status = EventStatus(event.status)
    if status not in PUBLIC_STATUSES:
        raise event_not_found(event_id)
    now = clock()
    check_review_allowed(
        status=status,
        ends_at=event.ends_at,
        now=now,
        is_holder=await holders.is_holder(event.id, actor.user_id),
    )
    comment = validate_review(command.rating, command.comment)
    review = await reviews.add_once(
        {
            "id": uuid.uuid4(),
            "event_id": event.id,
            "author_id": actor.user_id,
            "rating": command.rating,
            "comment": comment,
            "created_at": now,
        }
    )
    if review is None:
        earlier = await reviews.by_author(event.id, actor.user_id)
        when = f" on {earlier.created_at.date().isoformat()}" if earlier else ""
        raise Conflict(
            f"You already reviewed '{event.name}'{when}; each ticket holder reviews an event once.",
            code="already-reviewed",
            review_id=str(earlier.id) if earlier else None,
        )
    await outbox.add(
        REVIEW_POSTED.name,
        ReviewPosted(
            review_id=review.id,
            event_id=event.id,
            organizer_id=event.organizer_id,
            author_id=review.author_id,
            rating=review.rating,
            comment=review.comment,
            created_at=review.created_at,
        ),
        key=event.id,
    )
    return review


async def reply_to_review(
    event_id: uuid.UUID,
    review_id: uuid.UUID,
    reply: str,
    *,
    actor: Actor,
    events: EventRepository,
    reviews: ReviewRepository,
    outbox: Outbox,
    clock: Clock,
) -> Review:
    """The organizer's one reply to a review (admins may reply for them)."""
    event = await events.get(event_id)
    authorize_management(
        actor, owner_id=event.organizer_id, action=f"reply to reviews of event '{event.name}'"
    )
    text = validate_reply(reply)
    review = await reviews.get(review_id, event_id=event.id, for_update=True)
    if review.reply is not None:
        assert review.replied_at is not None
        raise Conflict(
            f"This review was already replied to on {review.replied_at.date().isoformat()}; "
            "a review gets one reply.",
            code="already-replied",
        )
    now = clock()
    review.reply = text
    review.replied_by = actor.user_id
    review.replied_at = now
    await outbox.add(
        REVIEW_REPLIED.name,
        ReviewReplied(
            review_id=review.id,
            event_id=event.id,
            author_id=review.author_id,
            replied_by=actor.user_id,
            reply=text,
            replied_at=now,
        ),
        key=event.id,
    )
    return review


# ---- consumed events ----------------------------------------------------------------------


async def record_ticket_holder(ticket: TicketIssued, *, holders: TicketHolderRepository) -> None:
    """Remember who holds a ticket to which event (they may review it once it has ended)."""
    await holders.record(
        event_id=ticket.event_id,
        user_id=ticket.user_id,
        ticket_id=ticket.ticket_id,
        issued_at=ticket.issued_at,
    )


async def forget_user(
    deleted: UserDeleted, *, holders: TicketHolderRepository, reviews: ReviewRepository
) -> None:
    """A person deleted their account: erase their reviews (rating and words are theirs)
    and that they held tickets. Events and venues an organizer created stay: tickets were
    sold for them; admins manage them from then on."""
    user_id = str(deleted.user_id)
    await holders.forget_user(user_id)
    await reviews.delete_by_author(user_id)
