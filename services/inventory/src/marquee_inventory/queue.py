"""High-demand mode: first come, first served instead of a race.

For an event flagged ``high_demand`` the hold script answers ``queue``: the API records
the request in Redis (``T:req:<id>``, pending), appends it to
``inventory.hold-requested.v1`` keyed by the event — so one event's requests sit on one
partition, in arrival order — and answers ``202``. The inventory consumer applies that
partition's requests one by one, each as a hold whose Idempotency-Key is the request id (a
redelivery answers the same hold), writes the outcome into ``T:req:<id>`` and tells the
fan on their real-time channel (``user:<id>``, message ``hold-request-decided``). The fan
reads it at ``GET …/hold-requests/{id}`` too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import uuid
from typing import Any

from marquee_contracts import REGISTRY
from marquee_contracts.inventory import (
    HOLD_REQUESTED,
    BestAvailableAsk,
    HeldQuantity,
    HoldRequested,
    RequestedSeat,
)
from marquee_inventory import handlers
from marquee_inventory.handlers import HoldRequest, SeatMaps
from marquee_inventory.holds import EventKeys
from marquee_inventory.store import HoldStore
from marquee_platform.clock import Clock
from marquee_platform.db import Database
from marquee_platform.deps import outbox_source
from marquee_platform.errors import DomainError, Unavailable
from marquee_platform.kafka import publish
from marquee_platform.problems import status_for
from marquee_platform.realtime import publish as publish_realtime
from marquee_platform.realtime import user_channel

REQUEST_TTL_SECONDS = 3600


def new_request_id() -> str:
    return "hrq_" + secrets.token_urlsafe(16)


def request_key(event_id: uuid.UUID, request_id: str) -> str:
    return EventKeys.of(event_id).key("req", request_id)


async def enqueue_hold(
    request: HoldRequest, *, store: HoldStore, producer: Any, clock: Clock, topic: str | None = None
) -> str:
    """Record the request as pending and append it to the event's queue; its id.

    With an Idempotency-Key the id is derived from it, so a retry finds the request it
    already queued (and is not queued twice)."""
    if request.idempotency_key:
        digest = hashlib.sha256(
            f"{request.event_id}\n{request.user_id}\n{request.idempotency_key}".encode()
        ).digest()
        request_id = "hrq_" + base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")
    else:
        request_id = new_request_id()
    now = clock()
    key = request_key(request.event_id, request_id)
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.hsetnx(key, "user", request.user_id)
        pipe.hsetnx(key, "status", "pending")
        pipe.hsetnx(key, "requested_at", now.isoformat())
        pipe.expire(key, REQUEST_TTL_SECONDS, nx=True)
        first, *_ = await pipe.execute()
    if not first:
        return request_id  # queued before: the retry gets the same request
    message = HoldRequested(
        request_id=request_id,
        event_id=request.event_id,
        user_id=request.user_id,
        seats=[RequestedSeat(seat_id=seat, ticket_type_id=tt) for seat, tt in request.seats],
        general_admission=[
            HeldQuantity(ticket_type_id=tt, quantity=quantity)
            for tt, quantity in request.general_admission
        ],
        best_available=(
            BestAvailableAsk(
                count=request.best_available_count,
                price_category=request.best_available_category,
                ticket_type_id=request.best_available_ticket_type,
            )
            if request.best_available_count is not None
            else None
        ),
        requested_at=now,
    )
    envelope = REGISTRY.event(
        HOLD_REQUESTED.name,
        message,
        source=outbox_source("inventory"),
        subject=str(request.event_id),
    )
    try:
        await publish(producer, topic or HOLD_REQUESTED.name, envelope, key=str(request.event_id))
    except Exception as error:
        await store.redis.delete(key)  # never a "pending" that nothing will decide
        raise Unavailable(
            "The queue for this event is not reachable right now; try again in a moment.",
            code="queue-unavailable",
        ) from error
    return request_id


async def apply_queued_hold(
    message: HoldRequested,
    *,
    store: HoldStore,
    seat_maps: SeatMaps,
    database: Database,
    clock: Clock,
) -> dict[str, Any]:
    """Apply one queued request (in its partition's order); returns the recorded outcome."""
    best = message.best_available
    request = HoldRequest(
        event_id=message.event_id,
        user_id=message.user_id,
        seats=[(seat.seat_id, seat.ticket_type_id) for seat in message.seats],
        general_admission=[
            (place.ticket_type_id, place.quantity) for place in message.general_admission
        ],
        best_available_count=best.count if best else None,
        best_available_category=best.price_category if best else None,
        best_available_ticket_type=best.ticket_type_id if best else None,
        idempotency_key=message.request_id,
        queued=True,
    )
    outcome: dict[str, Any]
    try:
        handlers.validate_hold_shape(request)
        result = await handlers.place_hold(
            request, store=store, seat_maps=seat_maps, database=database, clock=clock
        )
    except DomainError as error:
        outcome = {
            "status": "refused",
            "problem": json.dumps(
                {
                    "status": status_for(error),
                    "code": error.code,
                    "detail": error.detail,
                    **error.extensions,
                }
            ),
        }
    else:
        outcome = {"status": "held", "hold_id": result.held.hold_id}
    key = request_key(message.event_id, message.request_id)
    await store.redis.hset(key, mapping={**outcome, "decided_at": clock().isoformat()})
    await store.redis.expire(key, REQUEST_TTL_SECONDS)
    with contextlib.suppress(Exception):  # a lost nudge: the fan can still poll the request
        await publish_realtime(
            store.redis,
            user_channel(message.user_id),
            "hold-request-decided",
            {"request_id": message.request_id, "event_id": str(message.event_id), **outcome},
        )
    return outcome


async def read_request(
    store: HoldStore, event_id: uuid.UUID, request_id: str
) -> dict[str, str] | None:
    raw = await store.redis.hgetall(request_key(event_id, request_id))
    if not raw:
        return None
    return {
        (name.decode() if isinstance(name, bytes) else name): (
            value.decode() if isinstance(value, bytes) else value
        )
        for name, value in raw.items()
    }
