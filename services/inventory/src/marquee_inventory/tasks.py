"""Inventory's background work, each a single-runner periodic task:

- **expire holds** — release holds past their deadline (``T:deadlines``), publishing
  ``hold-expired`` through the event's log;
- **forward hold logs** — copy each event's Redis log (``T:log``) to Kafka at least once,
  then trim what was sent; after an event's entries it sends one coalesced
  ``inventory.availability-changed.v1``;
- **reconcile** — an event whose Redis state is missing or behind PostgreSQL's catalog
  version is (re)loaded, and every admission gate is pushed again (newer wins), so a lost
  Redis or a crash between a commit and its Redis update heals by itself.

And per process, the real-time nudges: availability changes go to the gateway's
per-event channel, coalesced to one message per event per interval.

The Redis client can swallow a cancellation; the platform's periodic loop re-raises it
after each round (``marquee_platform.periodic.raise_if_cancelled``), and the nudges loop
checks it too, so a stopped task stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from marquee_contracts import REGISTRY, CloudEvent
from marquee_contracts.inventory import (
    AVAILABILITY_CHANGED,
    HOLD_CREATED,
    HOLD_EXPIRED,
    HOLD_RELEASED,
    AvailabilityChanged,
    HeldQuantity,
    HeldSeat,
    HoldCreated,
    HoldEnded,
)
from marquee_inventory import handlers
from marquee_inventory.holds import EventKeys
from marquee_inventory.repository import AdmissionGateRepository, EventRepository
from marquee_inventory.store import HoldStore, RedisGate, StateMissing, from_ms
from marquee_platform.clock import Clock
from marquee_platform.db import Database
from marquee_platform.deps import outbox_source
from marquee_platform.kafka import publish
from marquee_platform.periodic import raise_if_cancelled
from marquee_platform.realtime import event_channel
from marquee_platform.realtime import publish as publish_realtime

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


async def honouring_cancellation(work: Awaitable[Result]) -> Result:
    """Await ``work``, then re-raise a cancellation it swallowed.

    redis-py (8.1) can return normally from a command whose task was cancelled while it
    waited for the reply: the request stays counted in ``Task.cancelling()`` but no
    ``CancelledError`` comes out. A periodic task's ``stop()`` cancels once and waits, so a
    round that swallowed it went on to sleep its whole interval and shutdown hung. The
    periodic loop itself now checks after every round; this is for one-off awaits.
    """
    result = await work
    raise_if_cancelled()
    return result


SOURCE = outbox_source("inventory")
_EVENT_IDS = uuid.UUID("0d1c6a52-7a39-4c8e-9a57-1a3b8f0e6f00")
"""Namespace of the CloudEvent ids made from log entries: the same entry forwarded twice
gets the same id, so consumers' inboxes drop the repeat."""
_TOPIC_OF = {
    "hold-created": HOLD_CREATED.name,
    "hold-released": HOLD_RELEASED.name,
    "hold-expired": HOLD_EXPIRED.name,
}


async def expire_holds(
    store: HoldStore, *, clock: Clock, on_change: Callable[[uuid.UUID], None]
) -> int:
    """One sweep: every event with a deadline due; returns the holds released."""
    now = clock()
    released = 0
    for event_id in await store.due_events(now=now):
        try:
            count = await store.expire_due(event_id, now=now)
        except Exception:
            logger.exception("expiring holds of event %s failed", event_id)
            continue
        if count:
            released += count
            on_change(event_id)
    return released


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _places(fields: dict[str, str]) -> tuple[list[HeldSeat], list[HeldQuantity]]:
    seats = json.loads(fields.get("seats") or "[]")
    quantities = json.loads(fields.get("ga") or "[]")
    return (
        [HeldSeat(seat_id=seat, ticket_type_id=tt) for seat, tt in (seats or [])],
        [HeldQuantity(ticket_type_id=tt, quantity=int(q)) for tt, q in (quantities or [])],
    )


def log_entry_event(
    event_id: uuid.UUID, entry_id: str, fields: dict[str, str]
) -> tuple[str, CloudEvent] | None:
    """The Kafka topic and CloudEvent for one log entry (None: not forwarded)."""
    kind = fields.get("type", "")
    topic = _TOPIC_OF.get(kind)
    if topic is None:
        return None
    seats, quantities = _places(fields)
    at = from_ms(fields["at"])
    data: Any
    if kind == "hold-created":
        data = HoldCreated(
            hold_id=fields["hold"],
            event_id=event_id,
            user_id=fields["user"],
            seats=seats,
            general_admission=quantities,
            expires_at=from_ms(fields["expires"]),
            created_at=at,
        )
    else:
        data = HoldEnded(
            hold_id=fields["hold"],
            event_id=event_id,
            user_id=fields["user"],
            seats=seats,
            general_admission=quantities,
            ended_at=at,
        )
    event = REGISTRY.event(topic, data, source=SOURCE, subject=str(event_id))
    event = event.model_copy(
        update={"id": str(uuid.uuid5(_EVENT_IDS, f"{event_id}/{entry_id}")), "time": at}
    )
    return topic, event


async def forward_logs(
    store: HoldStore,
    producer: Any,
    *,
    batch: int = 500,
    topic_names: Mapping[str, str] | None = None,
) -> int:
    """Send every event's new log entries to Kafka, then trim them; returns how many.

    At least once: entries are trimmed only after the broker acknowledged them, so a crash
    in between sends them again (with the same CloudEvent ids). ``topic_names`` sends a
    topic under another name (tests sharing one broker).
    """
    renamed = topic_names or {}
    redis = store.redis
    forwarded = 0
    for raw_member in await redis.smembers(store.log_index):
        event_id = uuid.UUID(_text(raw_member))
        keys = EventKeys.of(event_id)
        entries = await redis.xrange(keys.log, count=batch)
        if not entries:
            await redis.srem(store.log_index, str(event_id))
            # An entry written after our read and before the removal re-adds itself next
            # time its writer runs; look once more so none waits for that.
            if await redis.xlen(keys.log):
                await redis.sadd(store.log_index, str(event_id))
            continue
        sends = []
        for raw_id, raw_fields in entries:
            fields = {_text(name): _text(value) for name, value in raw_fields.items()}
            made = log_entry_event(event_id, _text(raw_id), fields)
            if made is not None:
                topic = renamed.get(made[0], made[0])
                sends.append(publish(producer, topic, made[1], key=str(event_id)))
        await asyncio.gather(*sends)
        try:
            _, seats_available, general_admission, _ = await store.counts(event_id)
        except StateMissing:
            seats_available = None
        if seats_available is not None:
            changed = AvailabilityChanged(
                event_id=event_id,
                seats_available=seats_available,
                general_admission_available={
                    tt: counts["available"] for tt, counts in general_admission.items()
                },
                changed_at=datetime.now(UTC),
            )
            await publish(
                producer,
                renamed.get(AVAILABILITY_CHANGED.name, AVAILABILITY_CHANGED.name),
                REGISTRY.event(
                    AVAILABILITY_CHANGED.name, changed, source=SOURCE, subject=str(event_id)
                ),
                key=str(event_id),
            )
        last = _text(entries[-1][0])
        # XTRIM MINID keeps ids >= the given one; delete the last explicitly.
        await redis.xtrim(keys.log, minid=last, approximate=False)
        await redis.xdel(keys.log, last)
        forwarded += len(entries)
        if len(entries) == batch:
            await redis.sadd(store.log_index, str(event_id))
    return forwarded


async def reconcile(database: Database, store: HoldStore) -> int:
    """Reload every event whose Redis state is missing or behind PostgreSQL's, and push
    every admission gate Redis lacks (or has older); how many were brought up to date."""
    async with database.reading() as session:
        events = await EventRepository(session).loaded_events()
        wanted = {
            event.event_id: (event.version, event.hold_ttl_seconds * 1000) for event in events
        }
        gates = {
            gate.event_id: RedisGate(required=gate.required, configured_at=gate.configured_at)
            for gate in await AdmissionGateRepository(session).all()
        }
    reloaded = 0
    for event_id, gate in gates.items():
        if await store.set_admission_gate(event_id, gate):
            reloaded += 1
    for event_id, (version, ttl_ms) in wanted.items():
        raw = await store.redis.hmget(EventKeys.of(event_id).meta, "version", "ttl_ms")
        if raw[0] is None:
            await handlers.rebuild_event(event_id, database=database, store=store, force=False)
            reloaded += 1
        elif int(raw[0]) < version or int(raw[1]) != ttl_ms:
            await handlers.push_config(event_id, database=database, store=store)
            reloaded += 1
        await store.redis.sadd(store.log_index, str(event_id))  # a backstop for lost index entries
    if reloaded:
        logger.info("reconciled %d events' Redis state with PostgreSQL", reloaded)
    return reloaded


_MAX_SEATS_PER_NUDGE = 500


class AvailabilityNudges:
    """Per process: events whose availability changed, published to their real-time
    channel at most once per ``interval`` each, with the seats this process changed
    (``seats``: id → state) — or ``refetch: true`` when too many changed to list, so a seat
    map in a browser stays live without ever seeing more than a few messages a second."""

    def __init__(self, store: HoldStore, *, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._dirty: dict[uuid.UUID, dict[str, str]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def changed(self, event_id: uuid.UUID, seats: dict[str, str] | None = None) -> None:
        self._dirty.setdefault(event_id, {}).update(seats or {})
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="availability-nudges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, {}
            for event_id, seats in dirty.items():
                try:
                    await self._publish(event_id, seats)
                except Exception as error:  # a lost nudge costs a browser a refetch
                    logger.warning("availability nudge for %s failed: %s", event_id, error)
                raise_if_cancelled()  # stop() must not wait for a wake-up that never comes
            await asyncio.sleep(self._interval)

    async def _publish(self, event_id: uuid.UUID, seats: dict[str, str]) -> None:
        refetch = len(seats) > _MAX_SEATS_PER_NUDGE
        # The counters and the changed seats' states now (a seat held then released since
        # shows free), never the whole seat map.
        version, seats_available, general_admission, states = await self._store.counts(
            event_id, seats=() if refetch else list(seats)
        )
        message: dict[str, Any] = {
            "event_id": str(event_id),
            "version": version,
            "seats_available": seats_available,
            "general_admission": {
                tt: counts["available"] for tt, counts in general_admission.items()
            },
        }
        if refetch:
            message["refetch"] = True
        else:
            message["seats"] = {seat: state.value for seat, state in states.items()}
        await publish_realtime(
            self._store.redis, event_channel(event_id), "availability-changed", message
        )


Job = Callable[[], Awaitable[Any]]
