"""The events API under ``/api/v1/events``: thin routers over :mod:`marquee_events.handlers`.

Each endpoint runs in one transaction (``marquee_platform.http.router``) and reads parse →
handler → map: what it acts on comes loaded and authorized from a loader of
:mod:`marquee_events.deps`, and ``run`` gives the handler this request's repositories,
outbox and clock. Read-only endpoints use the read session. Each summary says who may
call the endpoint; ownership is enforced by the loaders and handlers whatever the
gateway checked.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response

from marquee_contracts.catalog import EventChanged
from marquee_events import handlers
from marquee_events.deps import (
    CurrentActor,
    EventsHandlerDependencies,
    IfMatch,
    ManagedEvent,
    ManagedTicketType,
    ManagedVenue,
    OptionalActor,
    ReadEventsDep,
    ReadReviewsDep,
    ReadVenuesDep,
    RequestedStatusChange,
    RunHandler,
    VisibleEvent,
    etag,
    expected_version_in_body,
)
from marquee_events.domain import (
    Actor,
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
from marquee_events.handlers import TicketTypeOfEvent, status_change_action
from marquee_events.messages import EventAggregate, event_changed_message
from marquee_events.models import Event, Review, TicketType, Venue
from marquee_events.repository import EventRepository, ReviewRepository, VenueRepository
from marquee_events.schemas import (
    Cancellation,
    EventCreate,
    EventRead,
    EventSummaryRead,
    EventUpdate,
    ReplyCreate,
    ReviewCreate,
    ReviewRead,
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
from marquee_platform.clock import Clock
from marquee_platform.deps import ClockDep
from marquee_platform.http import ReadSessionDep, router
from marquee_platform.idempotency import IdempotencyKey
from marquee_platform.pagination import CursorParamsDep, Page, paginate
from marquee_platform.security import Principal, Role, require_roles

venue_routes = router(prefix="/api/v1/events/venues", tags=["venues"])
event_routes = router(prefix="/api/v1/events", tags=["events"])
ticket_type_routes = router(prefix="/api/v1/events", tags=["ticket types"])
review_routes = router(prefix="/api/v1/events", tags=["reviews"])

EVENT_PATH = "/{event_id:uuid}"


# ---- venues -------------------------------------------------------------------------------


@venue_routes.post(
    "",
    status_code=201,
    summary="Create a venue with its seating map (organizers and admins)",
    responses={422: {"description": "A field or a part of the seating map is not valid"}},
)
async def create_venue(
    body: VenueCreate,
    actor: CurrentActor,
    run: RunHandler,
    response: Response,
    _: IdempotencyKey,
) -> VenueRead:
    """The caller owns the venue. Seats plus general-admission capacities must equal
    ``capacity``; every problem is named by its path in the seating map."""
    command = CreateVenue(details=body.details(), seating=body.seating_map.to_domain())
    venue = await run(handlers.create_venue, command, actor=actor)
    response.headers["ETag"] = etag(venue.version)
    response.headers["Location"] = f"/api/v1/events/venues/{venue.id}"
    return VenueRead.of(venue)


@venue_routes.get("/mine", summary="List your venues, newest first (organizers and admins)")
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


@venue_routes.get("/{venue_id:uuid}", summary="Read a venue and its seating map (anyone)")
async def read_venue(venue_id: uuid.UUID, venues: ReadVenuesDep, response: Response) -> VenueRead:
    venue = await venues.get(venue_id, with_seating_map=True)
    response.headers["ETag"] = etag(venue.version)
    return VenueRead.of(venue)


@venue_routes.patch(
    "/{venue_id:uuid}",
    summary="Edit a venue or replace its seating map (its organizer, admins)",
    responses={
        409: {"description": "Stale expected_version, or the map is frozen by live events"},
        412: {"description": "If-Match does not match the venue's version"},
    },
)
async def update_venue(
    venue: ManagedVenue, body: VenueUpdate, if_match: IfMatch, run: RunHandler, response: Response
) -> VenueRead:
    """Only the fields sent change. The seating map and capacity can't change while one
    of the venue's events is published, on sale or sold out."""
    expected = expected_version_in_body(if_match, body.expected_version)
    venue = await run(handlers.update_venue, venue, body.changes(), expected=expected)
    response.headers["ETag"] = etag(venue.version)
    return VenueRead.of(venue)


# ---- events -------------------------------------------------------------------------------


async def _event_read(
    aggregate: EventAggregate,
    *,
    viewer: Actor | None,
    reviews: ReviewRepository,
    clock: Clock,
    response: Response,
) -> EventRead:
    """The event as the API shows it to ``viewer``, its ``ETag`` set on ``response``."""
    event = aggregate.event
    response.headers["ETag"] = etag(event.version)
    allowed = None
    if can_manage(viewer, event.organizer_id):
        allowed = allowed_transitions(EventStatus(event.status), now=clock(), ends_at=event.ends_at)
    return event_read(aggregate, reviews=await reviews.summary(event.id), allowed_statuses=allowed)


@event_routes.post("", status_code=201, summary="Create a draft event (organizers and admins)")
async def create_event(
    body: EventCreate,
    actor: CurrentActor,
    run: RunHandler,
    response: Response,
    _: IdempotencyKey,
) -> EventRead:
    """The caller owns the event, which must be at one of their venues. It stays a draft,
    seen only by them and admins, until published."""
    changes = body.model_dump(exclude={"venue_id"})
    changes["category"] = body.category.value
    changes["tags"] = tuple(body.tags)
    changes["image_urls"] = tuple(body.image_urls)
    command = CreateEvent(venue_id=body.venue_id, details=EventDetails(**changes))
    aggregate = await run(handlers.create_event, command, actor=actor)
    response.headers["Location"] = f"/api/v1/events/{aggregate.event.id}"
    return await _event_read(
        aggregate, viewer=actor, reviews=run.reviews, clock=run.clock, response=response
    )


@event_routes.get("", summary="List upcoming public events by start time (anyone)")
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


@event_routes.get("/mine", summary="List your events, newest first (organizers and admins)")
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


@event_routes.get(
    "/snapshots",
    summary="Every event as its change snapshot, to rebuild derived data (admins)",
)
async def list_snapshots(
    admin: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
    session: ReadSessionDep,
    events: ReadEventsDep,
    params: CursorParamsDep,
) -> Page[EventChanged]:
    """**Who may call:** admins (``marquee search reindex --source http`` runs with an
    admin's token). Every event, drafts, cancelled and deleted ones included, exactly as
    ``events.event-changed.v1`` carries it, oldest first."""
    page = await paginate(
        session, EventRepository.every_event(), order_by=(Event.created_at, Event.id), params=params
    )
    events_on_page: list[Event] = list(page.items)
    ticket_types = await events.ticket_types_by_event([event.id for event in events_on_page])
    return Page(
        items=[
            event_changed_message(event, event.venue, ticket_types[event.id])
            for event in events_on_page
        ],
        next_cursor=page.next_cursor,
    )


@event_routes.get(
    EVENT_PATH,
    summary="Read an event with its venue and ticket types (anyone; drafts: its organizer, admins)",
)
async def read_event(
    event: VisibleEvent,
    viewer: OptionalActor,
    events: ReadEventsDep,
    reviews: ReadReviewsDep,
    clock: ClockDep,
    response: Response,
) -> EventRead:
    """A draft is a 404 to everyone but its organizer and admins. The ``ETag`` is the
    event's version: send it back in ``If-Match`` when changing the event."""
    aggregate = EventAggregate(event, event.venue, await events.ticket_types(event.id))
    return await _event_read(
        aggregate, viewer=viewer, reviews=reviews, clock=clock, response=response
    )


@event_routes.patch(
    EVENT_PATH,
    summary="Edit an event (its organizer, admins)",
    responses={
        409: {"description": "Stale expected_version, or a change its status forbids"},
        412: {"description": "If-Match does not match the event's version"},
    },
)
async def update_event(
    event: Annotated[Event, Depends(ManagedEvent("edit event"))],
    body: EventUpdate,
    actor: CurrentActor,
    if_match: IfMatch,
    run: RunHandler,
    response: Response,
) -> EventRead:
    """Only the fields sent change; each change adds one to ``version``. Guard against
    lost updates with ``If-Match: "<version>"`` (412) or ``expected_version`` (409)."""
    expected = expected_version_in_body(if_match, body.expected_version)
    aggregate = await run(
        handlers.update_event, event, body.changes(), actor=actor, expected=expected
    )
    return await _event_read(
        aggregate, viewer=actor, reviews=run.reviews, clock=run.clock, response=response
    )


@event_routes.delete(
    EVENT_PATH, status_code=204, summary="Delete a draft event (its organizer, admins)"
)
async def delete_event(
    event: Annotated[Event, Depends(ManagedEvent("delete event"))], run: RunHandler
) -> Response:
    """Only drafts; a public event is cancelled instead."""
    await run(handlers.delete_event, event)
    return Response(status_code=204)


async def _change_status(
    event: Event,
    command: ChangeStatus,
    *,
    actor: Actor,
    run: EventsHandlerDependencies,
    response: Response,
) -> EventRead:
    aggregate = await run(handlers.change_status, event, command)
    return await _event_read(
        aggregate, viewer=actor, reviews=run.reviews, clock=run.clock, response=response
    )


_TRANSITION_RESPONSES: dict[int | str, dict[str, str]] = {
    409: {"description": "Not allowed from its current status (the problem lists what is)"},
    412: {"description": "If-Match does not match the event's version"},
}


@event_routes.post(
    f"{EVENT_PATH}/publish",
    summary="Publish a draft event (its organizer, admins)",
    responses=_TRANSITION_RESPONSES,
)
async def publish_event(
    _: IdempotencyKey,
    event: Annotated[Event, Depends(ManagedEvent(status_change_action(EventStatus.PUBLISHED)))],
    actor: CurrentActor,
    run: RunHandler,
    response: Response,
) -> EventRead:
    """Needs a sale window, at least one ticket type consistent with the venue, and a
    start in the future. Sends ``events.event-published.v1`` with every seat."""
    command = ChangeStatus(EventStatus.PUBLISHED)
    return await _change_status(event, command, actor=actor, run=run, response=response)


@event_routes.post(
    f"{EVENT_PATH}/cancel",
    summary="Cancel an event (its organizer, admins)",
    responses=_TRANSITION_RESPONSES,
)
async def cancel_event(
    _: IdempotencyKey,
    event: Annotated[Event, Depends(ManagedEvent(status_change_action(EventStatus.CANCELLED)))],
    body: Cancellation,
    actor: CurrentActor,
    run: RunHandler,
    response: Response,
) -> EventRead:
    """From any status but cancelled and completed. Sends ``events.event-cancelled.v1``:
    booking refunds its orders."""
    command = ChangeStatus(EventStatus.CANCELLED, reason=body.reason)
    return await _change_status(event, command, actor=actor, run=run, response=response)


@event_routes.post(
    f"{EVENT_PATH}/status",
    summary="Change an event's status (its organizer, admins)",
    responses=_TRANSITION_RESPONSES,
)
async def change_event_status(
    _: IdempotencyKey,
    change: RequestedStatusChange,
    actor: CurrentActor,
    run: RunHandler,
    response: Response,
) -> EventRead:
    """draft → published → on_sale ⇄ sold_out → completed (once it has ended); any
    status but the final ones → cancelled."""
    return await _change_status(
        change.event, change.command, actor=actor, run=run, response=response
    )


# ---- ticket types -------------------------------------------------------------------------


@ticket_type_routes.get(
    f"{EVENT_PATH}/ticket-types",
    summary="List an event's ticket types (anyone; drafts: its organizer, admins)",
)
async def list_ticket_types(
    event: VisibleEvent, session: ReadSessionDep, params: CursorParamsDep
) -> Page[TicketTypeRead]:
    page = await paginate(
        session,
        EventRepository.ticket_types_of(event.id),
        order_by=(TicketType.created_at, TicketType.id),
        params=params,
    )
    return page.map(TicketTypeRead.of)


@ticket_type_routes.post(
    f"{EVENT_PATH}/ticket-types",
    status_code=201,
    summary="Add a ticket type to an event (its organizer, admins)",
)
async def add_ticket_type(
    body: TicketTypeCreate,
    # FastAPI resolves these in order: a missing token (401) or a malformed If-Match (422)
    # is refused before the key is looked up, and a retry with the key is replayed before
    # the event is loaded (by then its If-Match is stale, which would be a 412).
    actor: CurrentActor,
    if_match: IfMatch,
    _: IdempotencyKey,
    event: Annotated[Event, Depends(ManagedEvent("add a ticket type to event"))],
    run: RunHandler,
    response: Response,
) -> TicketTypeRead:
    """Allowed until the event is cancelled or completed. The ``ETag`` returned is the
    event's new version."""
    aggregate, ticket_type = await run(handlers.add_ticket_type, event, body.to_spec())
    response.headers["ETag"] = etag(aggregate.event.version)
    return TicketTypeRead.of(ticket_type)


@ticket_type_routes.patch(
    f"{EVENT_PATH}/ticket-types/{{ticket_type_id:uuid}}",
    summary="Change a ticket type (the event's organizer, admins)",
)
async def update_ticket_type(
    target: Annotated[
        TicketTypeOfEvent, Depends(ManagedTicketType("change a ticket type of event"))
    ],
    body: TicketTypeUpdate,
    run: RunHandler,
    response: Response,
) -> TicketTypeRead:
    """Once the event is on sale, price, currency and what it sells are fixed."""
    aggregate, ticket_type = await run(handlers.update_ticket_type, target, body.changes())
    response.headers["ETag"] = etag(aggregate.event.version)
    return TicketTypeRead.of(ticket_type)


@ticket_type_routes.delete(
    f"{EVENT_PATH}/ticket-types/{{ticket_type_id:uuid}}",
    status_code=204,
    summary="Delete a ticket type before the sale starts (the event's organizer, admins)",
)
async def delete_ticket_type(
    target: Annotated[
        TicketTypeOfEvent, Depends(ManagedTicketType("delete a ticket type of event"))
    ],
    run: RunHandler,
) -> Response:
    await run(handlers.delete_ticket_type, target)
    return Response(status_code=204)


# ---- reviews ------------------------------------------------------------------------------


@review_routes.get(
    f"{EVENT_PATH}/reviews", summary="List an event's reviews, newest first (anyone)"
)
async def list_reviews(
    event: VisibleEvent, session: ReadSessionDep, params: CursorParamsDep
) -> Page[ReviewRead]:
    page = await paginate(
        session,
        ReviewRepository.of_event(event.id),
        order_by=(Review.created_at, Review.id),
        params=params,
        descending=True,
    )
    return page.map(ReviewRead.of)


@review_routes.post(
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
    run: RunHandler,
    _: IdempotencyKey,
) -> ReviewRead:
    command = PostReview(rating=body.rating, comment=body.comment)
    review = await run(handlers.post_review, event_id, command, actor=actor)
    return ReviewRead.of(review)


@review_routes.post(
    f"{EVENT_PATH}/reviews/{{review_id:uuid}}/reply",
    summary="Reply once to a review (the event's organizer, admins)",
    responses={409: {"description": "The review already has a reply"}},
)
async def reply_to_review(
    event_id: uuid.UUID,
    review_id: uuid.UUID,
    body: ReplyCreate,
    actor: CurrentActor,
    run: RunHandler,
    _: IdempotencyKey,
) -> ReviewRead:
    review = await run(handlers.reply_to_review, event_id, review_id, body.reply, actor=actor)
    return ReviewRead.of(review)
