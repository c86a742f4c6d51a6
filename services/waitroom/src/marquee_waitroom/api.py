"""The waitroom API under ``/api/v1/waitroom``: on-sales, the queue, fairness, the JWKS.

Joining and standing read and write Redis only (one Lua script each); PostgreSQL is
touched by organizers configuring an on-sale and once per sale for the seed. Each
summary says who may call.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy import select

from marquee_platform.deps import ClockDep, OutboxDep
from marquee_platform.errors import NotFound
from marquee_platform.forwarding import client_address, parse_networks
from marquee_platform.http import WriteSessionDep, router
from marquee_platform.security import CurrentUser
from marquee_waitroom import fairness, handlers, waitlist
from marquee_waitroom.admission import admission_token, now_ms, observed_rate, to_ms
from marquee_waitroom.keys import AdmissionKeys
from marquee_waitroom.models import OnSale, WaitlistEntry
from marquee_waitroom.queue import Admitted, Place, QueueStats, QueueStore
from marquee_waitroom.schemas import (
    Fairness,
    OnSaleRead,
    OnSaleWrite,
    QueueCounts,
    QueuePlace,
    WaitlistJoin,
    WaitlistLength,
    WaitlistLengths,
    WaitlistPlace,
)
from marquee_waitroom.settings import WaitroomSettings
from marquee_waitroom.tokens import from_timestamp_ms, jwks_document

waitroom = router(prefix="/api/v1/waitroom", tags=["waitroom"])

EVENT = "/events/{event_id:uuid}"


async def _store(request: Request) -> QueueStore:
    store: QueueStore = request.app.state.queue_store
    return store


async def _keys(request: Request) -> AdmissionKeys:
    keys: AdmissionKeys = request.app.state.admission_keys
    return keys


async def _settings(request: Request) -> WaitroomSettings:
    settings: WaitroomSettings = request.app.state.settings
    return settings


StoreDep = Annotated[QueueStore, Depends(_store)]
KeysDep = Annotated[AdmissionKeys, Depends(_keys)]
SettingsDep = Annotated[WaitroomSettings, Depends(_settings)]


def _state_name(onsale: OnSale, stats: QueueStats | None, now: int) -> str:
    if now < to_ms(onsale.queue_opens_at):
        return "scheduled"
    redis_state = stats.state if stats else "pre"
    return {"pre": "pre-queue", "closed": "starting"}.get(redis_state, redis_state)


def _counts(stats: QueueStats, settings: WaitroomSettings) -> QueueCounts:
    return QueueCounts(
        pre_queue=stats.pre_queue,
        waiting=stats.waiting,
        serving=stats.head,
        admitted=stats.admitted,
        active=stats.active,
        rate_per_minute=round(observed_rate(stats, window_s=settings.rate_window_seconds) * 60, 1),
    )


def _onsale_read(
    onsale: OnSale, stats: QueueStats | None, now: int, settings: WaitroomSettings
) -> OnSaleRead:
    return OnSaleRead(
        event_id=onsale.event_id,
        queue_opens_at=onsale.queue_opens_at,
        sale_starts_at=onsale.sale_starts_at,
        max_active=onsale.max_active,
        admission_window_seconds=onsale.admission_window_seconds,
        grace_seconds=onsale.grace_seconds,
        adaptive=onsale.adaptive,
        state=_state_name(onsale, stats, now),
        seed_commitment=onsale.seed_commitment,
        counts=_counts(stats, settings) if stats else None,
    )


@waitroom.put(
    EVENT + "/onsale",
    summary="Set up or change an event's on-sale through the waiting room (its organizer, admins)",
    response_model=OnSaleRead,
    responses={
        201: {"description": "Created: the seed's commitment is public from now on"},
        404: {"description": "No such event of yours"},
        409: {"description": "The queue opened: its times can no longer change"},
    },
)
async def put_onsale(
    event_id: uuid.UUID,
    body: OnSaleWrite,
    user: CurrentUser,
    session: WriteSessionDep,
    outbox: OutboxDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
) -> OnSaleRead:
    """From the moment this answers, holds for the event need an admission token from the
    queue. ``seed_commitment`` is the SHA-256 of the seed the pre-queue will be shuffled
    with; it never changes, and the seed is revealed at the sale start
    (``GET …/queue/fairness``)."""
    now = clock()
    onsale, created = await handlers.configure_onsale(
        session, event_id=event_id, body=body, user=user, outbox=outbox, store=store, now=now
    )
    response.status_code = 201 if created else 200
    return _onsale_read(onsale, None, to_ms(now), settings)


async def _onsale(session: WriteSessionDep, event_id: uuid.UUID) -> OnSale:
    onsale = await session.get(OnSale, event_id)
    if onsale is None:
        raise NotFound(f"Event {event_id} has no waiting room.", code="no-queue")
    return onsale


@waitroom.get(
    EVENT + "/onsale",
    summary="An event's on-sale: times, limits, state, counts and commitment (anyone)",
    response_model=OnSaleRead,
    responses={404: {"description": "The event has no waiting room"}},
)
async def get_onsale(
    event_id: uuid.UUID,
    session: WriteSessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> OnSaleRead:
    onsale = await _onsale(session, event_id)
    now = to_ms(clock())
    stats = await store.stats(event_id, since_ms=now - settings.rate_window_seconds * 1000)
    return _onsale_read(onsale, stats, now, settings)


def _client(request: Request, settings: WaitroomSettings) -> str:
    peer = request.client.host if request.client else None
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return client_address(peer, forwarded, parse_networks(settings.trusted_proxies))


async def _place(
    event_id: uuid.UUID,
    place: Place,
    *,
    user_id: str,
    store: QueueStore,
    keys: AdmissionKeys,
    settings: WaitroomSettings,
    now: int,
) -> QueuePlace:
    assert place.ticket is not None
    config = await store.config(event_id)
    stats = await store.stats(event_id, since_ms=now - settings.rate_window_seconds * 1000)
    rate = observed_rate(stats, window_s=settings.rate_window_seconds) if stats else 0.0
    status = place.status
    token: str | None = None
    expires = None
    if status == "waiting" and place.state == "sold-out":
        status = "sold-out"
    elif status == "gone":
        status = place.gone_reason or "gone"
    elif status == "admitted":
        assert place.admitted_ms is not None
        assert place.expires_ms is not None
        expires = from_timestamp_ms(place.expires_ms)
        if place.expires_ms <= now:
            status = "admission-lapsed"
        else:
            token = admission_token(
                await keys.current(),
                event_id,
                Admitted(
                    ticket=place.ticket,
                    account=user_id,
                    number=place.number or 0,
                    admitted_ms=place.admitted_ms,
                    expires_ms=place.expires_ms,
                ),
            )
    wait = None
    if status == "waiting" and place.ahead is not None and rate > 0:
        wait = int(place.ahead / rate)
    return QueuePlace(
        event_id=event_id,
        ticket=place.ticket,
        status=status,
        number=place.number,
        ahead=place.ahead if status in ("waiting", "sold-out") else None,
        serving=stats.head if stats and stats.head else None,
        pre_queue=place.pre_queue,
        estimated_wait_seconds=wait,
        sale_starts_at=from_timestamp_ms(config.starts_ms),
        admission_token=token,
        admission_expires_at=expires,
        stream=f"/api/v1/stream?events={event_id}",
    )


@waitroom.post(
    EVENT + "/queue",
    summary="Join an event's queue: one place per account (signed-in fans)",
    response_model=QueuePlace,
    responses={
        201: {"description": "Joined: your place"},
        200: {"description": "You were already in this queue: the same place"},
        404: {"description": "The event has no waiting room"},
        409: {"description": "The queue is not open yet (says when it opens)"},
        429: {"description": "Too many joins from this account or address"},
    },
)
async def join_queue(
    event_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    keys: KeysDep,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
) -> QueuePlace:
    """Joining again returns the place you have. Before the sale starts you are in the
    pre-queue, whose order is drawn fairly at the start; after it, you queue behind
    everyone already there. Keep the page open (or poll ``…/queue/me``): a fan away longer
    than the grace period when their turn comes is passed over. When your turn comes your
    real-time channel says ``admission-granted`` with the token."""
    redis = store.redis
    await handlers.limit(
        redis,
        scope="join-account",
        who=user.user_id,
        per_minute=settings.joins_per_minute_per_account,
        what="joins from this account",
    )
    await handlers.limit(
        redis,
        scope="join-ip",
        who=_client(request, settings),
        per_minute=settings.joins_per_minute_per_ip,
        what="joins from this address",
    )
    now = now_ms(clock)
    joined = await handlers.join(store, event_id, user.user_id, now_ms=now)
    response.status_code = 201 if joined.created else 200
    return await _place(
        event_id,
        joined.place,
        user_id=user.user_id,
        store=store,
        keys=keys,
        settings=settings,
        now=now,
    )


@waitroom.get(
    EVENT + "/queue/me",
    summary="Where you stand in an event's queue, and your token once admitted (the fan)",
    response_model=QueuePlace,
    responses={
        404: {"description": "You are not in this queue"},
        429: {"description": "Polling too often: follow the stream"},
    },
)
async def my_place(
    event_id: uuid.UUID,
    user: CurrentUser,
    store: StoreDep,
    keys: KeysDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> QueuePlace:
    """Asking also tells the queue you are still here (the grace period restarts)."""
    await handlers.limit(
        store.redis,
        scope="poll",
        who=f"{user.user_id}:{event_id}",
        per_minute=settings.polls_per_minute_per_account,
        what="position checks",
    )
    now = now_ms(clock)
    place = await store.me(event_id, user.user_id, now_ms=now, touch=True)
    if place.status == "none":
        raise NotFound(f"You are not in the queue of event {event_id}.", code="not-in-queue")
    return await _place(
        event_id, place, user_id=user.user_id, store=store, keys=keys, settings=settings, now=now
    )


@waitroom.get(
    EVENT + "/queue/fairness",
    summary="The shuffle's commitment and, after the start, its seed and tickets (anyone)",
    response_model=Fairness,
    responses={404: {"description": "The event has no waiting room"}},
)
async def queue_fairness(
    event_id: uuid.UUID, session: WriteSessionDep, store: StoreDep, clock: ClockDep
) -> Fairness:
    """Recompute the order yourself: ``sorted(pre_queue, key=sha256(seed + b":" +
    ticket))``, or ``marquee waitroom verify``. The seed is revealed once the pre-queue has
    closed (at the sale start)."""
    onsale = await _onsale(session, event_id)
    stats = await store.stats(event_id, since_ms=0)
    closed = stats is not None and stats.state not in ("pre", "")
    if not closed:
        return Fairness(event_id=event_id, seed_commitment=onsale.seed_commitment, revealed=False)
    tickets = await store.pre_queue(event_id)
    return Fairness(
        event_id=event_id,
        seed_commitment=onsale.seed_commitment,
        revealed=True,
        seed=onsale.seed.hex(),
        pre_queue=tickets,
        order=fairness.shuffled(onsale.seed, tickets),
    )


@waitroom.get(
    "/.well-known/jwks.json",
    summary="The public keys admission tokens are signed with (anyone; inventory reads it)",
)
async def admission_jwks(keys: KeysDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=60"
    return jwks_document(await keys.published())


# ---- the sold-out waitlist ---------------------------------------------------------------


async def _waitlist_place(
    session: WriteSessionDep, entry: WaitlistEntry, keys: AdmissionKeys, now: datetime
) -> WaitlistPlace:
    offered = (
        entry.state == "offered"
        and entry.offer_expires_at is not None
        and entry.offer_expires_at > now
    )
    return WaitlistPlace(
        event_id=entry.event_id,
        entry_id=entry.entry_id,
        ticket_type_id=entry.ticket_type_id,
        quantity=entry.quantity,
        state=entry.state,
        ahead=await waitlist.ahead_of(session, entry) if entry.state == "waiting" else None,
        joined_at=entry.joined_at,
        admission_token=waitlist.offer_token(await keys.current(), entry) if offered else None,
        offer_expires_at=entry.offer_expires_at if entry.state == "offered" else None,
    )


@waitroom.post(
    EVENT + "/waitlist",
    summary="Join a sold-out event's waitlist for a ticket type (signed-in fans)",
    response_model=WaitlistPlace,
    responses={
        201: {"description": "Joined"},
        200: {"description": "You were on it already: your entry"},
        404: {"description": "The event has no waiting room"},
        409: {"description": "Not sold out: join the queue instead"},
    },
)
async def join_waitlist(
    event_id: uuid.UUID,
    body: WaitlistJoin,
    user: CurrentUser,
    session: WriteSessionDep,
    store: StoreDep,
    keys: KeysDep,
    clock: ClockDep,
    response: Response,
) -> WaitlistPlace:
    """When places come back (a hold expires unpaid, a ticket is refunded, capacity grows)
    the next fan whose party fits gets an offer: a token to hold them with, on your
    real-time channel (``waitlist-offered``) and here, for a limited time. One entry per
    account and event."""
    now = clock()
    entry, created = await waitlist.join(
        session,
        store,
        event_id=event_id,
        user_id=user.user_id,
        ticket_type_id=body.ticket_type_id,
        quantity=body.quantity,
        now=now,
    )
    response.status_code = 201 if created else 200
    return await _waitlist_place(session, entry, keys, now)


async def _my_entry(session: WriteSessionDep, event_id: uuid.UUID, user_id: str) -> WaitlistEntry:
    query = (
        select(WaitlistEntry)
        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.user_id == user_id)
        .order_by(WaitlistEntry.joined_at.desc())
        .limit(1)
    )
    entry = (await session.execute(query)).scalar_one_or_none()
    if entry is None:
        raise NotFound(f"You are not on the waitlist of event {event_id}.", code="not-on-waitlist")
    return entry


@waitroom.get(
    EVENT + "/waitlist/me",
    summary="Your place on an event's waitlist, and your offer when you have one (the fan)",
    response_model=WaitlistPlace,
    responses={404: {"description": "You are not on this waitlist"}},
)
async def my_waitlist_place(
    event_id: uuid.UUID,
    user: CurrentUser,
    session: WriteSessionDep,
    keys: KeysDep,
    clock: ClockDep,
) -> WaitlistPlace:
    entry = await _my_entry(session, event_id, user.user_id)
    return await _waitlist_place(session, entry, keys, clock())


@waitroom.delete(
    EVENT + "/waitlist/me",
    status_code=204,
    summary="Leave an event's waitlist (the fan)",
    responses={404: {"description": "You are not on this waitlist"}},
)
async def leave_waitlist(
    event_id: uuid.UUID, user: CurrentUser, session: WriteSessionDep, clock: ClockDep
) -> Response:
    entry = await _my_entry(session, event_id, user.user_id)
    if entry.state in waitlist.LIVE:
        entry.state = "left"
        entry.updated_at = clock()
    return Response(status_code=204)


@waitroom.get(
    EVENT + "/waitlist",
    summary="How long an event's waitlist is, per ticket type (its organizer, admins)",
    response_model=WaitlistLengths,
    responses={404: {"description": "No such event of yours"}},
)
async def waitlist_lengths(
    event_id: uuid.UUID, user: CurrentUser, session: WriteSessionDep
) -> WaitlistLengths:
    await handlers.managed_event(session, event_id, user)
    return WaitlistLengths(
        event_id=event_id,
        ticket_types=[WaitlistLength(**row) for row in await waitlist.lengths(session, event_id)],
    )
