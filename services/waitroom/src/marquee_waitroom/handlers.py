"""What the waitroom does, apart from HTTP: on-sale configuration, joining, where a fan
stands, the fairness record, join and poll limits, and the catalog it learns organizers
from."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert

from marquee_contracts.catalog import EventChanged
from marquee_contracts.waitroom import ONSALE_CONFIGURED, OnSaleConfigured
from marquee_platform.db import WriteSession, after_commit
from marquee_platform.errors import Conflict, InvalidInput, NotFound, RateLimited
from marquee_platform.lua import LuaScript, hash_tag, tagged_key
from marquee_platform.outbox import Outbox
from marquee_platform.security import Principal, Role
from marquee_waitroom import fairness
from marquee_waitroom.admission import to_ms
from marquee_waitroom.models import OnSale, WaitroomEvent
from marquee_waitroom.queue import OnSaleTimes, Place, QueueStore
from marquee_waitroom.schemas import OnSaleWrite
from marquee_waitroom.tokens import from_timestamp_ms

# ---- catalog -----------------------------------------------------------------------------


async def apply_event_changed(session: WriteSession, message: EventChanged) -> bool:
    """Keep the newest snapshot's organizer and status; an older version changes nothing."""
    statement = insert(WaitroomEvent).values(
        event_id=message.event_id,
        version=message.version,
        organizer_id=message.organizer_id,
        name=message.name[:200],
        status="deleted" if message.deleted else message.status,
        updated_at=message.updated_at,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[WaitroomEvent.event_id],
        set_={
            "version": statement.excluded.version,
            "organizer_id": statement.excluded.organizer_id,
            "name": statement.excluded.name,
            "status": statement.excluded.status,
            "updated_at": statement.excluded.updated_at,
        },
        where=WaitroomEvent.version < statement.excluded.version,
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def managed_event(
    session: WriteSession, event_id: uuid.UUID, user: Principal
) -> WaitroomEvent:
    """The event, if the caller organizes it (with the organizer role) or is an admin; a
    404 otherwise, so another organizer's event ids are not confirmed."""
    event = await session.get(WaitroomEvent, event_id)
    organizer = user.has_role(Role.ORGANIZER)
    if event is None or not (user.is_admin or (organizer and event.organizer_id == user.user_id)):
        raise NotFound(f"There is no event {event_id} of yours.", code="event-not-found")
    return event


# ---- on-sale configuration --------------------------------------------------------------


def times_of(onsale: OnSale) -> OnSaleTimes:
    return OnSaleTimes(
        opens_ms=to_ms(onsale.queue_opens_at),
        starts_ms=to_ms(onsale.sale_starts_at),
        window_ms=onsale.admission_window_seconds * 1000,
        grace_ms=onsale.grace_seconds * 1000,
        max_active=onsale.max_active or 0,
        adaptive=onsale.adaptive,
    )


async def configure_onsale(
    session: WriteSession,
    *,
    event_id: uuid.UUID,
    body: OnSaleWrite,
    user: Principal,
    outbox: Outbox,
    store: QueueStore,
    now: datetime,
) -> tuple[OnSale, bool]:
    """Create or change an event's on-sale; returns it and whether it is new.

    The seed is drawn once, when the on-sale is created, so its commitment is public
    before anyone can join. Once the queue has opened its times are fixed (the commitment
    was made for them); the limits, window and grace may still change."""
    event = await managed_event(session, event_id, user)
    if event.status in ("cancelled", "deleted"):
        raise Conflict(
            f"Event {event_id} is {event.status}: it has no sale to queue for.",
            code="event-not-selling",
        )
    onsale = await session.get(OnSale, event_id, with_for_update=True)
    created = onsale is None
    times_changed = created or (
        onsale is not None
        and (
            onsale.queue_opens_at != body.queue_opens_at
            or onsale.sale_starts_at != body.sale_starts_at
        )
    )
    if onsale is not None and times_changed and now >= onsale.queue_opens_at:
        raise Conflict(
            f"The queue opened at {onsale.queue_opens_at.isoformat()}: its opening and start "
            "times can no longer change (the fairness commitment was made for them). You may "
            "still change max_active, admission_window_seconds, grace_seconds and adaptive.",
            code="onsale-started",
        )
    if times_changed and body.queue_opens_at <= now:
        raise InvalidInput(
            "queue_opens_at must be in the future: the seed's commitment has to be public "
            "before anyone can join.",
            code="queue-opens-in-past",
        )
    if onsale is None:
        seed = fairness.new_seed()
        onsale = OnSale(
            event_id=event_id,
            seed=seed,
            seed_commitment=fairness.commitment(seed),
            created_by=user.user_id,
            created_at=now,
        )
        session.add(onsale)
    onsale.queue_opens_at = body.queue_opens_at
    onsale.sale_starts_at = body.sale_starts_at
    onsale.max_active = body.max_active
    onsale.admission_window_seconds = body.admission_window_seconds
    onsale.grace_seconds = body.grace_seconds
    onsale.adaptive = body.adaptive
    onsale.updated_at = now
    await session.flush()
    await outbox.add(
        ONSALE_CONFIGURED.name,
        OnSaleConfigured(
            event_id=event_id,
            queue_opens_at=onsale.queue_opens_at,
            sale_starts_at=onsale.sale_starts_at,
            admission_required=True,
            configured_at=now,
        ),
        key=event_id,
    )
    times = times_of(onsale)

    async def install() -> None:
        await store.configure(event_id, times)

    after_commit(session, install)
    return onsale, created


# ---- joining and standing ---------------------------------------------------------------


def new_ticket() -> str:
    """128 random bits, URL-safe: unguessable, and worthless without its account."""
    return "q_" + secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class Joined:
    place: Place
    created: bool


async def join(store: QueueStore, event_id: uuid.UUID, user_id: str, *, now_ms: int) -> Joined:
    outcome = await store.join(event_id, user_id, new_ticket(), now_ms)
    if outcome[0] == "unknown":
        raise NotFound(
            f"Event {event_id} has no waiting room: hold places directly.", code="no-queue"
        )
    if outcome[0] == "not-open":
        opens = from_timestamp_ms(int(outcome[1]))
        raise Conflict(
            f"The queue for event {event_id} opens at {opens.isoformat()}; join then.",
            code="queue-not-open",
            opens_at=opens.isoformat(),
        )
    place = await store.me(event_id, user_id, now_ms=now_ms, touch=False)
    return Joined(place, created=outcome[0] == "joined")


COUNT_IN_WINDOW = LuaScript(
    "waitroom-count-in-window",
    keys=("counter",),
    args=("window_ms",),
    source="""
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
""",
)


async def limit(redis: object, *, scope: str, who: str, per_minute: int, what: str) -> None:
    """A fixed one-minute window per (scope, who); over it, a 429 with Retry-After."""
    counter = tagged_key(hash_tag("wrlim", scope), who)
    count, ttl_ms = await COUNT_IN_WINDOW.run(redis, counter=counter, window_ms=60_000)
    if int(count) > per_minute:
        retry = max(1, (int(ttl_ms) + 999) // 1000)
        raise RateLimited(
            f"Too many {what}: at most {per_minute} a minute. Waiting in the queue keeps your "
            "place; asking more often does not move you up. Follow the event's stream "
            "instead.",
            retry_after_seconds=retry,
        )
