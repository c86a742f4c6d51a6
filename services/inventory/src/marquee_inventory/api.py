"""The inventory API under ``/api/v1/inventory``: holds and availability.

A hold is Redis only: these endpoints open no PostgreSQL transaction on the way (only a
missing event state, rebuilt once, reads PostgreSQL). Each summary says who may call.
An event that sells through the waiting room has an admission gate: its holds need the
admission token the waitroom gave the fan, in the ``Admission-Token`` header.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import Header, Response
from fastapi.responses import JSONResponse
from fastapi.responses import Response as PlainResponse

from marquee_contracts.waitroom import ADMISSION_HEADER
from marquee_inventory import handlers, queue
from marquee_inventory.deps import (
    AdmissionVerifierDep,
    EventsDep,
    HoldStoreDep,
    ManagedEvent,
    ProducerDep,
    SeatMapsDep,
    SettingsDep,
)
from marquee_inventory.domain import HoldNotFound
from marquee_inventory.handlers import HoldRequest
from marquee_inventory.schemas import (
    AvailabilityRead,
    HoldCreate,
    HoldRead,
    HoldRequestRead,
    HoldSettings,
    HoldSettingsRead,
    SupplyRead,
)
from marquee_inventory.store import QueueRequired, StateMissing
from marquee_platform.db import after_commit
from marquee_platform.deps import ClockDep, DatabaseDep
from marquee_platform.errors import NotFound
from marquee_platform.http import router
from marquee_platform.idempotency import HEADER as IDEMPOTENCY_HEADER
from marquee_platform.security import CurrentUser

inventory = router(prefix="/api/v1/inventory/events", tags=["inventory"])

EVENT = "/{event_id:uuid}"


@inventory.post(
    EVENT + "/holds",
    status_code=201,
    summary="Hold places for a few minutes, all or nothing (signed-in fans)",
    response_model=HoldRead,
    responses={
        202: {
            "model": HoldRequestRead,
            "description": "A high-demand event: the request is queued (first come, first "
            "served); follow Location or the real-time channel",
        },
        403: {
            "description": "The event sells through the waiting room: "
            "`admission-required` without an Admission-Token header (join the queue at "
            "POST /api/v1/waitroom/events/{event_id}/queue); `admission-invalid` when the "
            "token does not admit you to this event (`reason`: expired, other-account, "
            "other-event, bad-signature, malformed)"
        },
        404: {"description": "The event has no inventory (unknown or not published)"},
        409: {"description": "Places taken, sale not open or closed, event cancelled"},
        422: {"description": "Unknown seats or ticket types, over the per-person limit"},
        503: {
            "description": "`admission-keys-unavailable`: the waiting room's signing keys "
            "cannot be fetched to check the Admission-Token; retry shortly"
        },
    },
)
async def create_hold(
    event_id: uuid.UUID,
    body: HoldCreate,
    user: CurrentUser,
    store: HoldStoreDep,
    seat_maps: SeatMapsDep,
    database: DatabaseDep,
    clock: ClockDep,
    producer: ProducerDep,
    settings: SettingsDep,
    admission: AdmissionVerifierDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, max_length=255)] = None,
    admission_token: Annotated[
        str | None,
        Header(
            alias=ADMISSION_HEADER,
            description="The waiting room's admission token, for an event that sells through it",
        ),
    ] = None,
) -> HoldRead | JSONResponse:
    """Send one of: ``seats`` (ids from the seat map), ``general_admission`` (a quantity of
    a general-admission ticket type) or ``best_available`` (a count, optionally a price
    category: adjacent seats in one row when there are any, best section first; the answer
    says which rule placed them). The answer carries ``expires_at``; a 409 says what is
    left. Retrying with the same ``Idempotency-Key`` returns the same hold. For a high-demand
    event the request is queued instead: ``202`` with a ``request_id``; requests are applied
    in arrival order and the outcome arrives on your real-time channel
    (``hold-request-decided``) and at ``Location``. For an event that sells through the
    waiting room, send the admission token it gave you in ``Admission-Token`` (it is bound
    to your account and this event, and checked before a request is queued)."""
    best = body.best_available
    request = HoldRequest(
        event_id=event_id,
        user_id=user.user_id,
        seats=[(seat.seat_id, seat.ticket_type_id) for seat in body.seats or ()],
        general_admission=[
            (place.ticket_type_id, place.quantity) for place in body.general_admission or ()
        ],
        best_available_count=best.count if best else None,
        best_available_category=best.price_category if best else None,
        best_available_ticket_type=best.ticket_type_id if best else None,
        idempotency_key=idempotency_key,
    )
    handlers.validate_hold_shape(request)
    await handlers.ensure_admitted(
        event_id,
        user_id=user.user_id,
        token=admission_token,
        store=store,
        database=database,
        verifier=admission,
        clock=clock,
    )
    try:
        result = await handlers.place_hold(
            request, store=store, seat_maps=seat_maps, database=database, clock=clock
        )
    except QueueRequired:
        request_id = await queue.enqueue_hold(
            request, store=store, producer=producer, clock=clock, topic=settings.hold_requests_topic
        )
        location = f"/api/v1/inventory/events/{event_id}/hold-requests/{request_id}"
        return JSONResponse(
            HoldRequestRead(request_id=request_id, event_id=event_id, status="pending").model_dump(
                mode="json"
            ),
            status_code=202,
            headers={"Location": location},
        )
    response.headers["Location"] = (
        f"/api/v1/inventory/events/{event_id}/holds/{result.held.hold_id}"
    )
    return HoldRead.of(result.held, result.placement)


@inventory.get(
    EVENT + "/holds/{hold_id}",
    summary="Read a live hold (its holder, admins)",
    responses={404: {"description": "No such live hold of yours"}},
)
async def read_hold(
    event_id: uuid.UUID, hold_id: str, user: CurrentUser, store: HoldStoreDep
) -> HoldRead:
    held = await store.get_hold(event_id, hold_id)
    if held is None or not (user.is_admin or held.user_id == user.user_id):
        raise HoldNotFound(hold_id)
    return HoldRead.of(held)


@inventory.get(
    EVENT + "/hold-requests/{request_id}",
    summary="The outcome of a queued hold request (its fan, admins)",
    responses={
        404: {"description": "No such request of yours (or it was decided over an hour ago)"}
    },
)
async def read_hold_request(
    event_id: uuid.UUID, request_id: str, user: CurrentUser, store: HoldStoreDep
) -> HoldRequestRead:
    recorded = await queue.read_request(store, event_id, request_id)
    if recorded is None or not (user.is_admin or recorded["user"] == user.user_id):
        raise NotFound(
            f"There is no hold request {request_id} of yours.", code="hold-request-not-found"
        )
    held = None
    if recorded.get("hold_id"):
        live = await store.get_hold(event_id, recorded["hold_id"])
        held = HoldRead.of(live) if live is not None else None
    return HoldRequestRead(
        request_id=request_id,
        event_id=event_id,
        status=recorded["status"],
        hold=held,
        problem=json.loads(recorded["problem"]) if recorded.get("problem") else None,
    )


@inventory.delete(
    EVENT + "/holds/{hold_id}",
    status_code=204,
    summary="Release a hold now (its holder, admins)",
    responses={404: {"description": "No such live hold of yours"}},
)
async def release_hold(
    event_id: uuid.UUID,
    hold_id: str,
    user: CurrentUser,
    store: HoldStoreDep,
    database: DatabaseDep,
    clock: ClockDep,
) -> PlainResponse:
    await handlers.release_hold(
        event_id,
        hold_id,
        user_id=user.user_id,
        is_admin=user.is_admin,
        store=store,
        database=database,
        clock=clock,
    )
    return PlainResponse(status_code=204)


@inventory.get(
    EVENT + "/availability",
    summary="Every seat's state and the general-admission counts (anyone)",
    response_model=AvailabilityRead,
    responses={
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
        404: {"description": "The event has no inventory"},
    },
)
async def read_availability(
    event_id: uuid.UUID,
    store: HoldStoreDep,
    database: DatabaseDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=100)] = None,
) -> AvailabilityRead | PlainResponse:
    """Never says who holds a seat. Changes also stream on the event's real-time channel
    (``availability-changed``, at most about four a second)."""
    version = await store.availability_version(event_id)
    sent = (if_none_match or "").strip().removeprefix("W/").strip('"')
    if version is not None and sent == str(version):
        return PlainResponse(status_code=304, headers={"ETag": f'"{version}"'})
    try:
        availability = await store.availability(event_id)
    except StateMissing:
        await handlers.rebuild_event(event_id, database=database, store=store, force=False)
        availability = await store.availability(event_id)
    response.headers["ETag"] = f'"{availability.version}"'
    response.headers["Cache-Control"] = "no-cache"
    return AvailabilityRead.of(event_id, availability)


@inventory.get(
    EVENT + "/supply",
    summary="How many places are left and in play, in a few numbers (anyone)",
    response_model=SupplyRead,
    responses={404: {"description": "The event has no inventory"}},
)
async def read_supply(
    event_id: uuid.UUID, store: HoldStoreDep, database: DatabaseDep, response: Response
) -> SupplyRead:
    """From the hold scripts' own counters in one Redis round trip, never the seat map:
    cheap enough to poll a few times a second (the waiting room paces admission by it).
    ``available`` counts free seats and free general-admission places together."""
    try:
        supply = await store.supply(event_id)
    except StateMissing:
        await handlers.rebuild_event(event_id, database=database, store=store, force=False)
        supply = await store.supply(event_id)
    response.headers["Cache-Control"] = "no-cache"
    return SupplyRead.of(event_id, supply)


@inventory.put(
    EVENT + "/hold-settings",
    summary="Set how long holds last for this event (its organizer, admins)",
    responses={404: {"description": "No such event of yours"}},
)
async def update_hold_settings(
    body: HoldSettings,
    event: ManagedEvent,
    events: EventsDep,
    store: HoldStoreDep,
    database: DatabaseDep,
) -> HoldSettingsRead:
    """Applies to holds made from now on; live holds keep their deadline."""
    event.hold_ttl_seconds = body.hold_ttl_seconds
    event_id = event.event_id
    after_commit(
        events.session,
        lambda: handlers.push_config(event_id, database=database, store=store),
    )
    return HoldSettingsRead(event_id=event_id, hold_ttl_seconds=event.hold_ttl_seconds)


@inventory.get(
    EVENT + "/hold-settings",
    summary="How long holds last for this event (its organizer, admins)",
    responses={404: {"description": "No such event of yours"}},
)
async def read_hold_settings(event: ManagedEvent) -> HoldSettingsRead:
    return HoldSettingsRead(event_id=event.event_id, hold_ttl_seconds=event.hold_ttl_seconds)
