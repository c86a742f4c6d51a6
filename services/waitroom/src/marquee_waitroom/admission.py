"""Admission: each round, per on-sale, shuffle the pre-queue once, free lapsed slots, admit
the next fans, and tell the queue where it stands.

**The admission algorithm** (one round, every ``admission_interval_seconds``):

1. Before the start nothing happens. At the start the pre-queue closes (an arrival after the
   start closes it too, so the boundary is exact), its tickets are numbered 1…P in the
   fair order of :mod:`marquee_waitroom.fairness`, and admission opens. Later arrivals are
   numbered P+1, P+2, … as they come.
2. Slots whose time is up are freed: an admitted fan who did not hold within the window,
   or whose hold ended.
3. The budget: with a fixed limit, ``max_active - active``. Adaptive, ``available -
   pending``, where ``available`` is what inventory says is neither held nor sold and
   ``pending`` counts fans admitted who have not held yet: each of them may take at least
   one place, so admission never lets in more fans than there are places left to hold
   (and with ``max_active`` set, the fixed limit caps it too).
4. Adaptive only: when nothing is available and no hold is live, the event is sold out —
   admission stops and every waiting fan is told at once on the event's channel; when
   places come back (holds expire, capacity grows) admission resumes.
5. The head of the line is admitted, up to the budget, in number order. A fan away longer
   than the grace period when their turn comes is passed over (``gone: away``).
6. The queue's progress (the number now served, how many wait, the observed rate) goes to
   the event's real-time channel whenever it changes and at least every
   ``progress_interval_seconds``.

Every step is a Lua script over the event's keys; this loop holds no state Redis does not,
so it can be killed at any point and another replica (single-runner lock) carries on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from marquee_platform.clock import Clock, utc_now
from marquee_platform.faults import crash_point
from marquee_platform.realtime import event_channel, publish, user_channel
from marquee_waitroom import fairness
from marquee_waitroom.queue import Admitted, QueueStats, QueueStore
from marquee_waitroom.tokens import AdmissionKey, from_timestamp_ms, sign_admission

log = logging.getLogger(__name__)

PLACE_BATCH = int(os.environ.get("MARQUEE_WAITROOM_PLACE_BATCH", "5000"))
"""Pre-queue tickets numbered per script call at the start (Redis is not blocked long)."""
TELL_CONCURRENCY = 32
"""Admitted fans told at once (each is one publish script; a round admits hundreds)."""


@dataclass(frozen=True, slots=True)
class Supply:
    """What inventory has left of an event, right now."""

    available: int
    live_holds: int
    selling: bool = True
    ticket_types: dict[str, int] = field(default_factory=dict)
    """Places left per ticket type (general admission; seated types by their category)."""


class SupplyReader(Protocol):
    async def __call__(self, event_id: uuid.UUID) -> Supply | None: ...


class InventorySupply:
    """Reads ``GET /api/v1/inventory/events/{id}/supply`` (cheap: Redis counters)."""

    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    async def __call__(self, event_id: uuid.UUID) -> Supply | None:
        try:
            response = await self.client.get(
                f"{self.base_url}/api/v1/inventory/events/{event_id}/supply", timeout=2.0
            )
        except httpx.HTTPError as error:
            log.warning("inventory supply of %s unreadable: %s", event_id, error)
            return None
        if response.status_code != 200:
            log.warning("inventory supply of %s: HTTP %s", event_id, response.status_code)
            return None
        body = response.json()
        return Supply(
            available=int(body["available"]),
            live_holds=int(body["live_holds"]),
            selling=bool(body.get("selling", True)),
            ticket_types={str(k): int(v) for k, v in body.get("ticket_types", {}).items()},
        )


def now_ms(clock: Clock) -> int:
    return int(clock().timestamp() * 1000)


def observed_rate(stats: QueueStats, *, window_s: float) -> float:
    """Admissions per second over the last window (what waiting-time estimates use)."""
    return stats.admitted_recently / window_s if window_s > 0 else 0.0


def progress_message(stats: QueueStats, *, rate: float) -> dict[str, Any]:
    return {
        "state": stats.state,
        "serving": stats.head,
        "waiting": stats.waiting,
        "pre_queue": stats.pre_queue if stats.state == "pre" else 0,
        "admitted": stats.admitted,
        "active": stats.active,
        "rate_per_minute": round(rate * 60, 1),
    }


@dataclass
class RoundOutcome:
    admitted: list[Admitted] = field(default_factory=list)
    skipped_away: int = 0
    freed: int = 0
    sold_out: bool = False
    resumed: bool = False
    shuffled: int | None = None


@dataclass
class AdmissionEngine:
    """One round of admission for one event; :meth:`run_round` does every on-sale."""

    store: QueueStore
    redis: Any
    seeds: Callable[[uuid.UUID], Awaitable[bytes | None]]
    """The committed seed of an event's on-sale (PostgreSQL)."""
    signing_key: Callable[[], Awaitable[AdmissionKey]]
    supply: SupplyReader | None = None
    clock: Clock = utc_now
    rate_window_s: int = 60
    progress_interval_s: float = 1.0
    _last_progress: dict[uuid.UUID, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    async def run_round(self) -> int:
        admitted = 0
        for event_id in await self.store.onsale_events():
            try:
                outcome = await self.admit_event(event_id)
            except Exception:
                log.exception("admission round of event %s failed", event_id)
                continue
            admitted += len(outcome.admitted)
        return admitted

    async def admit_event(self, event_id: uuid.UUID) -> RoundOutcome:
        outcome = RoundOutcome()
        now = now_ms(self.clock)
        state, _ = await self.store.close_pre_queue(event_id, now)
        if state == "closed":
            outcome.shuffled = await self._shuffle(event_id)
        outcome.freed = await self.store.sweep(
            event_id, now_ms=now, rate_window_ms=self.rate_window_s * 1000
        )
        stats = await self._stats(event_id, now)
        if stats is None:
            return outcome
        if stats.state in ("open", "sold-out"):
            budget = await self._budget(event_id, stats, outcome)
            if outcome.sold_out or outcome.resumed:
                stats = await self._stats(event_id, now) or stats
            if stats.state == "open" and budget > 0:
                result = await self.store.admit(event_id, now_ms=now, budget=budget)
                outcome.admitted = result.admitted
                outcome.skipped_away = result.skipped_away
                if result.admitted:
                    crash_point("waitroom.admitted-not-yet-told")
                    stats = await self._stats(event_id, now) or stats
                    # The whole queue first (one message), then each admitted fan.
                    await self._progress(event_id, stats, force=True)
                    await self._tell_admitted(event_id, result.admitted)
                    return outcome
        await self._progress(event_id, stats, force=outcome.sold_out or outcome.resumed)
        return outcome

    async def _stats(self, event_id: uuid.UUID, now: int) -> QueueStats | None:
        return await self.store.stats(event_id, since_ms=now - self.rate_window_s * 1000)

    async def _shuffle(self, event_id: uuid.UUID) -> int:
        seed = await self.seeds(event_id)
        if seed is None:
            raise RuntimeError(f"on-sale of {event_id} has no seed in PostgreSQL")
        order = fairness.shuffled(seed, await self.store.pre_queue(event_id))
        numbered = [(ticket, number) for number, ticket in enumerate(order, start=1)]
        batches = [numbered[i : i + PLACE_BATCH] for i in range(0, len(numbered), PLACE_BATCH)]
        for index, batch in enumerate(batches or [[]]):
            if index == 1:
                crash_point("waitroom.pre-queue-partly-numbered")
            await self.store.place(event_id, batch, open_after=index == len(batches or [[]]) - 1)
        log.info("pre-queue of %s shuffled: %d fans numbered", event_id, len(order))
        return len(order)

    async def _budget(self, event_id: uuid.UUID, stats: QueueStats, outcome: RoundOutcome) -> int:
        fixed = stats.max_active - stats.active if stats.max_active > 0 else None
        if not stats.adaptive:
            return max(fixed or 0, 0)
        if self.supply is None:
            return 0
        supply = await self.supply(event_id)
        if supply is None:
            return 0  # unknown supply: admit nobody rather than too many
        # Places the waitlist waits for are its own (docs/services/waitroom.md).
        available = supply.available - stats.waitlist_reserved
        if supply.available <= 0 and supply.live_holds <= 0:
            if await self.store.set_state(event_id, from_state="open", to_state="sold-out"):
                outcome.sold_out = True
                await publish(
                    self.redis,
                    event_channel(event_id),
                    "queue-sold-out",
                    {
                        "event_id": str(event_id),
                        "waitlist": f"/api/v1/waitroom/events/{event_id}/waitlist",
                    },
                )
                log.info("event %s sold out: admission stopped", event_id)
            return 0
        if (
            stats.state == "sold-out"
            and available > 0
            and await self.store.set_state(event_id, from_state="sold-out", to_state="open")
        ):
            outcome.resumed = True
            log.info("event %s has places again: admission resumed", event_id)
        adaptive = available - stats.pending
        return max(min(adaptive, fixed) if fixed is not None else adaptive, 0)

    async def _tell_admitted(self, event_id: uuid.UUID, admitted: list[Admitted]) -> None:
        key = await self.signing_key()

        async def tell(fan: Admitted) -> None:
            await publish(
                self.redis,
                user_channel(fan.account),
                "admission-granted",
                {
                    "event_id": str(event_id),
                    "admission_token": admission_token(key, event_id, fan),
                    "expires_at": from_timestamp_ms(fan.expires_ms).isoformat(),
                    "number": fan.number,
                },
            )

        for start in range(0, len(admitted), TELL_CONCURRENCY):
            await asyncio.gather(*(tell(fan) for fan in admitted[start : start + TELL_CONCURRENCY]))

    async def _progress(self, event_id: uuid.UUID, stats: QueueStats, *, force: bool) -> None:
        message = progress_message(
            stats, rate=observed_rate(stats, window_s=float(self.rate_window_s))
        )
        message["event_id"] = str(event_id)
        last = self._last_progress.get(event_id)
        moment = time.monotonic()
        if (
            not force
            and last is not None
            and last[1] == message
            and moment - last[0] < self.progress_interval_s
        ):
            return
        await publish(self.redis, event_channel(event_id), "queue-progress", message)
        self._last_progress[event_id] = (moment, message)


def admission_token(key: AdmissionKey, event_id: uuid.UUID, fan: Admitted) -> str:
    return sign_admission(
        key,
        event_id=event_id,
        user_id=fan.account,
        admission_id=fan.ticket,
        admitted_at=from_timestamp_ms(fan.admitted_ms),
        expires_at=from_timestamp_ms(fan.expires_ms),
    )


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
