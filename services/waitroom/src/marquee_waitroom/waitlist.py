"""The sold-out waitlist: fans wait for places of a ticket type to come back, and each
place that does is offered to the next fan in line whose party fits.

**Where the places come from.** A hold that expires unpaid, a refunded ticket, more
capacity: each shows up as places inventory reports available again (``GET …/supply``).
The waitlist takes them first: while it has demand, the queue's adaptive admission leaves
those places alone (the round's budget subtracts what the waitlist reserves), so a fan who
waited on the waitlist is not beaten to them by the queue.

**An offer** is an admission for one fan, for their ticket type and quantity, until a
deadline (default 10 minutes): a token they hold places with (inventory checks it like any
admission token), a ``waitlist-offered`` message on their real-time channel and
``waitroom.waitlist-offered.v1`` for notifications (both from one transaction). A hold by
the fan keeps the offer alive while the hold lives; a purchase (``sale-confirmed``) ends it
as ``bought``; an offer not taken in time ends ``expired`` and its places go to the next fan.

**Parties are not skipped forever.** Offers go in line order to the first fan whose
quantity fits what came back. When a smaller party behind a fan gets an offer, that fan is
*passed over* once; after :data:`PASS_LIMIT` times, nobody behind them is offered that
ticket type until enough places have come back for their whole party (returned places
accumulate for them instead of trickling past).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from marquee_contracts.waitroom import WAITLIST_OFFERED, WaitlistOffered
from marquee_platform.clock import Clock, utc_now
from marquee_platform.db import Database, WriteSession, after_commit
from marquee_platform.deps import outbox_source
from marquee_platform.errors import Conflict, NotFound
from marquee_platform.outbox import Outbox
from marquee_platform.realtime import publish, user_channel
from marquee_waitroom.admission import Supply, SupplyReader
from marquee_waitroom.models import OnSale, WaitlistEntry
from marquee_waitroom.queue import QueueStore
from marquee_waitroom.tokens import AdmissionKey, sign_admission

log = logging.getLogger(__name__)

PASS_LIMIT = 3
"""Times a party may be passed over by smaller ones behind it before places wait for it."""
LIVE = ("waiting", "offered")


def offer_token(key: AdmissionKey, entry: WaitlistEntry) -> str:
    assert entry.offered_at is not None
    assert entry.offer_expires_at is not None
    return sign_admission(
        key,
        event_id=entry.event_id,
        user_id=entry.user_id,
        admission_id=f"wl_{entry.entry_id}",
        admitted_at=entry.offered_at,
        expires_at=entry.offer_expires_at,
    )


async def join(
    session: WriteSession,
    store: QueueStore,
    *,
    event_id: uuid.UUID,
    user_id: str,
    ticket_type_id: uuid.UUID,
    quantity: int,
    now: datetime,
) -> tuple[WaitlistEntry, bool]:
    """Join (or find) the fan's entry; True when new. Only a sold-out on-sale has one."""
    existing = await live_entry(session, event_id, user_id)
    if existing is not None:
        return existing, False
    if await session.get(OnSale, event_id) is None:
        raise NotFound(f"Event {event_id} has no waiting room, so no waitlist.", code="no-queue")
    stats = await store.stats(event_id, since_ms=0)
    if stats is None or stats.state != "sold-out":
        raise Conflict(
            f"Event {event_id} is not sold out: join its queue instead "
            f"(POST /api/v1/waitroom/events/{event_id}/queue).",
            code="not-sold-out",
        )
    entry = WaitlistEntry(
        entry_id=uuid.uuid4(),
        event_id=event_id,
        ticket_type_id=ticket_type_id,
        user_id=user_id,
        quantity=quantity,
        state="waiting",
        passed_over=0,
        offers=0,
        joined_at=now,
        updated_at=now,
    )
    session.add(entry)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # Another request of the same fan joined a moment before: that is their entry.
        again = await live_entry(session, event_id, user_id)
        if again is None:
            raise
        return again, False
    return entry, True


async def live_entry(
    session: WriteSession, event_id: uuid.UUID, user_id: str
) -> WaitlistEntry | None:
    query = select(WaitlistEntry).where(
        WaitlistEntry.event_id == event_id,
        WaitlistEntry.user_id == user_id,
        WaitlistEntry.state.in_(LIVE),
    )
    return (await session.execute(query)).scalar_one_or_none()


async def ahead_of(session: WriteSession, entry: WaitlistEntry) -> int:
    query = select(func.count()).where(
        WaitlistEntry.event_id == entry.event_id,
        WaitlistEntry.ticket_type_id == entry.ticket_type_id,
        WaitlistEntry.state == "waiting",
        WaitlistEntry.joined_at < entry.joined_at,
    )
    return int((await session.execute(query)).scalar_one())


async def lengths(session: WriteSession, event_id: uuid.UUID) -> list[dict[str, Any]]:
    """Per ticket type: fans waiting, offers out, places wanted (for the organizer)."""
    query = (
        select(
            WaitlistEntry.ticket_type_id,
            WaitlistEntry.state,
            func.count(),
            func.coalesce(func.sum(WaitlistEntry.quantity), 0),
        )
        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.state.in_(LIVE))
        .group_by(WaitlistEntry.ticket_type_id, WaitlistEntry.state)
    )
    counts: dict[uuid.UUID, dict[str, Any]] = {}
    for ticket_type_id, state, fans, places in await session.execute(query):
        row = counts.setdefault(
            ticket_type_id,
            {"ticket_type_id": ticket_type_id, "waiting": 0, "offered": 0, "places_wanted": 0},
        )
        row[state] = int(fans)
        row["places_wanted"] += int(places)
    return sorted(counts.values(), key=lambda row: str(row["ticket_type_id"]))


# ---- the offer round ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    entry_id: uuid.UUID
    user_id: str
    ticket_type_id: uuid.UUID
    quantity: int
    token: str
    expires_at: datetime


@dataclass
class WaitlistOffers:
    """Each round: expire lapsed offers, offer what came back, tell the queue what the
    waitlist reserves. One replica runs it (single-runner periodic task)."""

    database: Database
    store: QueueStore
    redis: Any
    supply: SupplyReader
    signing_key: Callable[[], Awaitable[AdmissionKey]]
    clock: Clock = utc_now
    offer_seconds: int = 600

    async def run_round(self) -> int:
        async with self.database.reading() as session:
            events = list(
                (
                    await session.execute(
                        select(WaitlistEntry.event_id)
                        .where(WaitlistEntry.state.in_(LIVE))
                        .distinct()
                    )
                ).scalars()
            )
        offered = 0
        for event_id in events:
            try:
                offered += len(await self.offer_event(event_id))
            except Exception:
                log.exception("waitlist round of event %s failed", event_id)
        return offered

    async def offer_event(self, event_id: uuid.UUID) -> list[Offer]:
        now = self.clock()
        supply = await self.supply(event_id)
        key = await self.signing_key()
        offers: list[Offer] = []
        async with self.database.transaction() as session:
            await session.execute(
                update(WaitlistEntry)
                .where(
                    WaitlistEntry.event_id == event_id,
                    WaitlistEntry.state == "offered",
                    WaitlistEntry.offer_expires_at <= now,
                )
                .values(state="expired", updated_at=now)
            )
            entries = list(
                (
                    await session.execute(
                        select(WaitlistEntry)
                        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.state.in_(LIVE))
                        .order_by(WaitlistEntry.joined_at, WaitlistEntry.entry_id)
                        .with_for_update()
                    )
                ).scalars()
            )
            reserved = sum(entry.quantity for entry in entries)
            if supply is not None:
                offers = self._offer(session, entries, supply, key, now)
            await self.store.set_waitlist_reserve(
                event_id, sum(e.quantity for e in entries if e.state in LIVE)
            )
            outbox = Outbox(session, source=outbox_source("waitroom"))
            for offer in offers:
                await outbox.add(
                    WAITLIST_OFFERED.name,
                    WaitlistOffered(
                        event_id=event_id,
                        user_id=offer.user_id,
                        entry_id=offer.entry_id,
                        ticket_type_id=offer.ticket_type_id,
                        quantity=offer.quantity,
                        offered_at=now,
                        expires_at=offer.expires_at,
                    ),
                    key=event_id,
                )

            async def tell() -> None:
                for offer in offers:
                    await publish(
                        self.redis,
                        user_channel(offer.user_id),
                        "waitlist-offered",
                        {
                            "event_id": str(event_id),
                            "ticket_type_id": str(offer.ticket_type_id),
                            "quantity": offer.quantity,
                            "admission_token": offer.token,
                            "expires_at": offer.expires_at.isoformat(),
                        },
                    )

            after_commit(session, tell)
        if offers:
            log.info(
                "waitlist of %s: %d offer(s), %d place(s) reserved", event_id, len(offers), reserved
            )
        return offers

    def _offer(
        self,
        session: WriteSession,
        entries: list[WaitlistEntry],
        supply: Supply,
        key: AdmissionKey,
        now: datetime,
    ) -> list[Offer]:
        free = dict(supply.ticket_types)
        for entry in entries:
            if entry.state == "offered":
                tt = str(entry.ticket_type_id)
                free[tt] = free.get(tt, 0) - entry.quantity
        blocked: set[str] = set()
        skipped: dict[str, list[WaitlistEntry]] = defaultdict(list)
        offers: list[Offer] = []
        for entry in entries:
            tt = str(entry.ticket_type_id)
            if entry.state != "waiting" or tt in blocked:
                continue
            if entry.quantity > free.get(tt, 0):
                if entry.passed_over >= PASS_LIMIT:
                    blocked.add(tt)  # places now accumulate for this party
                else:
                    skipped[tt].append(entry)
                continue
            for passed in skipped.pop(tt, []):
                passed.passed_over += 1
                passed.updated_at = now
            free[tt] -= entry.quantity
            entry.state = "offered"
            entry.offers += 1
            entry.offered_at = now
            entry.offer_expires_at = now + timedelta(seconds=self.offer_seconds)
            entry.updated_at = now
            offers.append(
                Offer(
                    entry_id=entry.entry_id,
                    user_id=entry.user_id,
                    ticket_type_id=entry.ticket_type_id,
                    quantity=entry.quantity,
                    token=offer_token(key, entry),
                    expires_at=entry.offer_expires_at,
                )
            )
        return offers


async def hold_placed(
    session: WriteSession, event_id: uuid.UUID, user_id: str, *, until: datetime
) -> None:
    """An offered fan holds: the offer lasts while the hold does."""
    await session.execute(
        update(WaitlistEntry)
        .where(
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.state == "offered",
            WaitlistEntry.offer_expires_at < until,
        )
        .values(offer_expires_at=until)
    )


async def bought(session: WriteSession, event_id: uuid.UUID, user_id: str, now: datetime) -> None:
    await session.execute(
        update(WaitlistEntry)
        .where(
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.state == "offered",
        )
        .values(state="bought", updated_at=now)
    )
