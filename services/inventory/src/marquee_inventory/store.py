"""The hold store: the Lua scripts of :mod:`marquee_inventory.holds` behind typed calls.

Every method is one script call (one round trip, atomic on the event's slot) plus, for
holds, an update of the cross-event deadline index. A script that finds the event's state
missing raises :class:`StateMissing`; the caller rebuilds it from PostgreSQL and retries.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marquee_inventory import holds
from marquee_inventory.domain import (
    EventNotSelling,
    HoldNotFound,
    PlacesUnavailable,
    SeatState,
    bad_request,
)
from marquee_inventory.holds import EventKeys, reply
from marquee_platform.errors import Gone, InvalidInput


class StateMissing(Exception):
    """The event's seat state is not in Redis (never loaded, or lost): rebuild it."""

    def __init__(self, event_id: uuid.UUID) -> None:
        super().__init__(f"inventory state of event {event_id} is not in Redis")
        self.event_id = event_id


class QueueRequired(Exception):
    """The event is in high-demand mode: holds are applied in arrival order by the queue."""

    def __init__(self, event_id: uuid.UUID) -> None:
        super().__init__(f"event {event_id} takes holds through its queue")
        self.event_id = event_id


class HoldEnded(Gone):
    def __init__(self, hold_id: str) -> None:
        super().__init__(
            f"The hold {hold_id} made with this Idempotency-Key has ended; hold again with "
            "a new key.",
            code="hold-ended",
        )


@dataclass(frozen=True, slots=True)
class HeldPlaces:
    hold_id: str
    event_id: uuid.UUID
    user_id: str
    seats: tuple[tuple[str, uuid.UUID], ...]
    general_admission: tuple[tuple[uuid.UUID, int], ...]
    expires_at: datetime
    availability_version: int


@dataclass(frozen=True, slots=True)
class Availability:
    version: int
    status: str
    seats: dict[str, SeatState]
    general_admission: dict[str, dict[str, int]]
    """Ticket type id → {capacity, held, sold, available}."""

    @property
    def seats_available(self) -> int:
        return sum(1 for state in self.seats.values() if state is SeatState.AVAILABLE)


@dataclass(frozen=True, slots=True)
class Supply:
    """What is left to sell and how much is in play, from the scripts' counters only."""

    version: int
    status: str
    seats_available: int
    live_holds: int
    """Holds in the event's deadline set (a lapsed one until the sweeper releases it)."""
    general_admission: dict[str, dict[str, int]]
    """Ticket type id → {capacity, held, sold, available}, as in :class:`Availability`."""

    @property
    def available(self) -> int:
        return self.seats_available + sum(
            counts["available"] for counts in self.general_admission.values()
        )

    @property
    def held_general_admission(self) -> int:
        return sum(counts["held"] for counts in self.general_admission.values())

    @property
    def sold_general_admission(self) -> int:
        return sum(counts["sold"] for counts in self.general_admission.values())


@dataclass(frozen=True, slots=True)
class RedisGate:
    """Whether holds need a waiting-room admission token, as of ``configured_at``."""

    required: bool
    configured_at: datetime

    def script_args(self) -> dict[str, str]:
        return {
            "gate_required": "1" if self.required else "0",
            "gate_configured_us": str(to_us(self.configured_at)),
        }


NO_GATE_ARGS = {"gate_required": "", "gate_configured_us": "0"}
"""INSTALL's gate arguments for an event PostgreSQL has no gate for (writes none)."""


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """An event's settings as the hold scripts read them."""

    version: int
    status: str
    ttl_ms: int
    max_total: int
    mode: str
    """``direct`` (holds race for places) or ``queued`` (high demand: first come, first served)."""
    ticket_types: dict[str, dict[str, Any]]
    categories: dict[str, str]

    def script_args(self) -> dict[str, Any]:
        """The arguments SET_META and INSTALL both take, by name."""
        return {
            "version": self.version,
            "status": self.status,
            "ttl_ms": self.ttl_ms,
            "max_total": self.max_total,
            "mode": self.mode,
            "types_json": holds.as_json(self.ticket_types),
            "categories_json": holds.as_json(self.categories),
        }


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (PostgreSQL's precision); naive is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_ms(value: int | str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _state(raw: str) -> SeatState:
    if raw == "a":
        return SeatState.AVAILABLE
    return SeatState.HELD if raw.startswith("h:") else SeatState.SOLD


def _pairs(raw: str) -> list[Any]:
    value = json.loads(raw)
    return value if isinstance(value, list) else []  # cjson writes an empty list as {}


ChangeListener = Callable[[uuid.UUID, dict[str, str]], None]
"""Told (event, seat id → new state) after each change, for the real-time nudges."""


def _ignore(event_id: uuid.UUID, seats: dict[str, str]) -> None:
    return None


class HoldStore:
    def __init__(
        self, redis: Any, *, index_prefix: str = "inventory", on_change: ChangeListener = _ignore
    ) -> None:
        self.redis = redis
        self.on_change = on_change
        self.deadline_index = f"{index_prefix}:deadlines"
        """Not tagged (one key for all events): event id → its earliest hold deadline (ms),
        kept beside the scripts and re-checked after every sweep (see expire_due)."""
        self.log_index = f"{index_prefix}:logs"
        """Event ids whose ``T:log`` may hold entries not yet forwarded to Kafka."""

    async def hold(
        self,
        event_id: uuid.UUID,
        *,
        hold_id: str,
        user_id: str,
        seats: Sequence[tuple[str, uuid.UUID | None]],
        general_admission: Sequence[tuple[uuid.UUID, int]],
        now: datetime,
        idempotency_key: str | None = None,
        request_hash: str = "",
        queued: bool = False,
    ) -> HeldPlaces:
        """``request_hash`` identifies the request an ``idempotency_key`` was sent with."""
        keys = EventKeys.of(event_id)
        seats_json = holds.seat_pairs(seats)
        ga_json = holds.ga_pairs(general_admission)
        if idempotency_key and not request_hash:
            request_hash = hashlib.sha256(f"{seats_json}|{ga_json}".encode()).hexdigest()[:32]
        if not idempotency_key:
            request_hash = ""
        result = reply(
            await holds.HOLD.run(
                self.redis,
                **holds.hold_keys(keys, hold_id, user_id, idempotency_key),
                hold_id=hold_id,
                user_id=user_id,
                now_ms=to_ms(now),
                seats_json=seats_json,
                ga_json=ga_json,
                request_hash=request_hash,
                queued="1" if queued else "0",
            )
        )
        outcome = result[0]
        if outcome == "queue":
            raise QueueRequired(event_id)
        if outcome == "replay":
            replayed = await self.get_hold(event_id, str(result[1]))
            if replayed is None:
                raise HoldEnded(str(result[1]))
            return replayed
        if outcome != "ok":
            raise _hold_refusal(event_id, result)
        expires_ms, version = int(result[1]), int(result[2])
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.deadline_index, {str(event_id): expires_ms}, lt=True)
            pipe.sadd(self.log_index, str(event_id))
            await pipe.execute()
        held_seats = tuple((str(seat), uuid.UUID(tt)) for seat, tt in _pairs(str(result[3])))
        self.on_change(event_id, {seat: "held" for seat, _ in held_seats})
        return HeldPlaces(
            hold_id=hold_id,
            event_id=event_id,
            user_id=user_id,
            seats=held_seats,
            general_admission=tuple(general_admission),
            expires_at=from_ms(expires_ms),
            availability_version=version,
        )

    async def replayed_hold(
        self, event_id: uuid.UUID, *, user_id: str, idempotency_key: str, request_hash: str
    ) -> HeldPlaces | None:
        """The hold this Idempotency-Key already made, or None if it made none yet.

        The hold script replays a key itself, but best-available picks its seats among the
        free ones before calling it: a retry whose first attempt took the last seats would
        be told that nothing is left instead of getting its hold back.
        """
        key = holds.hold_keys(EventKeys.of(event_id), "", user_id, idempotency_key)
        seen = await self.redis.get(key["idempotency"])
        if seen is None:
            return None
        hold_id, _, seen_hash = _text(seen).partition(" ")
        if seen_hash != request_hash:
            raise _hold_refusal(event_id, ["idempotency-mismatch"])
        replayed = await self.get_hold(event_id, hold_id)
        if replayed is None:
            raise HoldEnded(hold_id)
        return replayed

    async def get_hold(self, event_id: uuid.UUID, hold_id: str) -> HeldPlaces | None:
        keys = EventKeys.of(event_id)
        raw = await self.redis.hgetall(keys.hold(hold_id))
        if not raw:
            return None
        fields = {_text(name): _text(value) for name, value in raw.items()}
        return HeldPlaces(
            hold_id=hold_id,
            event_id=event_id,
            user_id=fields["user"],
            seats=tuple((str(seat), uuid.UUID(tt)) for seat, tt in _pairs(fields["seats"])),
            general_admission=tuple(
                (uuid.UUID(tt), int(quantity)) for tt, quantity in _pairs(fields["ga"])
            ),
            expires_at=from_ms(fields["expires"]),
            availability_version=0,
        )

    async def release(
        self, event_id: uuid.UUID, hold_id: str, *, user_id: str | None, now: datetime
    ) -> None:
        """Release ``hold_id``; ``user_id=None`` releases anyone's (admins)."""
        keys = EventKeys.of(event_id)
        result = reply(
            await holds.RELEASE.run(
                self.redis,
                **keys.for_script(holds.RELEASE, hold=keys.hold(hold_id)),
                hold_id=hold_id,
                user_id=user_id or "",
                now_ms=to_ms(now),
                user_prefix=keys.user(""),
            )
        )
        if result[0] == "missing":
            raise StateMissing(event_id)
        if result[0] == "not-found":
            raise HoldNotFound(hold_id)
        await self.redis.sadd(self.log_index, str(event_id))
        self.on_change(event_id, {str(seat): "available" for seat, _ in _pairs(result[1])})

    async def expire_due(self, event_id: uuid.UUID, *, now: datetime, limit: int = 500) -> int:
        """Release the event's holds whose deadline passed; returns how many."""
        keys = EventKeys.of(event_id)
        result = reply(
            await holds.EXPIRE_DUE.run(
                self.redis,
                **keys.for_script(holds.EXPIRE_DUE),
                now_ms=to_ms(now),
                limit=limit,
                hold_prefix=keys.hold(""),
                user_prefix=keys.user(""),
            )
        )
        next_deadline, expired = result[0], (len(result) - 1) // 2
        member = str(event_id)
        if next_deadline == "":
            await self.redis.zrem(self.deadline_index, member)
        else:
            await self.redis.zadd(self.deadline_index, {member: int(float(next_deadline))})
        # Close the race with a hold made between the script and the index update above:
        # whatever the earliest deadline is now, the index is at most that.
        earliest = await self.redis.zrange(keys.deadlines, 0, 0, withscores=True)
        if earliest:
            await self.redis.zadd(self.deadline_index, {member: int(earliest[0][1])}, lt=True)
        if expired:
            await self.redis.sadd(self.log_index, member)
            freed = {
                str(seat): "available"
                for index in range(2, len(result), 2)
                for seat, _ in _pairs(result[index])
            }
            self.on_change(event_id, freed)
        return expired

    async def due_events(self, *, now: datetime, limit: int = 1000) -> list[uuid.UUID]:
        members = await self.redis.zrangebyscore(
            self.deadline_index, "-inf", to_ms(now), start=0, num=limit
        )
        return [uuid.UUID(_text(member)) for member in members]

    async def claim_sale(
        self,
        event_id: uuid.UUID,
        *,
        hold_id: str,
        order_id: uuid.UUID,
        user_id: str,
        seats: Sequence[tuple[str, uuid.UUID]],
        general_admission: Sequence[tuple[uuid.UUID, int]],
        now: datetime,
    ) -> list[str] | None:
        """Mark the order's places sold in Redis; None if done, else the places taken."""
        keys = EventKeys.of(event_id)
        result = reply(
            await holds.CLAIM_SALE.run(
                self.redis,
                **keys.for_script(holds.CLAIM_SALE, hold=keys.hold(hold_id)),
                hold_id=hold_id,
                order_id=str(order_id),
                user_id=user_id,
                seats_json=holds.seat_pairs(list(seats)),
                ga_json=holds.ga_pairs(general_admission),
                now_ms=to_ms(now),
                user_prefix=keys.user(""),
            )
        )
        if result[0] == "missing":
            raise StateMissing(event_id)
        await self.redis.sadd(self.log_index, str(event_id))
        if result[0] == "ok":
            self.on_change(event_id, {seat: "sold" for seat, _ in seats})
            return None
        if result[0] == "taken":
            return [str(place) for place in _pairs(result[1])]
        return [str(result[1])]  # 'unknown': a place this event does not have

    async def return_place(
        self,
        event_id: uuid.UUID,
        *,
        seat_id: str | None,
        ticket_type_id: uuid.UUID,
        order_id: uuid.UUID,
    ) -> bool:
        keys = EventKeys.of(event_id)
        result = reply(
            await holds.RETURN_PLACE.run(
                self.redis,
                **keys.for_script(holds.RETURN_PLACE),
                seat_id=seat_id or "",
                ticket_type_id=str(ticket_type_id),
                sold_ref=str(order_id),
            )
        )
        if result[0] == "missing":
            raise StateMissing(event_id)
        return bool(int(result[1]))

    async def set_meta(self, event_id: uuid.UUID, *, config: RedisConfig) -> bool:
        """Apply a catalog change in place; False if the state is not loaded."""
        keys = EventKeys.of(event_id)
        result = reply(
            await holds.SET_META.run(
                self.redis, **keys.for_script(holds.SET_META), **config.script_args()
            )
        )
        return bool(result[0] == "ok")

    async def install(
        self,
        event_id: uuid.UUID,
        *,
        force: bool,
        config: RedisConfig,
        seats: Sequence[tuple[str, str, str | None]],
        sold_general_admission: Mapping[str, int],
        claimed: Mapping[str, str],
        gate: RedisGate | None = None,
    ) -> bool:
        """Write the event's state from PostgreSQL; True if installed (not already there).
        ``gate`` is written with it unless a newer one is there already."""
        keys = EventKeys.of(event_id)
        result = reply(
            await holds.INSTALL.run(
                self.redis,
                **keys.for_script(holds.INSTALL),
                **config.script_args(),
                **(gate.script_args() if gate is not None else NO_GATE_ARGS),
                force="1" if force else "0",
                sold_ga_json=holds.as_json(sold_general_admission),
                claimed_json=holds.as_json(claimed),
                hold_prefix=keys.hold(""),
                seats_blob=holds.seats_blob(seats),
            )
        )
        return bool(result[0] == "installed")

    async def set_admission_gate(self, event_id: uuid.UUID, gate: RedisGate) -> bool:
        """Record the gate unless a newer one is there; True if written. Works whether or
        not the event's state is loaded."""
        keys = EventKeys.of(event_id)
        result = reply(
            await holds.SET_GATE.run(
                self.redis, **keys.for_script(holds.SET_GATE), **gate.script_args()
            )
        )
        return bool(int(result[1]))

    async def admission_required(self, event_id: uuid.UUID) -> bool:
        """Whether holds need an admission token. Read with ``T:meta``'s presence in one
        step: INSTALL writes the gate with the state, so a missing state (raises
        :class:`StateMissing`: rebuild, then ask again) is never taken for "no gate"."""
        keys = EventKeys.of(event_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(keys.meta)
            pipe.hget(keys.gate, "required")
            loaded, required = await pipe.execute()
        if not loaded:
            raise StateMissing(event_id)
        return required is not None and _text(required) == "1"

    async def takes_holds_through_queue(self, event_id: uuid.UUID) -> bool:
        """High-demand mode (the hold script would answer ``queue``)."""
        mode = await self.redis.hget(EventKeys.of(event_id).meta, "mode")
        if mode is None:
            raise StateMissing(event_id)
        return _text(mode) == "queued"

    async def loaded_version(self, event_id: uuid.UUID) -> int | None:
        """The catalog version the event's Redis state reflects; None if not loaded."""
        raw = await self.redis.hget(EventKeys.of(event_id).meta, "version")
        return int(raw) if raw is not None else None

    async def availability(self, event_id: uuid.UUID) -> Availability:
        """Every seat's state (one ``HGETALL`` of the seat map: for the API and
        best-available; background work reads :meth:`counts` instead)."""
        keys = EventKeys.of(event_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(keys.meta, "av", "status")
            pipe.hgetall(keys.seats)
            pipe.hgetall(keys.tt)
            pipe.hgetall(keys.ga)
            (version, status), seats, types, counts = await pipe.execute()
        if version is None:
            raise StateMissing(event_id)
        return Availability(
            version=int(version),
            status=_text(status),
            seats={_text(seat): _state(_text(state)) for seat, state in seats.items()},
            general_admission=_general_admission(types, counts),
        )

    async def counts(
        self, event_id: uuid.UUID, *, seats: Sequence[str] = ()
    ) -> tuple[int, int, dict[str, dict[str, int]], dict[str, SeatState]]:
        """(version, seats available, general-admission counts, the states of ``seats``):
        the scripts' own counters and a few fields, never the whole seat map."""
        keys = EventKeys.of(event_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(keys.meta, "av", "seats_free")
            pipe.hgetall(keys.tt)
            pipe.hgetall(keys.ga)
            if seats:
                pipe.hmget(keys.seats, list(seats))
            answers = await pipe.execute()
        (version, free), types, ga = answers[0], answers[1], answers[2]
        if version is None:
            raise StateMissing(event_id)
        states = (
            {seat: _state(_text(raw)) for seat, raw in zip(seats, answers[3], strict=True) if raw}
            if seats
            else {}
        )
        return int(version), int(free or 0), _general_admission(types, ga), states

    async def supply(self, event_id: uuid.UUID) -> Supply:
        """What is left and in play (one round trip: counters, never the seat map)."""
        keys = EventKeys.of(event_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(keys.meta, "av", "status", "seats_free")
            pipe.hgetall(keys.tt)
            pipe.hgetall(keys.ga)
            pipe.zcard(keys.deadlines)
            (version, status, free), types, ga, live_holds = await pipe.execute()
        if version is None:
            raise StateMissing(event_id)
        return Supply(
            version=int(version),
            status=_text(status),
            seats_available=int(free or 0),
            live_holds=int(live_holds),
            general_admission=_general_admission(types, ga),
        )

    async def availability_version(self, event_id: uuid.UUID) -> int | None:
        raw = await self.redis.hget(EventKeys.of(event_id).meta, "av")
        return int(raw) if raw is not None else None


def _general_admission(
    types: Mapping[Any, Any], counts: Mapping[Any, Any]
) -> dict[str, dict[str, int]]:
    counters = {_text(name): int(value) for name, value in counts.items()}
    general_admission: dict[str, dict[str, int]] = {}
    for raw_id, raw in types.items():
        ticket_type = json.loads(raw)
        if ticket_type["kind"] != "general_admission":
            continue
        tt_id = _text(raw_id)
        held = counters.get(f"{tt_id}:held", 0)
        sold = counters.get(f"{tt_id}:sold", 0)
        capacity = int(ticket_type["cap"])
        general_admission[tt_id] = {
            "capacity": capacity,
            "held": held,
            "sold": sold,
            "available": max(0, capacity - held - sold),
        }
    return general_admission


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _hold_refusal(event_id: uuid.UUID, result: list[Any]) -> Exception:
    outcome = result[0]
    if outcome == "missing":
        return StateMissing(event_id)
    if outcome == "idempotency-mismatch":
        return InvalidInput(
            "This Idempotency-Key was used for another hold request; use a new key.",
            code="idempotency-key-reused",
        )
    if outcome == "closed":
        status = result[1]
        if status == "cancelled":
            return EventNotSelling(
                "This event was cancelled: nothing can be held for it.", code="event-cancelled"
            )
        return EventNotSelling(
            f"This event is not selling (it is {status}).", code="event-not-selling"
        )
    if outcome == "unknown-seat":
        return bad_request(
            f"Seat {result[1]!r} is not a seat of this event.",
            field_path="seats",
            code="unknown-seat",
        )
    if outcome == "no-ticket-type":
        return bad_request(
            f"No ticket type sells seat {result[1]!r} (price category {result[2]!r}).",
            field_path="seats",
            code="seat-not-for-sale",
        )
    if outcome == "unknown-ticket-type":
        return bad_request(
            f"{result[1]} is not a ticket type of this event.",
            field_path="ticket_type_id",
            code="unknown-ticket-type",
        )
    if outcome == "wrong-ticket-type":
        what = f"seat {result[1]!r}" if result[1] else "general admission"
        return bad_request(
            f"Ticket type {result[2]} does not sell {what}: seated ticket types sell the "
            "seats of their price category, general-admission ones sell quantities.",
            field_path="ticket_type_id",
            code="wrong-ticket-type",
        )
    if outcome == "empty":
        return bad_request("Ask for at least one place.", field_path="", code="nothing-requested")
    if outcome == "not-yet":
        return EventNotSelling(
            f"Sales of ticket type {result[1]} open at {from_ms(result[2]).isoformat()}.",
            code="sale-not-open",
        )
    if outcome == "ended":
        return EventNotSelling(
            f"Sales of ticket type {result[1]} closed at {from_ms(result[2]).isoformat()}.",
            code="sale-closed",
        )
    if outcome == "over-cap":
        return bad_request(
            f"At most {result[2]} of ticket type {result[1]} per person; you already hold "
            f"{result[3]}.",
            field_path="",
            code="over-limit",
        )
    if outcome == "under-min":
        return bad_request(
            f"Ticket type {result[1]} is sold in orders of at least {result[2]}.",
            field_path="",
            code="under-minimum",
        )
    if outcome == "over-event-cap":
        return bad_request(
            f"At most {result[1]} tickets per person for this event; you already hold {result[2]}.",
            field_path="",
            code="over-limit",
        )
    if outcome == "unavailable":
        taken = _pairs(result[1])
        shortfall = _pairs(result[2])
        left: dict[str, int] = {"seats": int(result[3])}
        parts = []
        if taken:
            parts.append(f"seats {', '.join(map(str, taken))} are no longer available")
        for index in range(0, len(shortfall), 2):
            left[str(shortfall[index])] = int(shortfall[index + 1])
            parts.append(
                f"only {shortfall[index + 1]} places of ticket type {shortfall[index]} are left"
            )
        return PlacesUnavailable(
            f"Nothing was held: {'; '.join(parts)}. {left['seats']} seats are available.",
            left=left,
        )
    return RuntimeError(f"unexpected answer from the hold script: {result!r}")
