"""Inventory's commands and consumed events, one function each.

Catalog messages write PostgreSQL (the consumer's one transaction) and bring Redis up to
date after the commit; holds touch Redis only; a paid order claims its places in Redis,
then sells them in PostgreSQL under the unique constraint, and answers on the outbox.
The waitroom's on-sale configuration is an admission gate: recorded in PostgreSQL, pushed
to Redis after the commit, checked on the hold path from Redis.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marquee_contracts.booking import OrderClosed, OrderPaid, TicketCancelled
from marquee_contracts.catalog import EventCancelled, EventChanged, EventPublished
from marquee_contracts.inventory import (
    SALE_CONFIRMED,
    SALE_REJECTED,
    SaleConfirmed,
    SaleRejected,
)
from marquee_contracts.waitroom import OnSaleConfigured
from marquee_inventory.admission import Admission, AdmissionVerifier
from marquee_inventory.domain import (
    SELLING_STATUSES,
    AdmissionRequired,
    HoldNotFound,
    Placement,
    PlacesUnavailable,
    Seat,
    SeatMap,
    bad_request,
    best_available,
    new_hold_id,
)
from marquee_inventory.models import InventoryEvent, InventoryTicketType, Sale
from marquee_inventory.repository import (
    AdmissionGateRepository,
    EventRepository,
    SaleRepository,
    SeatRepository,
)
from marquee_inventory.store import (
    HeldPlaces,
    HoldStore,
    QueueRequired,
    RedisConfig,
    RedisGate,
    StateMissing,
    to_ms,
)
from marquee_platform.clock import Clock
from marquee_platform.db import Database, after_commit
from marquee_platform.errors import Conflict, NotFound
from marquee_platform.outbox import Outbox

logger = logging.getLogger(__name__)


# ---- the catalog --------------------------------------------------------------------------


def redis_status(status: str) -> str:
    """What the hold script checks: ``selling`` or why not."""
    return "selling" if status in SELLING_STATUSES else status


def _sections_of(message: EventPublished) -> list[dict[str, Any]]:
    """The published layout, or — from a producer that predates it — one section per
    price category with one row in map order."""
    if message.seating.sections is not None:
        return [section.model_dump() for section in message.seating.sections]
    return [
        {
            "name": category,
            "rows": [
                {
                    "label": "1",
                    "seats": [{"id": seat, "price_category": category} for seat in seats],
                }
            ],
        }
        for category, seats in message.seating.seat_ids_by_price_category.items()
    ]


async def apply_event_published(
    message: EventPublished, *, events: EventRepository, seats: SeatRepository
) -> bool:
    """Record the event's seats and ticket types; True if anything changed."""
    event = await events.get(message.event_id, for_update=True)
    if event is None:
        event = InventoryEvent(
            event_id=message.event_id,
            version=message.version,
            status="published",
            organizer_id=message.organizer_id,
            name=message.name[:200],
            sale_starts_at=message.sale_starts_at,
            sale_ends_at=message.sale_ends_at,
            max_tickets_per_order=message.max_tickets_per_order,
            high_demand=message.high_demand,
            hold_ttl_seconds=300,
            seating_loaded=False,
        )
        events.add(event)
        await events.session.flush()
    changed = False
    if not event.seating_loaded:
        seat_map = SeatMap.from_sections(_sections_of(message))
        await seats.add_all(
            [
                {
                    "event_id": message.event_id,
                    "seat_id": seat.seat_id,
                    "section": seat.section,
                    "section_rank": seat.section_rank,
                    "row_label": seat.row_label,
                    "row_index": seat.row_index,
                    "position": seat.position,
                    "row_length": seat.row_length,
                    "price_category": seat.price_category,
                }
                for seat in seat_map.seats.values()
            ]
        )
        event.seating_loaded = True
        changed = True
    if message.version > event.version or changed:
        event.version = max(event.version, message.version)
        event.sale_starts_at = message.sale_starts_at
        event.sale_ends_at = message.sale_ends_at
        event.max_tickets_per_order = message.max_tickets_per_order
        event.high_demand = message.high_demand
        if event.status not in ("cancelled", "completed"):
            event.status = "published" if event.status == "draft" else event.status
        await _apply_ticket_types(events, message.event_id, message.ticket_types)
        changed = True
    return changed


async def apply_event_changed(message: EventChanged, *, events: EventRepository) -> bool:
    """Status, sale windows, caps and ticket types from a newer snapshot; True if applied.

    Drafts are not inventory's business until published; a deleted draft never was.
    """
    event = await events.get(message.event_id, for_update=True)
    if event is None:
        if message.status == "draft" or message.deleted:
            return False
        event = InventoryEvent(
            event_id=message.event_id,
            version=message.version,
            status=message.status,
            organizer_id=message.organizer_id,
            name=message.name[:200],
            sale_starts_at=message.sale_starts_at,
            sale_ends_at=message.sale_ends_at,
            max_tickets_per_order=message.max_tickets_per_order,
            high_demand=message.high_demand,
            seating_loaded=False,  # the seats come with events.event-published.v1
        )
        events.add(event)
        await events.session.flush()
    elif message.version <= event.version:
        return False  # late or repeated: a newer snapshot was applied already
    event.version = message.version
    event.status = "cancelled" if message.deleted else message.status
    event.name = message.name[:200]
    event.sale_starts_at = message.sale_starts_at
    event.sale_ends_at = message.sale_ends_at
    event.max_tickets_per_order = message.max_tickets_per_order
    event.high_demand = message.high_demand
    await _apply_ticket_types(events, message.event_id, message.ticket_types)
    return True


async def apply_event_cancelled(message: EventCancelled, *, events: EventRepository) -> bool:
    event = await events.get(message.event_id, for_update=True)
    if event is None or event.status == "cancelled":
        return False
    event.status = "cancelled"
    event.version = max(event.version, message.version)
    return True


async def _apply_ticket_types(
    events: EventRepository, event_id: uuid.UUID, snapshots: Sequence[Any]
) -> None:
    """Upsert the listed ticket types. Capacity never drops below what is sold: the
    events service refuses such a change while an event is live, and if one arrives
    anyway the sold places stay sold (logged)."""
    existing = {tt.ticket_type_id: tt for tt in await events.ticket_types(event_id)}
    listed = set()
    for snapshot in snapshots:
        listed.add(snapshot.ticket_type_id)
        seated = snapshot.kind == "seated"
        capacity = None if seated else int(snapshot.quantity or 0)
        current = existing.get(snapshot.ticket_type_id)
        if current is None:
            events.add_ticket_type(
                InventoryTicketType(
                    event_id=event_id,
                    ticket_type_id=snapshot.ticket_type_id,
                    name=snapshot.name[:200],
                    kind=snapshot.kind,
                    price_category=snapshot.price_category,
                    capacity=capacity,
                    sold=0,
                    sale_starts_at=snapshot.sale_starts_at,
                    sale_ends_at=snapshot.sale_ends_at,
                    min_per_order=snapshot.min_per_order,
                    max_per_order=snapshot.max_per_order,
                    active=True,
                )
            )
            continue
        if capacity is not None and capacity < current.sold:
            logger.warning(
                "event %s: ticket type %s asks for capacity %d below the %d sold; keeping %d",
                event_id,
                snapshot.ticket_type_id,
                capacity,
                current.sold,
                current.sold,
            )
            capacity = current.sold
        current.name = snapshot.name[:200]
        current.kind = snapshot.kind
        current.price_category = snapshot.price_category
        current.capacity = capacity
        current.sale_starts_at = snapshot.sale_starts_at
        current.sale_ends_at = snapshot.sale_ends_at
        current.min_per_order = snapshot.min_per_order
        current.max_per_order = snapshot.max_per_order
        current.active = True
    for ticket_type_id, current in existing.items():
        if ticket_type_id not in listed:
            current.active = False


# ---- the admission gate (the waiting room) -----------------------------------------------------


async def apply_onsale_configured(
    message: OnSaleConfigured, *, gates: AdmissionGateRepository
) -> RedisGate | None:
    """Record whether the event's holds need an admission token; the gate to push to
    Redis after the commit, or None when a newer configuration was applied already (a late
    or repeated message changes nothing). The event need not be known here yet."""
    configured_at = message.configured_at
    if configured_at.tzinfo is None:
        configured_at = configured_at.replace(tzinfo=UTC)
    if not await gates.record_if_newer(
        message.event_id, required=message.admission_required, configured_at=configured_at
    ):
        return None
    return RedisGate(required=message.admission_required, configured_at=configured_at)


async def push_admission_gate(event_id: uuid.UUID, gate: RedisGate, *, store: HoldStore) -> None:
    """After the gate committed: into Redis (unless a newer one is there), loaded or not."""
    await store.set_admission_gate(event_id, gate)


async def ensure_admitted(
    event_id: uuid.UUID,
    *,
    user_id: str,
    token: str | None,
    store: HoldStore,
    database: Database,
    verifier: AdmissionVerifier,
    clock: Clock,
) -> Admission | None:
    """Before a hold (direct or queued): when the event sells through the waiting room,
    the caller's admission token must verify for them and this event. None when the event
    has no gate (a token sent anyway is not looked at). Reads Redis only, unless the
    event's state is missing: then it is rebuilt first (with its gate)."""
    try:
        required = await store.admission_required(event_id)
    except StateMissing:
        await rebuild_event(event_id, database=database, store=store, force=False)
        required = await store.admission_required(event_id)
    if not required:
        return None
    if token is None or not token.strip():
        raise AdmissionRequired(event_id)
    return await verifier.verify(token.strip(), event_id=event_id, user_id=user_id, now=clock())


# ---- Redis from PostgreSQL -------------------------------------------------------------------


def redis_config(event: InventoryEvent, ticket_types: Sequence[InventoryTicketType]) -> RedisConfig:
    types: dict[str, dict[str, Any]] = {}
    categories: dict[str, str] = {}
    for ticket_type in ticket_types:
        if not ticket_type.active:
            continue
        starts = ticket_type.sale_starts_at or event.sale_starts_at
        ends = ticket_type.sale_ends_at or event.sale_ends_at
        entry: dict[str, Any] = {
            "kind": ticket_type.kind,
            "min": ticket_type.min_per_order,
            "max": ticket_type.max_per_order,
        }
        if ticket_type.kind == "seated":
            entry["cat"] = ticket_type.price_category or ""
            # The first seated type of a category is the one a bare seat id is sold as.
            categories.setdefault(ticket_type.price_category or "", str(ticket_type.ticket_type_id))
        else:
            entry["cap"] = ticket_type.capacity or 0
        if starts is not None:
            entry["start"] = to_ms(starts)  # absent, not null: cjson's null is truthy in Lua
        if ends is not None:
            entry["end"] = to_ms(ends)
        types[str(ticket_type.ticket_type_id)] = entry
    return RedisConfig(
        version=event.version,
        status=redis_status(event.status),
        ttl_ms=event.hold_ttl_seconds * 1000,
        max_total=event.max_tickets_per_order,
        mode="queued" if event.high_demand else "direct",
        ticket_types=types,
        categories=categories,
    )


async def push_config(event_id: uuid.UUID, *, database: Database, store: HoldStore) -> None:
    """After a catalog change committed: apply it to Redis in place, or load the event."""
    async with database.reading() as session:
        events = EventRepository(session)
        event = await events.get(event_id)
        if event is None or not event.seating_loaded:
            return
        config = redis_config(event, await events.ticket_types(event_id))
    applied = await store.set_meta(event_id, config=config)
    if not applied:
        await rebuild_event(event_id, database=database, store=store, force=False)


async def rebuild_event(
    event_id: uuid.UUID, *, database: Database, store: HoldStore, force: bool
) -> bool:
    """Write the event's seat state into Redis from PostgreSQL (sold places, capacities,
    confirmed sales, its admission gate). Without ``force`` it only fills a missing state;
    with it, it reloads over the present one, keeping live holds whose places are not
    sold."""
    async with database.reading() as session:
        events = EventRepository(session)
        event = await events.get(event_id)
        if event is None or not event.seating_loaded:
            raise NotFound(f"Event {event_id} is not on sale here.", code="event-not-found")
        ticket_types = await events.ticket_types(event_id)
        config = redis_config(event, ticket_types)
        seat_states = await SeatRepository(session).states(event_id)
        claimed = await SaleRepository(session).confirmed_holds(event_id)
        gate = await AdmissionGateRepository(session).get(event_id)
    installed = await store.install(
        event_id,
        force=force,
        config=config,
        seats=seat_states,
        sold_general_admission={
            str(tt.ticket_type_id): tt.sold for tt in ticket_types if tt.capacity is not None
        },
        claimed=claimed,
        gate=(
            RedisGate(required=gate.required, configured_at=gate.configured_at)
            if gate is not None
            else None
        ),
    )
    if installed:
        logger.info(
            "inventory of event %s loaded into Redis (%d seats)", event_id, len(seat_states)
        )
    return installed


# ---- holds --------------------------------------------------------------------------------------


class SeatMaps:
    """Seat maps by event, loaded from PostgreSQL once per process (seating is frozen while
    an event is live, so a map never goes stale)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._maps: dict[uuid.UUID, SeatMap] = {}

    async def get(self, event_id: uuid.UUID) -> SeatMap:
        seat_map = self._maps.get(event_id)
        if seat_map is None:
            async with self._database.reading() as session:
                rows = await SeatRepository(session).of_event(event_id)
            seat_map = SeatMap(
                {
                    row.seat_id: Seat(
                        seat_id=row.seat_id,
                        section=row.section,
                        section_rank=row.section_rank,
                        row_label=row.row_label,
                        row_index=row.row_index,
                        position=row.position,
                        row_length=row.row_length,
                        price_category=row.price_category,
                    )
                    for row in rows
                }
            )
            if len(self._maps) > 1000:
                self._maps.clear()
            self._maps[event_id] = seat_map
        return seat_map


@dataclass(frozen=True, slots=True)
class HoldRequest:
    event_id: uuid.UUID
    user_id: str
    seats: Sequence[tuple[str, uuid.UUID | None]] = ()
    general_admission: Sequence[tuple[uuid.UUID, int]] = ()
    best_available_count: int | None = None
    best_available_category: str | None = None
    best_available_ticket_type: uuid.UUID | None = None
    idempotency_key: str | None = None
    queued: bool = False
    """Applied by the high-demand queue (the hold script then does not bounce it)."""

    def fingerprint(self) -> str:
        """What an Idempotency-Key was sent with (best-available: the ask, not the seats)."""
        text = repr(
            (
                sorted((seat, str(tt)) for seat, tt in self.seats),
                sorted((str(tt), quantity) for tt, quantity in self.general_admission),
                self.best_available_count,
                self.best_available_category,
                str(self.best_available_ticket_type),
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class HoldResult:
    held: HeldPlaces
    placement: Placement | None


_BEST_AVAILABLE_ATTEMPTS = 8
_SPREAD_AFTER_A_COLLISION = 8


async def _free_seats(store: HoldStore, event_id: uuid.UUID) -> set[str]:
    availability = await store.availability(event_id)
    return {seat for seat, state in availability.seats.items() if state == "available"}


async def place_hold(
    request: HoldRequest,
    *,
    store: HoldStore,
    seat_maps: SeatMaps,
    database: Database,
    clock: Clock,
) -> HoldResult:
    """Hold places all or nothing; best-available picks seats first, and picks again
    (without the seats someone took meanwhile) if they went before the script ran."""
    try:
        return await _place_hold(request, store=store, seat_maps=seat_maps, clock=clock)
    except StateMissing:
        await rebuild_event(request.event_id, database=database, store=store, force=False)
        return await _place_hold(request, store=store, seat_maps=seat_maps, clock=clock)


async def _place_hold(
    request: HoldRequest, *, store: HoldStore, seat_maps: SeatMaps, clock: Clock
) -> HoldResult:
    if request.best_available_count is None:
        held = await store.hold(
            request.event_id,
            hold_id=new_hold_id(),
            user_id=request.user_id,
            seats=request.seats,
            general_admission=request.general_admission,
            now=clock(),
            idempotency_key=request.idempotency_key,
            request_hash=request.fingerprint(),
            queued=request.queued,
        )
        return HoldResult(held, None)
    if request.idempotency_key:
        # Before picking among the free seats: the seats a first attempt took are not free.
        replayed = await store.replayed_hold(
            request.event_id,
            user_id=request.user_id,
            idempotency_key=request.idempotency_key,
            request_hash=request.fingerprint(),
        )
        if replayed is not None:
            return HoldResult(replayed, None)
    if not request.queued and await store.takes_holds_through_queue(request.event_id):
        # Before reading the whole seat map: the queue will place this request.
        raise QueueRequired(request.event_id)
    seat_map = await seat_maps.get(request.event_id)
    free = await _free_seats(store, request.event_id)
    last_error: PlacesUnavailable | None = None
    for attempt in range(_BEST_AVAILABLE_ATTEMPTS):
        placement = best_available(
            seat_map,
            free,
            request.best_available_count,
            price_category=request.best_available_category,
            # The first try takes the very best block; after losing a race for it, a
            # random one of the few best, so a crowd asking at once does not queue up
            # behind the same seats.
            spread=1 if attempt == 0 else _SPREAD_AFTER_A_COLLISION,
        )
        if placement is None:
            left = len(
                [
                    seat
                    for seat in free
                    if request.best_available_category is None
                    or seat_map.seats[seat].price_category == request.best_available_category
                ]
            )
            what = (
                f"in price category {request.best_available_category}"
                if request.best_available_category
                else "in this event"
            )
            raise PlacesUnavailable(
                f"Only {left} seats are left {what}; you asked for "
                f"{request.best_available_count}. Nothing was held.",
                left={"seats": left},
            )
        try:
            held = await store.hold(
                request.event_id,
                hold_id=new_hold_id(),
                user_id=request.user_id,
                seats=[
                    (seat.seat_id, request.best_available_ticket_type) for seat in placement.seats
                ],
                general_admission=(),
                now=clock(),
                idempotency_key=request.idempotency_key,
                request_hash=request.fingerprint(),
                queued=request.queued,
            )
        except PlacesUnavailable as error:
            last_error = error
            free = await _free_seats(store, request.event_id)  # what others took meanwhile
            continue
        return HoldResult(held, placement)
    assert last_error is not None
    raise last_error


async def release_hold(
    event_id: uuid.UUID,
    hold_id: str,
    *,
    user_id: str,
    is_admin: bool,
    store: HoldStore,
    database: Database,
    clock: Clock,
) -> None:
    try:
        await store.release(event_id, hold_id, user_id=None if is_admin else user_id, now=clock())
    except StateMissing:
        raise HoldNotFound(hold_id) from None  # a lost state lost its holds too


async def release_for_closed_order(closed: OrderClosed, *, store: HoldStore, clock: Clock) -> bool:
    """An unpaid order ended (its payment failed, its buyer cancelled it): its hold is
    released now rather than at its deadline. Answers False when the hold had already
    ended (expired, released, or its Redis state lost): nothing to do."""
    try:
        await store.release(closed.event_id, closed.hold_id, user_id=closed.user_id, now=clock())
    except (HoldNotFound, StateMissing):
        return False
    return True


# ---- sales -------------------------------------------------------------------------------------


async def confirm_sale(
    message: OrderPaid,
    *,
    events: EventRepository,
    seats: SeatRepository,
    sales: SaleRepository,
    outbox: Outbox,
    store: HoldStore,
    database: Database,
    clock: Clock,
) -> str:
    """Sell a paid order's places, or refuse; answers ``confirmed`` or ``rejected``.

    Redis first (the claim makes the places unholdable at once), then PostgreSQL under its
    constraints. If PostgreSQL refuses what Redis allowed (Redis had lost a sale), the
    order is rejected and the event's Redis state is reloaded from PostgreSQL.
    """
    previous = await sales.get(message.order_id)
    if previous is not None:
        return previous.outcome  # decided before (the outbox carries that answer)
    now = clock()
    event = await events.get(message.event_id)
    if event is None:
        return await _reject(message, sales, outbox, now, "unknown-places", "unknown event")
    if event.status == "cancelled":
        return await _reject(
            message, sales, outbox, now, "event-cancelled", "The event was cancelled."
        )
    seat_list = [(seat.seat_id, seat.ticket_type_id) for seat in message.seats]
    quantities = [(place.ticket_type_id, place.quantity) for place in message.general_admission]

    async def claim() -> list[str] | None:
        return await store.claim_sale(
            message.event_id,
            hold_id=message.hold_id,
            order_id=message.order_id,
            user_id=message.user_id,
            seats=seat_list,
            general_admission=quantities,
            now=now,
        )

    try:
        taken = await claim()
    except StateMissing:
        await rebuild_event(message.event_id, database=database, store=store, force=False)
        taken = await claim()
    if taken:
        return await _reject(
            message,
            sales,
            outbox,
            now,
            "places-taken",
            f"The hold lapsed and {', '.join(taken)} went to someone else.",
        )
    savepoint = await events.session.begin_nested()
    sold = await seats.sell(message.event_id, seat_list, order_id=message.order_id, at=now)
    fits = sold == len(seat_list)
    for ticket_type_id, quantity in quantities if fits else ():
        if not await sales.sell_general_admission(message.event_id, ticket_type_id, quantity):
            fits = False
            break
    if not fits:
        await savepoint.rollback()
        logger.error(
            "order %s: Redis allowed a sale PostgreSQL refuses; reloading event %s",
            message.order_id,
            message.event_id,
        )
        after_commit(
            events.session,
            lambda: _reload(message.event_id, database=database, store=store),
        )
        return await _reject(
            message, sales, outbox, now, "places-taken", "The places were sold meanwhile."
        )
    await savepoint.commit()
    _record_decision(message, sales, "confirmed", now, general_admission=quantities)
    await outbox.add(
        SALE_CONFIRMED.name,
        SaleConfirmed(
            **_order_of(message),
            seats=message.seats,
            general_admission=message.general_admission,
            confirmed_at=now,
        ),
        key=message.event_id,
    )
    return "confirmed"


async def _reload(event_id: uuid.UUID, *, database: Database, store: HoldStore) -> None:
    await rebuild_event(event_id, database=database, store=store, force=True)


def _order_of(message: OrderPaid) -> dict[str, Any]:
    """The fields every sale answer repeats from the paid order."""
    return {
        "order_id": message.order_id,
        "hold_id": message.hold_id,
        "event_id": message.event_id,
        "user_id": message.user_id,
    }


def _record_decision(
    message: OrderPaid,
    sales: SaleRepository,
    outcome: str,
    now: datetime,
    *,
    general_admission: Sequence[tuple[uuid.UUID, int]] = (),
) -> None:
    sales.add(
        Sale(
            **_order_of(message),
            outcome=outcome,
            general_admission=[[str(tt), quantity] for tt, quantity in general_admission],
            decided_at=now,
        )
    )


async def _reject(
    message: OrderPaid,
    sales: SaleRepository,
    outbox: Outbox,
    now: datetime,
    reason: str,
    detail: str,
) -> str:
    _record_decision(message, sales, "rejected", now)
    await outbox.add(
        SALE_REJECTED.name,
        SaleRejected(**_order_of(message), reason=reason, detail=detail, rejected_at=now),
        key=message.event_id,
    )
    return "rejected"


async def return_place(
    message: TicketCancelled,
    *,
    seats: SeatRepository,
    sales: SaleRepository,
    store: HoldStore,
    database: Database,
    clock: Clock,
) -> bool:
    """A cancelled or refunded ticket's place is sellable again (once per ticket)."""
    if not await sales.record_return(message.ticket_id, message.event_id, clock()):
        return False
    if message.seat_id is not None:
        freed = await seats.unsell(message.event_id, message.seat_id, order_id=message.order_id)
    else:
        freed = await sales.unsell_general_admission(message.event_id, message.ticket_type_id)
    if not freed:
        return False

    async def free_in_redis() -> None:
        try:
            await store.return_place(
                message.event_id,
                seat_id=message.seat_id,
                ticket_type_id=message.ticket_type_id,
                order_id=message.order_id,
            )
        except StateMissing:
            await rebuild_event(message.event_id, database=database, store=store, force=False)

    after_commit(seats.session, free_in_redis)
    return True


def ensure_known_event(event: InventoryEvent | None, event_id: uuid.UUID) -> InventoryEvent:
    if event is None or not event.seating_loaded:
        raise NotFound(
            f"Event {event_id} has no inventory: it does not exist or is not published.",
            code="event-not-found",
        )
    return event


def refuse_when_closed(event: InventoryEvent) -> None:
    if event.status == "cancelled":
        raise Conflict(
            "This event was cancelled: nothing can be held for it.", code="event-cancelled"
        )


def validate_hold_shape(request: HoldRequest) -> None:
    kinds = sum(
        [
            bool(request.seats),
            bool(request.general_admission),
            request.best_available_count is not None,
        ]
    )
    if kinds != 1:
        raise bad_request(
            "Send exactly one of seats, general_admission or best_available.",
            field_path="",
            code="one-kind-of-hold",
        )
    if len({seat for seat, _ in request.seats}) != len(request.seats):
        raise bad_request("A seat is listed twice.", field_path="seats", code="duplicate-seat")
