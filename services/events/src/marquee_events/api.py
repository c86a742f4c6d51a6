"""The events API under ``/api/v1/events``: thin routers over :mod:`marquee_events.handlers`.

Each endpoint runs in one transaction (``marquee_platform.http.router``). Its summary says
who may call it; ownership is enforced in the handlers whatever the gateway checked.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_contracts.catalog import EventChanged
from marquee_events import handlers
from marquee_events.deps import (
    ClockDep,
    CurrentActor,
    IfMatch,
    OptionalActor,
    etag,
    expected_version,
)
from marquee_events.domain import (
    ChangeStatus,
    CreateEvent,
    CreateVenue,
    EventDetails,
    EventStatus,
    PostReview,
    allowed_transitions,
    authorize_management,
    can_manage,
)
from marquee_events.handlers import SOURCE, EventAggregate
from marquee_events.models import Event, Review, TicketType, Venue
from marquee_events.repository import (
    EventRepository,
    ReviewRepository,
    TicketHolderRepository,
    VenueRepository,
)
from marquee_events.schemas import (
    Cancellation,
    EventCreate,
    EventRead,
    EventSummaryRead,
    EventUpdate,
    ReplyCreate,
    ReviewCreate,
    ReviewRead,
    StatusChange,
    TicketTypeCreate,
    TicketTypeRead,
    TicketTypeUpdate,
    VenueCreate,
    VenueRead,
    VenueSummaryRead,
    VenueUpdate,
    event_read,
    event_summary,
)
from marquee_platform.http import ReadSessionDep, WriteSessionDep, router
from marquee_platform.idempotency import IdempotencyKey
from marquee_platform.outbox import Outbox
from marquee_platform.pagination import CursorParamsDep, Page, paginate
from marquee_platform.security import Principal, Role, require_roles

venues = router(prefix="/api/v1/events/venues", tags=["venues"])
events = router(prefix="/api/v1/events", tags=["events"])
ticket_types = router(prefix="/api/v1/events", tags=["ticket types"])
reviews = router(prefix="/api/v1/events", tags=["reviews"])

EVENT_PATH = "/{event_id:uuid}"


def _outbox(session: AsyncSession) -> Outbox:
    return Outbox(session, source=SOURCE)


def _event_headers(response: Response, event: Event) -> None:
    response.headers["ETag"] = etag(event.version)


# ---- venues -------------------------------------------------------------------------------


@venues.post(
    "",
    status_code=201,
    summary="Create a venue with its seating map (organizers and admins)",
    responses={422: {"description": "A field or a part of the seating map is not valid"}},
)
async def create_venue(
    body: VenueCreate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    response: Response,
    _: IdempotencyKey,
) -> VenueRead:
    """The caller owns the venue. Seats plus general-admission capacities must equal
    ``capacity``; every problem is named by its path in the seating map."""
    venue = await handlers.create_venue(
        CreateVenue(details=body.details(), seating=body.seating_map.to_domain()),
        actor=actor,
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    response.headers["ETag"] = etag(venue.version)
    response.headers["Location"] = f"/api/v1/events/venues/{venue.id}"
    return VenueRead.of(venue)


@venues.get("/mine", summary="List your venues, newest first (organizers and admins)")
async def list_my_venues(
    actor: CurrentActor, session: ReadSessionDep, params: CursorParamsDep
) -> Page[VenueSummaryRead]:
    authorize_management(actor, owner_id=None, action="list your venues")
    page = await paginate(
        session,
        VenueRepository.owned_by(actor.user_id),
        order_by=(Venue.created_at, Venue.id),
        params=params,
        descending=True,
    )
    return page.map(VenueSummaryRead.of)


@venues.get("/{venue_id:uuid}", summary="Read a venue and its seating map (anyone)")
async def read_venue(venue_id: uuid.UUID, session: ReadSessionDep, response: Response) -> VenueRead:
    venue = await VenueRepository(session).get(venue_id, with_seating_map=True)
    response.headers["ETag"] = etag(venue.version)
    return VenueRead.of(venue)


@venues.patch(
    "/{venue_id:uuid}",
    summary="Edit a venue or replace its seating map (its organizer, admins)",
    responses={
        409: {"description": "Stale expected_version, or the map is frozen by live events"},
        412: {"description": "If-Match does not match the venue's version"},
    },
)
async def update_venue(
    venue_id: uuid.UUID,
    body: VenueUpdate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
) -> VenueRead:
    """Only the fields sent change. The seating map and capacity can't change while one
    of the venue's events is published, on sale or sold out."""
    venue = await handlers.update_venue(
        venue_id,
        body.changes(),
        actor=actor,
        expected=expected_version(if_match, body.expected_version),
        venues=VenueRepository(session),
        events=EventRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    response.headers["ETag"] = etag(venue.version)
    return VenueRead.of(venue)


# ---- events -------------------------------------------------------------------------------


async def _event_read(
    aggregate: EventAggregate, *, viewer: OptionalActor, session: AsyncSession, clock: ClockDep
) -> EventRead:
    event = aggregate.event
    allowed = None
    if can_manage(viewer, event.organizer_id):
        allowed = allowed_transitions(EventStatus(event.status), now=clock(), ends_at=event.ends_at)
    return event_read(
        aggregate,
        reviews=await ReviewRepository(session).summary(event.id),
        allowed_statuses=allowed,
    )


@events.post("", status_code=201, summary="Create a draft event (organizers and admins)")
async def create_event(
    body: EventCreate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    response: Response,
    _: IdempotencyKey,
) -> EventRead:
    """The caller owns the event, which must be at one of their venues. It stays a draft,
    seen only by them and admins, until published."""
    changes = body.model_dump(exclude={"venue_id"})
    changes["category"] = body.category.value
    changes["tags"] = tuple(body.tags)
    changes["image_urls"] = tuple(body.image_urls)
    aggregate = await handlers.create_event(
        CreateEvent(venue_id=body.venue_id, details=EventDetails(**changes)),
        actor=actor,
        events=EventRepository(session),
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    _event_headers(response, aggregate.event)
    response.headers["Location"] = f"/api/v1/events/{aggregate.event.id}"
    return await _event_read(aggregate, viewer=actor, session=session, clock=clock)


@events.get("", summary="List upcoming public events by start time (anyone)")
async def list_upcoming_events(
    session: ReadSessionDep, params: CursorParamsDep, clock: ClockDep
) -> Page[EventSummaryRead]:
    """Published, on-sale and sold-out events that have not ended yet. For search with
    filters, use the search service."""
    page = await paginate(
        session,
        EventRepository.upcoming(clock()),
        order_by=(Event.starts_at, Event.id),
        params=params,
    )
    return page.map(lambda event: event_summary(EventAggregate(event, event.venue, ())))


@events.get("/mine", summary="List your events, newest first (organizers and admins)")
async def list_my_events(
    actor: CurrentActor,
    session: ReadSessionDep,
    params: CursorParamsDep,
    status: Annotated[EventStatus | None, Query(description="Only events in this status")] = None,
) -> Page[EventSummaryRead]:
    """Every status, drafts included."""
    authorize_management(actor, owner_id=None, action="list your events")
    page = await paginate(
        session,
        EventRepository.managed_by(actor.user_id, status=status.value if status else None),
        order_by=(Event.created_at, Event.id),
        params=params,
        descending=True,
    )
    return page.map(lambda event: event_summary(EventAggregate(event, event.venue, ())))


@events.get(
    "/snapshots",
    summary="Every event as its change snapshot, to rebuild derived data (admins)",
)
async def list_snapshots(
    admin: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
    session: ReadSessionDep,
    params: CursorParamsDep,
) -> Page[EventChanged]:
    """**Who may call:** admins (``marquee search reindex --source http`` runs with an
    admin's token). Every event, drafts, cancelled and deleted ones included, exactly as
    ``events.event-changed.v1`` carries it, oldest first."""
    page = await paginate(
        session, EventRepository.every_event(), order_by=(Event.created_at, Event.id), params=params
    )
    events_on_page: list[Event] = list(page.items)
    ticket_types = await EventRepository(session).ticket_types_by_event(
        [event.id for event in events_on_page]
    )
    return Page(
        items=[
            handlers.event_changed_message(event, event.venue, ticket_types[event.id])
            for event in events_on_page
        ],
        next_cursor=page.next_cursor,
    )


@events.get(
    EVENT_PATH,
    summary="Read an event with its venue and ticket types (anyone; drafts: its organizer, admins)",
)
async def read_event(
    event_id: uuid.UUID,
    viewer: OptionalActor,
    session: ReadSessionDep,
    clock: ClockDep,
    response: Response,
) -> EventRead:
    """A draft is a 404 to everyone but its organizer and admins. The ``ETag`` is the
    event's version: send it back in ``If-Match`` when changing the event."""
    aggregate = await handlers.get_event(event_id, viewer=viewer, events=EventRepository(session))
    _event_headers(response, aggregate.event)
    return await _event_read(aggregate, viewer=viewer, session=session, clock=clock)


@events.patch(
    EVENT_PATH,
    summary="Edit an event (its organizer, admins)",
    responses={
        409: {"description": "Stale expected_version, or a change its status forbids"},
        412: {"description": "If-Match does not match the event's version"},
    },
)
async def update_event(
    event_id: uuid.UUID,
    body: EventUpdate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
) -> EventRead:
    """Only the fields sent change; each change adds one to ``version``. Guard against
    lost updates with ``If-Match: "<version>"`` (412) or ``expected_version`` (409)."""
    aggregate = await handlers.update_event(
        event_id,
        body.changes(),
        actor=actor,
        expected=expected_version(if_match, body.expected_version),
        events=EventRepository(session),
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    _event_headers(response, aggregate.event)
    return await _event_read(aggregate, viewer=actor, session=session, clock=clock)


@events.delete(EVENT_PATH, status_code=204, summary="Delete a draft event (its organizer, admins)")
async def delete_event(
    event_id: uuid.UUID,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
) -> Response:
    """Only drafts; a public event is cancelled instead."""
    await handlers.delete_event(
        event_id,
        actor=actor,
        expected=if_match,
        events=EventRepository(session),
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    return Response(status_code=204)


async def _change_status(
    event_id: uuid.UUID,
    command: ChangeStatus,
    *,
    actor: CurrentActor,
    session: AsyncSession,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
) -> EventRead:
    aggregate = await handlers.change_status(
        event_id,
        command,
        actor=actor,
        expected=if_match,
        events=EventRepository(session),
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    _event_headers(response, aggregate.event)
    return await _event_read(aggregate, viewer=actor, session=session, clock=clock)


_TRANSITION_RESPONSES: dict[int | str, dict[str, str]] = {
    409: {"description": "Not allowed from its current status (the problem lists what is)"},
    412: {"description": "If-Match does not match the event's version"},
}


@events.post(
    f"{EVENT_PATH}/publish",
    summary="Publish a draft event (its organizer, admins)",
    responses=_TRANSITION_RESPONSES,
)
async def publish_event(
    event_id: uuid.UUID,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
) -> EventRead:
    """Needs a sale window, at least one ticket type consistent with the venue, and a
    start in the future. Sends ``events.event-published.v1`` with every seat."""
    return await _change_status(
        event_id,
        ChangeStatus(EventStatus.PUBLISHED),
        actor=actor,
        session=session,
        clock=clock,
        if_match=if_match,
        response=response,
    )


@events.post(
    f"{EVENT_PATH}/cancel",
    summary="Cancel an event (its organizer, admins)",
    responses=_TRANSITION_RESPONSES,
)
async def cancel_event(
    event_id: uuid.UUID,
    body: Cancellation,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
) -> EventRead:
    """From any status but cancelled and completed. Sends ``events.event-cancelled.v1``:
    booking refunds its orders."""
    return await _change_status(
        event_id,
        ChangeStatus(EventStatus.CANCELLED, reason=body.reason),
        actor=actor,
        session=session,
        clock=clock,
        if_match=if_match,
        response=response,
    )


@events.post(
    f"{EVENT_PATH}/status",
    summary="Change an event's status (its organizer, admins)",
    responses=_TRANSITION_RESPONSES,
)
async def change_event_status(
    event_id: uuid.UUID,
    body: StatusChange,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
) -> EventRead:
    """draft → published → on_sale ⇄ sold_out → completed (once it has ended); any
    status but the final ones → cancelled."""
    return await _change_status(
        event_id,
        ChangeStatus(body.status, reason=body.reason),
        actor=actor,
        session=session,
        clock=clock,
        if_match=if_match,
        response=response,
    )


# ---- ticket types -------------------------------------------------------------------------


@ticket_types.get(
    f"{EVENT_PATH}/ticket-types",
    summary="List an event's ticket types (anyone; drafts: its organizer, admins)",
)
async def list_ticket_types(
    event_id: uuid.UUID, viewer: OptionalActor, session: ReadSessionDep, params: CursorParamsDep
) -> Page[TicketTypeRead]:
    await handlers.get_event(event_id, viewer=viewer, events=EventRepository(session))
    page = await paginate(
        session,
        EventRepository.ticket_types_of(event_id),
        order_by=(TicketType.created_at, TicketType.id),
        params=params,
    )
    return page.map(TicketTypeRead.of)


@ticket_types.post(
    f"{EVENT_PATH}/ticket-types",
    status_code=201,
    summary="Add a ticket type to an event (its organizer, admins)",
)
async def add_ticket_type(
    event_id: uuid.UUID,
    body: TicketTypeCreate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
    _: IdempotencyKey,
) -> TicketTypeRead:
    """Allowed until the event is cancelled or completed. The ``ETag`` returned is the
    event's new version."""
    aggregate, ticket_type = await handlers.add_ticket_type(
        event_id,
        body.to_spec(),
        actor=actor,
        expected=if_match,
        events=EventRepository(session),
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    _event_headers(response, aggregate.event)
    return TicketTypeRead.of(ticket_type)


@ticket_types.patch(
    f"{EVENT_PATH}/ticket-types/{{ticket_type_id:uuid}}",
    summary="Change a ticket type (the event's organizer, admins)",
)
async def update_ticket_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    body: TicketTypeUpdate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
    response: Response,
) -> TicketTypeRead:
    """Once the event is on sale, price, currency and what it sells are fixed."""
    aggregate, ticket_type = await handlers.update_ticket_type(
        event_id,
        ticket_type_id,
        body.changes(),
        actor=actor,
        expected=if_match,
        events=EventRepository(session),
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    _event_headers(response, aggregate.event)
    return TicketTypeRead.of(ticket_type)


@ticket_types.delete(
    f"{EVENT_PATH}/ticket-types/{{ticket_type_id:uuid}}",
    status_code=204,
    summary="Delete a ticket type before the sale starts (the event's organizer, admins)",
)
async def delete_ticket_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    if_match: IfMatch,
) -> Response:
    await handlers.delete_ticket_type(
        event_id,
        ticket_type_id,
        actor=actor,
        expected=if_match,
        events=EventRepository(session),
        venues=VenueRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    return Response(status_code=204)


# ---- reviews ------------------------------------------------------------------------------


@reviews.get(f"{EVENT_PATH}/reviews", summary="List an event's reviews, newest first (anyone)")
async def list_reviews(
    event_id: uuid.UUID, viewer: OptionalActor, session: ReadSessionDep, params: CursorParamsDep
) -> Page[ReviewRead]:
    await handlers.get_event(event_id, viewer=viewer, events=EventRepository(session))
    page = await paginate(
        session,
        ReviewRepository.of_event(event_id),
        order_by=(Review.created_at, Review.id),
        params=params,
        descending=True,
    )
    return page.map(ReviewRead.of)


@reviews.post(
    f"{EVENT_PATH}/reviews",
    status_code=201,
    summary="Review an event once after it ended (people who held a ticket to it)",
    responses={
        403: {"description": "The caller held no ticket to the event"},
        409: {"description": "Not ended yet, cancelled, or already reviewed by the caller"},
    },
)
async def post_review(
    event_id: uuid.UUID,
    body: ReviewCreate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    _: IdempotencyKey,
) -> ReviewRead:
    review = await handlers.post_review(
        event_id,
        PostReview(rating=body.rating, comment=body.comment),
        actor=actor,
        events=EventRepository(session),
        reviews=ReviewRepository(session),
        holders=TicketHolderRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    return ReviewRead.of(review)


@reviews.post(
    f"{EVENT_PATH}/reviews/{{review_id:uuid}}/reply",
    summary="Reply once to a review (the event's organizer, admins)",
    responses={409: {"description": "The review already has a reply"}},
)
async def reply_to_review(
    event_id: uuid.UUID,
    review_id: uuid.UUID,
    body: ReplyCreate,
    actor: CurrentActor,
    session: WriteSessionDep,
    clock: ClockDep,
    _: IdempotencyKey,
) -> ReviewRead:
    review = await handlers.reply_to_review(
        event_id,
        review_id,
        body.reply,
        actor=actor,
        events=EventRepository(session),
        reviews=ReviewRepository(session),
        outbox=_outbox(session),
        clock=clock,
    )
    return ReviewRead.of(review)
