"""``Annotated`` dependencies of the events API.

The clock and the outbox are the platform's (:mod:`marquee_platform.deps`); this module
adds the service's own:

- the caller as the rules see it: :data:`CurrentActor`, :data:`OptionalActor`;
- :data:`IfMatch`, the version a client last read (:func:`etag` hands it out);
- the repositories on the request's write session (:data:`VenuesDep` …) or, for
  endpoints that only read, on its read session (:data:`ReadVenuesDep` …);
- :data:`RunHandler`, which hands a handler every one of those it names;
- loaders, which take what the path names, answer 404 if there is none and 403 unless
  the caller may do what the endpoint does, before the endpoint runs:
  :data:`VisibleEvent` for readers; for changes (locked, and 412 if ``If-Match`` names
  another version) :class:`ManagedEvent`, :class:`ManagedTicketType`,
  :data:`ManagedVenue` and :data:`RequestedStatusChange`.

FastAPI resolves an endpoint's dependencies in the order of its parameters, and all of
them before it checks the request body against its schema: a loader's 404 or 403 comes
before a 422 for a malformed body. An endpoint that takes an ``Idempotency-Key`` lists it
before its loader, so that a retry is answered with its stored response rather than with
a 412 because the first attempt changed the event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header

from marquee_events import handlers
from marquee_events.domain import Actor, ChangeStatus, ExpectedVersion
from marquee_events.models import Event, Venue
from marquee_events.repository import (
    EventRepository,
    ReviewRepository,
    TicketHolderRepository,
    VenueRepository,
)
from marquee_events.schemas import StatusChange
from marquee_platform.clock import Clock
from marquee_platform.deps import (
    ClockDep,
    HandlerDependencies,
    OutboxDep,
    on_read_session,
    on_write_session,
)
from marquee_platform.errors import InvalidInput
from marquee_platform.outbox import Outbox
from marquee_platform.security import CurrentUser, OptionalUser, Principal, Role

Repository = TypeVar("Repository")
Result = TypeVar("Result")


# ---- the caller ---------------------------------------------------------------------------


def actor_of(principal: Principal) -> Actor:
    return Actor(
        user_id=principal.user_id,
        is_organizer=principal.has_role(Role.ORGANIZER),
        is_admin=principal.is_admin,
    )


async def _current_actor(principal: CurrentUser) -> Actor:
    return actor_of(principal)


async def _optional_actor(principal: OptionalUser) -> Actor | None:
    return actor_of(principal) if principal is not None else None


CurrentActor = Annotated[Actor, Depends(_current_actor)]
"""The signed-in caller (401 without a valid token)."""
OptionalActor = Annotated[Actor | None, Depends(_optional_actor)]
"""The caller if signed in, else None."""


# ---- versions -----------------------------------------------------------------------------


def etag(version: int) -> str:
    """The ``ETag`` of a venue or event at ``version`` (send it back in ``If-Match``)."""
    return f'"{version}"'


def _bad_if_match(value: str) -> InvalidInput:
    return InvalidInput(
        f'If-Match must be one ETag this API handed out, such as "3"; got {value[:40]!r}.',
        code="invalid-if-match",
        errors=[
            {
                "location": "header If-Match",
                "field": "If-Match",
                "message": 'one ETag such as "3"',
                "kind": "if_match",
            }
        ],
    )


async def _expected_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The ETag you read (e.g. "3"): the change is refused with 412 if the '
            "thing changed since.",
        ),
    ] = None,
) -> ExpectedVersion | None:
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/")
    if "," in value:
        raise _bad_if_match(if_match)
    value = value.strip('"')
    if not value.isdigit() or len(value) > 12:
        raise _bad_if_match(if_match)
    return ExpectedVersion(int(value), from_header=True)


IfMatch = Annotated[ExpectedVersion | None, Depends(_expected_version)]


def expected_version_in_body(
    if_match: ExpectedVersion | None, body_version: int | None
) -> ExpectedVersion | None:
    """A body's ``expected_version``, for the handler to check; None when ``If-Match`` was
    sent, since the header wins (and the loader checked it)."""
    if if_match is not None or body_version is None:
        return None
    return ExpectedVersion(body_version)


# ---- repositories -------------------------------------------------------------------------


VenuesDep = Annotated[VenueRepository, Depends(on_write_session(VenueRepository))]
EventsDep = Annotated[EventRepository, Depends(on_write_session(EventRepository))]
ReviewsDep = Annotated[ReviewRepository, Depends(on_write_session(ReviewRepository))]
TicketHoldersDep = Annotated[
    TicketHolderRepository, Depends(on_write_session(TicketHolderRepository))
]
"""Repositories in the request's transaction (they share its one write session)."""

ReadVenuesDep = Annotated[VenueRepository, Depends(on_read_session(VenueRepository))]
ReadEventsDep = Annotated[EventRepository, Depends(on_read_session(EventRepository))]
ReadReviewsDep = Annotated[ReviewRepository, Depends(on_read_session(ReviewRepository))]
"""Repositories for endpoints that only read (they share one read session)."""


# ---- handlers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventsHandlerDependencies(HandlerDependencies):
    """Everything the events handlers take as keyword arguments, for one request.

    Calling it runs a handler with the ones its signature names (the way a cosmicpython
    bootstrap injects them), so an endpoint passes only what is particular to the call —
    the command, the loaded event, ``actor``, ``expected`` — and a handler that needs one
    more dependency changes no endpoint.
    """

    venues: VenueRepository
    events: EventRepository
    reviews: ReviewRepository
    holders: TicketHolderRepository
    outbox: Outbox
    clock: Clock


async def _handler_dependencies(
    venues: VenuesDep,
    events: EventsDep,
    reviews: ReviewsDep,
    holders: TicketHoldersDep,
    outbox: OutboxDep,
    clock: ClockDep,
) -> EventsHandlerDependencies:
    return EventsHandlerDependencies(
        venues=venues, events=events, reviews=reviews, holders=holders, outbox=outbox, clock=clock
    )


RunHandler = Annotated[EventsHandlerDependencies, Depends(_handler_dependencies)]
"""``await run(handlers.update_event, event, changes, actor=actor, expected=None)``: the
handler, given this request's repositories (in its one transaction), outbox and clock."""


# ---- loaders ------------------------------------------------------------------------------


async def _visible_event(
    event_id: uuid.UUID, viewer: OptionalActor, events: ReadEventsDep
) -> Event:
    return await handlers.visible_event(event_id, viewer=viewer, events=events)


VisibleEvent = Annotated[Event, Depends(_visible_event)]
"""The path's event with its venue, as the caller may see it: 404 if there is none, or if
it is a draft and the caller neither its organizer nor an admin (read session)."""


class ManagedEvent:
    """``event: Annotated[Event, Depends(ManagedEvent("edit event"))]``: the path's event,
    locked for a change in the request's transaction; 401 without a token, 404 if there
    is none, 403 unless the caller is its organizer or an admin (the refusal names what
    they tried: "You can't edit event 'Rock night': …"), 412 if ``If-Match`` names
    another version."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def __call__(
        self, event_id: uuid.UUID, actor: CurrentActor, events: EventsDep, if_match: IfMatch
    ) -> Event:
        return await handlers.event_to_manage(
            event_id, actor=actor, action=self.action, expected=if_match, events=events
        )


class ManagedTicketType:
    """``target: Annotated[TicketTypeOfEvent, Depends(ManagedTicketType("delete a ticket
    type of event"))]``: the path's event, loaded as :class:`ManagedEvent` loads it, and
    its ticket type the path names (404 if it has none such)."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def __call__(
        self,
        event_id: uuid.UUID,
        ticket_type_id: uuid.UUID,
        actor: CurrentActor,
        events: EventsDep,
        if_match: IfMatch,
    ) -> handlers.TicketTypeOfEvent:
        return await handlers.ticket_type_to_manage(
            event_id,
            ticket_type_id,
            actor=actor,
            action=self.action,
            expected=if_match,
            events=events,
        )


async def _managed_venue(
    venue_id: uuid.UUID, actor: CurrentActor, venues: VenuesDep, if_match: IfMatch
) -> Venue:
    return await handlers.venue_to_manage(venue_id, actor=actor, expected=if_match, venues=venues)


ManagedVenue = Annotated[Venue, Depends(_managed_venue)]
"""The path's venue, locked for a change by its organizer or an admin (404, 403, 412 as
for :class:`ManagedEvent`)."""


@dataclass(frozen=True, slots=True)
class StatusChangeRequest:
    """An event its manager asks to move to another status, and how."""

    event: Event
    command: ChangeStatus


async def _requested_status_change(
    event_id: uuid.UUID,
    body: StatusChange,
    actor: CurrentActor,
    events: EventsDep,
    if_match: IfMatch,
) -> StatusChangeRequest:
    command = ChangeStatus(body.status, reason=body.reason)
    event = await handlers.event_to_manage(
        event_id,
        actor=actor,
        action=handlers.status_change_action(command.status),
        expected=if_match,
        events=events,
    )
    return StatusChangeRequest(event=event, command=command)


RequestedStatusChange = Annotated[StatusChangeRequest, Depends(_requested_status_change)]
"""The body's status change and the path's event, loaded as :class:`ManagedEvent` loads
it. The refusal names the status asked for, so this loader reads the body (the endpoint
takes it from here, not as a parameter of its own: FastAPI would check it twice)."""
