"""Races for the last places, over real sockets, against real Redis and PostgreSQL.

500 buyers (distinct users) each ask for one of 100 places at the same moment; each race
ends with every winner's order paid. The app is served by uvicorn on 127.0.0.1 (in a
thread, or as a real process for the crash test) rather than reached through
ASGITransport, so the requests really overlap: they wait on sockets, the Redis pool and
PostgreSQL as in production, and a killed process drops its connections like a crash does.

Then the same race with Redis flushed half-way, and with the process SIGKILLed half-way
and restarted: what Redis forgot or what a crash cut short may cost a buyer their hold,
never sell a seat twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from sqlalchemy import text

from marquee_inventory import handlers
from marquee_inventory.holds import EventKeys
from marquee_inventory.main import create_app
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_testing.events import Clock, People
from marquee_testing.fixtures import TokenIssuer, serve_in_thread
from marquee_testing.inventory import Catalog, HoldApi, order_paid, published_event, seat_id
from marquee_testing.inventory import sold_seats as sold_seat_rows
from marquee_testing.localinfra import (
    RedisServer,
    die_with_parent,
    free_port,
    stop_process,
)
from marquee_testing.waiting import wait_until

BUYERS = 500
PLACES = 100
KILL_AT = 30
"""Seats held when the crash test kills the process: early enough that the loop polling
Redis (seen overshooting by up to 35 while busy with answers) stays short of 100."""
SEED = 20240501
"""Seat choices and arrival order come from this seed, so a failing run's requests can be
replayed (the interleaving, decided by the schedulers, is what varies between runs)."""


# ---- buyers and their answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Buyer:
    user_id: str
    headers: dict[str, str]
    body: dict[str, Any]
    seat: str | None
    """The seat asked for by id; None for a best-available or general-admission ask."""


@dataclass
class Answer:
    buyer: Buyer
    status: int | None = None
    body: dict[str, Any] | None = None
    content_type: str = ""
    error: httpx.TransportError | None = None
    """No answer: the connection failed (refused, reset, closed before a response)."""
    finished_as: int = 0
    """1 for the first request of its race to end (answered or failed), 2 for the next…"""

    @property
    def held(self) -> bool:
        return self.status == 201

    @property
    def hold(self) -> dict[str, Any]:
        assert self.held, (self.status, self.body)
        assert self.body is not None
        return self.body

    @property
    def hold_id(self) -> str:
        return str(self.hold["hold_id"])

    @property
    def seats(self) -> list[str]:
        return [seat["seat_id"] for seat in self.hold["seats"]]


def all_seats() -> list[str]:
    return [seat_id(0, row, seat) for row in range(10) for seat in range(10)]


def seat_buyers(people: People, seats: Sequence[str]) -> list[Buyer]:
    """Half ask for a seat by id, half for the best one available, in a shuffled order.

    The 250 ids are drawn at random but cover every seat (each seat once, then 150 more
    at random), so every seat is asked for by id at least once: with nothing released
    during a race, a seat asked for by id ends up held by someone, which makes "exactly
    100 holds" a guarantee of the hold script rather than a likelihood of best-available.
    Every buyer sends an Idempotency-Key of its own, as a client that may retry does.
    """
    rng = random.Random(SEED)
    chosen = rng.sample(list(seats), len(seats))
    chosen += [rng.choice(seats) for _ in range(BUYERS // 2 - len(seats))]
    rng.shuffle(chosen)
    buyers = []
    for number in range(BUYERS):
        user = f"buyer-{number}"
        headers = {**people.customer(user), "Idempotency-Key": f"hold-{user}"}
        if number % 2 == 0:
            seat = chosen[number // 2]
            buyers.append(Buyer(user, headers, {"seats": [{"seat_id": seat}]}, seat))
        else:
            buyers.append(Buyer(user, headers, {"best_available": {"count": 1}}, None))
    rng.shuffle(buyers)
    return buyers


def standing_buyers(people: People, ticket_type_id: uuid.UUID) -> list[Buyer]:
    body = {"general_admission": [{"ticket_type_id": str(ticket_type_id), "quantity": 1}]}
    return [Buyer(f"buyer-{n}", people.customer(f"buyer-{n}"), body, None) for n in range(BUYERS)]


class Progress:
    """Counts the requests that ended; ``reached`` is set once ``ended`` have, and at
    least ``holds`` of them with a hold."""

    def __init__(self, *, ended: int = BUYERS + 1, holds: int = 0) -> None:
        self.ended = ended
        self.holds = holds
        self.finished = 0
        self.held = 0
        self.reached = asyncio.Event()

    def record(self, answer: Answer) -> int:
        self.finished += 1
        self.held += answer.held
        if self.finished >= self.ended and self.held >= self.holds:
            self.reached.set()
        return self.finished


async def ask(
    http: httpx.AsyncClient,
    event_id: uuid.UUID,
    buyer: Buyer,
    progress: Progress,
    start: asyncio.Event | None = None,
) -> Answer:
    if start is not None:
        await start.wait()
    answer = Answer(buyer)
    try:
        response = await http.post(
            f"/api/v1/inventory/events/{event_id}/holds", json=buyer.body, headers=buyer.headers
        )
    except httpx.TransportError as error:
        answer.error = error
    else:
        answer.status = response.status_code
        answer.content_type = response.headers.get("content-type", "")
        answer.body = response.json()
    answer.finished_as = progress.record(answer)
    return answer


async def race(
    http: httpx.AsyncClient,
    event_id: uuid.UUID,
    buyers: Sequence[Buyer],
    progress: Progress | None = None,
    *,
    held_back: int = 0,
    release: asyncio.Event | None = None,
) -> list[Answer]:
    """Every buyer's request at once, each on a connection of its own; the last
    ``held_back`` are sent together once ``release`` is set."""
    progress = progress or Progress()
    first = len(buyers) - held_back
    return list(
        await asyncio.gather(
            *(
                ask(http, event_id, buyer, progress, release if number >= first else None)
                for number, buyer in enumerate(buyers)
            )
        )
    )


@contextlib.asynccontextmanager
async def buyers_client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # No keep-alive: each request on a connection of its own, closed after its answer (a
    # pooled one idle past uvicorn's keep-alive timeout may be closed as it is reused).
    limits = httpx.Limits(max_connections=BUYERS, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=httpx.Timeout(60.0)
    ) as http:
        yield http


def served(settings: InventorySettings, clock: Clock) -> contextlib.AbstractContextManager[str]:
    app = create_app(settings)
    app.state.clock = clock
    return serve_in_thread(app)


# ---- what every race must show -----------------------------------------------------------------


def assert_only_holds_and_refusals(answers: Sequence[Answer]) -> None:
    assert [answer.error for answer in answers if answer.error is not None] == []
    assert set(Counter(answer.status for answer in answers)) <= {201, 409}, Counter(
        answer.status for answer in answers
    )


def assert_losers_told_what_is_left(answers: Sequence[Answer]) -> None:
    """Every refusal is a 409 problem saying nothing was held and how many seats are left."""
    for answer in answers:
        if answer.held:
            continue
        assert answer.status == 409, (answer.status, answer.body)
        assert answer.content_type.startswith("application/problem+json")
        assert answer.body is not None
        assert answer.body["type"].rsplit("/", 1)[1] == "places-unavailable", answer.body
        left = answer.body["left"]["seats"]
        assert isinstance(left, int)
        assert 0 <= left < PLACES, answer.body
        detail = answer.body["detail"]
        if answer.buyer.seat is not None:
            assert detail.startswith("Nothing was held: seats "), detail
            assert answer.buyer.seat in detail
        elif detail.startswith("Only "):
            # best-available found no free seat at all in what it read
            assert left == 0, detail
        else:
            # best-available's last pick went to someone else just before its hold
            assert detail.startswith("Nothing was held: seats "), detail


def assert_each_winner_holds_one_seat(winners: Sequence[Answer]) -> None:
    for winner in winners:
        assert len(winner.seats) == 1, winner.body
        if winner.buyer.seat is not None:
            assert winner.seats == [winner.buyer.seat]
        assert winner.hold["user_id"] == winner.buyer.user_id


def seat_states(availability: dict[str, Any]) -> Counter[str]:
    return Counter(availability["seats"].values())


def seats_in(availability: dict[str, Any], state: str) -> set[str]:
    return {seat for seat, now in availability["seats"].items() if now == state}


async def sell_all(catalog: Catalog, winners: Sequence[Answer], clock: Clock) -> dict[str, str]:
    """Pay every hold's order, all at once; hold id → ``confirmed`` or ``rejected``."""
    outcomes = await asyncio.gather(
        *(catalog.sell(order_paid(winner.hold), clock=clock) for winner in winners)
    )
    return {winner.hold_id: outcome for winner, outcome in zip(winners, outcomes, strict=True)}


async def sold_seats(database: Database, event_id: uuid.UUID) -> dict[str, str]:
    """Seat → the order it is sold to, from ``sold_seats`` (one row per seat: its key)."""
    rows = await sold_seat_rows(database, event_id)
    sold = dict(rows)
    assert len(sold) == len(rows)
    return sold


async def live_hold_ids(redis: redis_asyncio.Redis, event_id: uuid.UUID) -> set[str]:
    prefix = EventKeys.of(event_id).hold("")
    keys = [key async for key in redis.scan_iter(match=prefix + "*", count=1000)]
    return {key.decode().removeprefix(prefix) for key in keys}


# ---- 1a: seats -------------------------------------------------------------------------------


async def test_500_buyers_for_100_seats_hold_each_seat_once_and_buy_it_once(
    catalog: Catalog,
    inventory_settings: InventorySettings,
    people: People,
    database: Database,
    clock: Clock,
) -> None:
    """Exactly 100 holds succeed, on 100 distinct seats; the 400 others are 409s saying
    what is left; then the 100 paid orders sell the 100 seats, once each."""
    event = await catalog.publish(published_event(rows=10, seats_per_row=10))
    seats = all_seats()
    with served(inventory_settings, clock) as base_url:
        async with buyers_client(base_url) as http:
            api = HoldApi(http)
            answers = await race(http, event.event_id, seat_buyers(people, seats))
            after_race = await api.availability(event.event_id)

            assert_only_holds_and_refusals(answers)
            winners = [answer for answer in answers if answer.held]
            assert len(winners) == PLACES
            assert_each_winner_holds_one_seat(winners)
            assert sorted(seat for winner in winners for seat in winner.seats) == sorted(seats)
            assert seat_states(after_race) == {"held": PLACES}
            assert after_race["seats_available"] == 0
            assert_losers_told_what_is_left(answers)

            outcomes = await sell_all(catalog, winners, clock)
            assert Counter(outcomes.values()) == {"confirmed": PLACES}
            sold = await sold_seats(database, event.event_id)
            assert sorted(sold) == sorted(seats)
            assert len(set(sold.values())) == PLACES  # a seat per order, an order per seat
            assert seat_states(await api.availability(event.event_id)) == {"sold": PLACES}

            # Someone asking now is told, truthfully, that nothing is left.
            late = await api.hold(
                event.event_id, people.customer("late-fan"), seats=[{"seat_id": seats[0]}]
            )
            assert late.status_code == 409
            assert late.json()["left"] == {"seats": 0}


# ---- 1b: general admission -------------------------------------------------------------------


async def test_500_buyers_for_100_standing_places_hold_and_buy_exactly_100(
    catalog: Catalog,
    inventory_settings: InventorySettings,
    people: People,
    database: Database,
    clock: Clock,
) -> None:
    """General admission has no seat to collide on, only counters: they never go past the
    capacity, in Redis (held) nor in PostgreSQL (sold, checked against capacity)."""
    event = await catalog.publish(
        published_event(rows=1, seats_per_row=1, general_admission=PLACES)
    )
    standing = event.general_admission
    assert standing is not None
    with served(inventory_settings, clock) as base_url:
        async with buyers_client(base_url) as http:
            api = HoldApi(http)
            answers = await race(http, event.event_id, standing_buyers(people, standing))
            counts = (await api.availability(event.event_id))["general_admission"]

            assert_only_holds_and_refusals(answers)
            winners = [answer for answer in answers if answer.held]
            assert len(winners) == PLACES
            for winner in winners:
                assert winner.hold["general_admission"] == [
                    {"ticket_type_id": str(standing), "quantity": 1}
                ]
            assert counts[str(standing)] == {
                "capacity": PLACES,
                "held": PLACES,
                "sold": 0,
                "available": 0,
            }
            for loser in (answer for answer in answers if not answer.held):
                assert loser.content_type.startswith("application/problem+json")
                assert loser.body is not None
                assert loser.body["left"] == {"seats": 1, str(standing): 0}
                assert f"only 0 places of ticket type {standing}" in loser.body["detail"]

            outcomes = await sell_all(catalog, winners, clock)
            assert Counter(outcomes.values()) == {"confirmed": PLACES}
            counts = (await api.availability(event.event_id))["general_admission"]
            assert counts[str(standing)] == {
                "capacity": PLACES,
                "held": 0,
                "sold": PLACES,
                "available": 0,
            }
    async with database.reading() as session:
        sold = await session.scalar(
            text(
                "SELECT sold FROM inventory_ticket_types "
                "WHERE event_id = :event AND ticket_type_id = :tt"
            ),
            {"event": event.event_id, "tt": standing},
        )
    assert sold == PLACES


# ---- 1c: Redis flushed in the middle of the race ---------------------------------------------


async def test_a_redis_flush_in_the_middle_of_the_race_never_sells_a_seat_twice(
    inventory_settings: InventorySettings,
    private_redis: RedisServer,
    index_prefix: str,
    people: People,
    database: Database,
    clock: Clock,
) -> None:
    """FLUSHDB once 200 requests have ended (one of them at least a hold), with the rest
    of the first 300 still in flight; the last 200 are sent together right after it.
    The hold script then finds the state missing and the service rebuilds it from
    PostgreSQL, where nothing is sold yet: every seat is free again, so a seat held
    before the flush (a "lost" hold: its buyer has a 201, Redis forgot it) can be held a
    second time after it (a "live" hold).

    The last 200 wait for the flush because on two shared cores a FLUSHDB sent from the
    loop that is also reading hundreds of answers often reaches Redis after the last
    hold script, and then nothing is tested; held back, they are certain to run on the
    rebuilt state. Asserted, and why:

    - the flush came mid-race: >= 200 requests had ended before it; it lost holds
      (201s whose hold Redis no longer has) and holds were made after it;
    - every request is a 201 holding one seat or a 409 saying what is left (no 500: a
      missing state is rebuilt, not an error);
    - live holds' seats are distinct, and so are lost holds' (each set was made in one
      Redis state); Redis has no hold but the live ones and shows their seats held;
    - paying every 201's order: a live hold is confirmed; a lost hold is rejected exactly
      when a live hold has its seat (the claim finds it held by someone else) and is
      confirmed otherwise (the claim finds it free). So ``rejected`` only ever answers a
      hold lost with Redis whose seat someone else took after the flush;
    - ``sold_seats`` (the seat is its key: the last guard) has one row per confirmed
      order, at most 100, and Redis shows exactly those seats sold;
    - after a forced rebuild from PostgreSQL nothing is held (every live hold was sold),
      held + sold + available == 100, and Redis agrees with PostgreSQL on what is sold.
    """
    redis = redis_asyncio.Redis.from_url(private_redis.url)
    try:
        store = HoldStore(redis, index_prefix=index_prefix)
        catalog = Catalog(database, store)
        event = await catalog.publish(published_event(rows=10, seats_per_row=10))
        settings = inventory_settings.model_copy(update={"redis_url": private_redis.url})
        progress = Progress(ended=200, holds=1)
        flushed = asyncio.Event()
        ended_before_flush = 0

        async def flush_mid_race() -> None:
            nonlocal ended_before_flush
            await progress.reached.wait()
            ended_before_flush = progress.finished
            await redis.flushdb()
            flushed.set()

        with served(settings, clock) as base_url:
            async with buyers_client(base_url) as http:
                api = HoldApi(http)
                flusher = asyncio.create_task(flush_mid_race())
                answers = await race(
                    http,
                    event.event_id,
                    seat_buyers(people, all_seats()),
                    progress,
                    held_back=200,
                    release=flushed,
                )
                await flusher
                after_race = await api.availability(event.event_id)

                assert 200 <= ended_before_flush <= BUYERS - 200
                assert_only_holds_and_refusals(answers)
                assert_losers_told_what_is_left(answers)
                winners = [answer for answer in answers if answer.held]
                assert_each_winner_holds_one_seat(winners)
                in_redis = await live_hold_ids(redis, event.event_id)
                live = [winner for winner in winners if winner.hold_id in in_redis]
                lost = [winner for winner in winners if winner.hold_id not in in_redis]
                assert lost, "the flush lost no hold"
                assert live, "no hold was made after the flush"
                assert in_redis == {winner.hold_id for winner in live}  # no hold unanswered
                live_seats = [winner.seats[0] for winner in live]
                lost_seats = [winner.seats[0] for winner in lost]
                assert len(set(live_seats)) == len(live_seats)
                assert len(set(lost_seats)) == len(lost_seats)
                assert seats_in(after_race, "held") == set(live_seats)

                outcomes = await sell_all(catalog, winners, clock)
                expected = {winner.hold_id: "confirmed" for winner in live}
                for winner in lost:
                    taken = winner.seats[0] in set(live_seats)
                    expected[winner.hold_id] = "rejected" if taken else "confirmed"
                assert outcomes == expected
                sold = await sold_seats(database, event.event_id)
                confirmed = [w for w in winners if outcomes[w.hold_id] == "confirmed"]
                assert sorted(sold) == sorted(winner.seats[0] for winner in confirmed)
                assert len(sold) <= PLACES
                assert seats_in(await api.availability(event.event_id), "sold") == set(sold)

                assert await handlers.rebuild_event(
                    event.event_id, database=database, store=store, force=True
                )
                rebuilt = await api.availability(event.event_id)
                states = seat_states(rebuilt)
                assert states["held"] == 0
                assert states["sold"] == len(sold)
                assert states["available"] == PLACES - len(sold)
                assert sum(states.values()) == PLACES
                assert rebuilt["seats_available"] == PLACES - len(sold)
                assert seats_in(rebuilt, "sold") == set(sold)
    finally:
        await redis.aclose()


# ---- 1d: the process SIGKILLed in the middle of the race -------------------------------------


@dataclass
class InventoryProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    async def started(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:

            async def answers() -> bool:
                if self.process.poll() is not None:
                    raise AssertionError(f"inventory exited while starting:\n{self.log_tail()}")
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(
                answers, timeout=60, message=lambda: f"inventory to start:\n{self.log_tail()}"
            )


@contextlib.contextmanager
def inventory_process(env: dict[str, str], log_path: Path) -> Iterator[InventoryProcess]:
    """``uvicorn --factory marquee_inventory.main:create_app`` in a process group of its
    own, configured by environment like in production; stopped by its PID at the end."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "marquee_inventory.main:create_app",
                *("--host", "127.0.0.1", "--port", str(port)),
                "--no-proxy-headers",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),  # tests run in the main thread
        )
    try:
        yield InventoryProcess(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        stop_process(process)


@pytest.fixture
def inventory_env(
    inventory_database_url: str,
    redis_url: str,
    token_issuer: TokenIssuer,
    kafka_bootstrap: str,
    index_prefix: str,
) -> dict[str, str]:
    return {
        **os.environ,
        "INVENTORY_DATABASE_URL": inventory_database_url,
        "INVENTORY_REDIS_URL": redis_url,
        "INVENTORY_JWKS_URL": token_issuer.jwks_url,
        "INVENTORY_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "INVENTORY_REDIS_INDEX_PREFIX": index_prefix,
        "INVENTORY_DATABASE_POOL_SIZE": "4",
        "INVENTORY_LOG_JSON": "false",
        "INVENTORY_LOG_LEVEL": "WARNING",
        # nothing lapses or needs forwarding during the test: keep the process to the race
        "INVENTORY_SWEEP_INTERVAL_SECONDS": "3600",
        "INVENTORY_FORWARD_INTERVAL_SECONDS": "3600",
        "INVENTORY_RECONCILE_INTERVAL_SECONDS": "3600",
    }


async def test_a_crash_in_the_middle_of_the_race_never_sells_a_seat_twice(
    catalog: Catalog,
    store: HoldStore,
    inventory_env: dict[str, str],
    tmp_path: Path,
    people: People,
    database: Database,
    clock: Clock,
) -> None:
    """SIGKILL the inventory process while it is part-way through the 500 requests,
    start it again, let every buyer whose request died with it retry once (the same
    request with the same Idempotency-Key), then pay every hold's order.

    When to kill is read from Redis, not from the answers: on two shared cores the test's
    loop reads answers more slowly than the process writes them, so "after 150 answers"
    can already be after the last request. Once Redis shows 30 seats held the process is
    stopped (SIGSTOP) so what it did is frozen, the seats it held are counted, and it is
    SIGKILLed. Every seat is asked for by id, so while seats are free some requests are
    not done: they can only fail. Asserted, and why:

    - the kill came mid-race: at least 30 seats were held when the process died
      (of SIGKILL), some requests had been answered (201 or 409) and the others failed
      with connection errors (reset, closed or refused), none with a timeout;
    - after the retries every buyer has a 201 holding one seat or a well-formed 409, and
      no two 201s share a seat (Redis, which survived, still holds the first holds);
    - every hold Redis has was answered to its buyer: a hold made just before the kill,
      whose 201 was lost, is answered by the retry (its Idempotency-Key replays it)
      instead of staying held by nobody until it lapses;
    - every paid order is confirmed, ``sold_seats`` has one row per hold (<= 100), and
      held + sold + available == 100 with nothing held by an unanswered hold.
    """
    event = await catalog.publish(published_event(rows=10, seats_per_row=10))
    buyers = seat_buyers(people, all_seats())
    meta = EventKeys.of(event.event_id).meta

    async def seats_held() -> int:
        return PLACES - int(await store.redis.hget(meta, "seats_free"))

    with inventory_process(inventory_env, tmp_path / "inventory-1.log") as first:
        await first.started()

        progress = Progress()

        async def kill_mid_race() -> int:
            async def thirty_held_and_one_answered() -> bool:
                # Both: on a loaded machine the holds can be in Redis before any answer
                # has reached the client, and a kill then proves nothing about answers.
                return progress.finished >= 1 and await seats_held() >= KILL_AT

            await wait_until(
                thirty_held_and_one_answered,
                timeout=60,
                interval=0.005,
                message="30 seats held and one answer received",
            )
            os.killpg(first.process.pid, signal.SIGSTOP)
            held = await seats_held()
            os.killpg(first.process.pid, signal.SIGKILL)
            return held

        async with buyers_client(first.base_url) as http:
            killer = asyncio.create_task(kill_mid_race())
            answers = await race(http, event.event_id, buyers, progress)
            held_at_kill = await killer
        assert await asyncio.to_thread(first.process.wait, 10) == -signal.SIGKILL

    answered = [answer for answer in answers if answer.error is None]
    cut_short = [answer for answer in answers if answer.error is not None]
    assert KILL_AT <= held_at_kill <= PLACES
    assert answered, "the kill came before any answer"
    assert cut_short, "the kill cut no request short"
    for answer in cut_short:
        assert isinstance(answer.error, httpx.NetworkError | httpx.RemoteProtocolError), repr(
            answer.error
        )

    with inventory_process(inventory_env, tmp_path / "inventory-2.log") as second:
        await second.started()
        async with buyers_client(second.base_url) as http:
            retried = await race(http, event.event_id, [answer.buyer for answer in cut_short])
            final = answered + retried
            assert_only_holds_and_refusals(final)
            assert_losers_told_what_is_left(final)
            winners = [answer for answer in final if answer.held]
            assert_each_winner_holds_one_seat(winners)
            held_seats = [winner.seats[0] for winner in winners]
            assert len(set(held_seats)) == len(held_seats)
            assert 0 < len(winners) <= PLACES
            unanswered = await live_hold_ids(store.redis, event.event_id) - {
                winner.hold_id for winner in winners
            }
            assert unanswered == set(), f"{len(unanswered)} holds were never answered"

            outcomes = await sell_all(catalog, winners, clock)
            assert Counter(outcomes.values()) == {"confirmed": len(winners)}
            sold = await sold_seats(database, event.event_id)
            assert sorted(sold) == sorted(held_seats)
            states = seat_states(await HoldApi(http).availability(event.event_id))
            assert states["sold"] == len(winners)
            assert states["held"] == 0
            assert sum(states.values()) == PLACES


async def test_a_retried_best_available_hold_comes_back_even_when_it_took_the_last_seat(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    """What the crash race relies on, without the crash: the answer to a best-available
    hold is lost, the client retries with the same Idempotency-Key, and gets the hold it
    has — not a 409 saying nothing is left because its own hold took the last seat."""
    event = await catalog.publish(published_event(rows=1, seats_per_row=1))
    headers = {**people.customer("fan-1"), "Idempotency-Key": "retry-after-a-crash"}
    first = await api.hold(event.event_id, headers, best_available={"count": 1})
    assert first.status_code == 201, first.text
    again = await api.hold(event.event_id, headers, best_available={"count": 1})
    assert again.status_code == 201, again.text
    assert again.json()["hold_id"] == first.json()["hold_id"]
    assert again.json()["seats"] == first.json()["seats"]
    other = await api.hold(event.event_id, headers, best_available={"count": 2})
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
