"""An on-sale, simulated end to end on real Redis and real inventory (Redis + PostgreSQL):
5,000 fans in the pre-queue, 5,000 arriving after the start, 500 places, adaptive admission.

The waitroom's admission engine runs as in the service (a round every 0.1 s). Fans learn
they are admitted from their real-time channel (Redis pub/sub, as the gateway would relay
it), check the token, hold one place through inventory's hold script and buy it through
inventory's sale path (PostgreSQL under its unique constraints). One fan in ten never
holds, nor can a fan who starts after their window closed: their admission window lapses
and their slot goes to the next fan. The Kafka hop
between inventory's hold events and the waitroom is replaced by calling the waitroom's
consumer handlers with the same messages (covered with a broker in the consumer tests).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import jwt
import redis.asyncio as redis_asyncio

from marquee_contracts.inventory import HOLD_CREATED, SALE_CONFIRMED, HoldCreated, SaleConfirmed
from marquee_contracts.waitroom import ADMISSION_AUDIENCE, ADMISSION_ISSUER
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_platform.lua import decode
from marquee_platform.realtime import CHANNEL_PREFIX, event_channel
from marquee_testing.inventory import Catalog, order_paid, published_event
from marquee_testing.waiting import wait_until
from marquee_testing.waitroom import delivered, store_supply
from marquee_waitroom import fairness
from marquee_waitroom.admission import AdmissionEngine, to_ms
from marquee_waitroom.consumers import WaitroomConsumers
from marquee_waitroom.queue import OnSaleTimes, QueueKeys, QueueStore
from marquee_waitroom.tokens import generate_admission_key
from marquee_waitroom.verify import verify

PRE_QUEUE = 5000
LATE = 5000
PLACES = 500
ABANDON_EVERY = 10  # the fan whose number ends in 7 never holds


async def test_an_onsale_sells_every_place_fairly_and_tells_everyone_when_it_is_over(
    redis: redis_asyncio.Redis,
    redis_url: str,
    queue_store: QueueStore,
    hold_store: HoldStore,
    catalog: Catalog,
    waitroom_database: Database,
    clock: Any,
) -> None:
    event = await catalog.publish(
        published_event(sections=0, general_admission=PLACES, max_per_order=1)
    )
    event_id, standing = event.event_id, event.general_admission
    assert standing is not None
    seed = fairness.new_seed()
    key = generate_admission_key(clock())
    public_key = jwt.PyJWK(key.public_jwk).key
    opens = clock() + timedelta(seconds=1)
    starts = opens + timedelta(minutes=10)
    await queue_store.configure(
        event_id,
        OnSaleTimes(
            opens_ms=to_ms(opens),
            starts_ms=to_ms(starts),
            window_ms=5000,
            grace_ms=30 * 60 * 1000,
            max_active=0,
            adaptive=True,
        ),
    )

    async def signing_key() -> Any:
        return key

    async def seeds(_: uuid.UUID) -> bytes | None:
        return bytes(seed)

    engine = AdmissionEngine(
        store=queue_store,
        redis=redis,
        seeds=seeds,
        signing_key=signing_key,
        supply=store_supply(hold_store),
        clock=clock,
        progress_interval_s=0.5,
    )
    consumers = WaitroomConsumers(queue_store, clock)

    # The pre-queue: everyone joins between the opening and the start.
    clock.jump_to(opens)
    # Accounts start with the event id: other tests share this Redis and its channels.
    accounts = [f"{event_id}-fan-{n:05d}" for n in range(PRE_QUEUE + LATE)]
    ticket_of: dict[str, str] = {}
    for start in range(0, PRE_QUEUE, 20):
        batch = accounts[start : start + 20]
        tickets = [f"q_pre_{uuid.uuid4().hex}" for _ in batch]
        outcomes = await asyncio.gather(
            *(
                queue_store.join(event_id, account, ticket, to_ms(clock()))
                for account, ticket in zip(batch, tickets, strict=True)
            )
        )
        for account, outcome in zip(batch, outcomes, strict=True):
            assert outcome[0] == "joined", outcome
            ticket_of[account] = outcome[1]
    again = await queue_store.join(event_id, accounts[0], "q_other", to_ms(clock()))
    assert again == ["existing", ticket_of[accounts[0]]], "one place per account"

    # Everything fans hear, as the gateway would relay it.
    listener = redis.pubsub()
    await listener.psubscribe(f"{CHANNEL_PREFIX}user:{event_id}-*")
    await listener.subscribe(f"{CHANNEL_PREFIX}{event_channel(event_id)}")
    admissions: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    granted: Counter[str] = Counter()
    sold_out_heard: list[float] = []

    async def listen() -> None:
        async for message in listener.listen():
            if message["type"] not in ("message", "pmessage"):
                continue
            channel = message["channel"].decode().removeprefix(CHANNEL_PREFIX)
            _, kind, data = message["data"].decode().split("\n", 2)
            if kind == "admission-granted":
                account = channel.removeprefix("user:")
                granted[account] += 1
                await admissions.put((account, json.loads(data)))
            elif kind == "queue-sold-out":
                sold_out_heard.append(time.monotonic())

    sold: list[str] = []
    sold_out_at: list[float] = []
    abandoned: list[str] = []
    failures: list[str] = []

    async def fan_worker() -> None:
        while True:
            account, message = await admissions.get()
            try:
                await fan(account, message)
            except Exception as error:
                failures.append(f"{account}: {error!r}")

    async def fan(account: str, message: dict[str, Any]) -> None:
        if True:
            claims = jwt.decode(
                message["admission_token"],
                public_key,
                algorithms=["EdDSA"],
                audience=ADMISSION_AUDIENCE,
                issuer=ADMISSION_ISSUER,
                # The test's clock runs ahead of the wall clock PyJWT checks iat against.
                leeway=clock.offset,
            )
            if claims["exp"] * 1000 <= to_ms(clock()):
                abandoned.append(account)  # too slow: the window lapsed, as for a no-show
                return
            if claims["sub"] != account or claims["evt"] != str(event_id):
                failures.append(f"{account} got a token for {claims['sub']}/{claims['evt']}")
                return
            if message["number"] % ABANDON_EVERY == 7:
                abandoned.append(account)
                return
            try:
                held = await hold_store.hold(
                    event_id,
                    hold_id=uuid.uuid4().hex,
                    user_id=account,
                    seats=(),
                    general_admission=[(standing, 1)],
                    now=clock(),
                )
            except Exception as error:
                failures.append(f"{account} admitted but could not hold: {error!r}")
                return
            async with waitroom_database.transaction() as session:
                await consumers.on_hold_created(
                    delivered(
                        HOLD_CREATED.name,
                        HoldCreated(
                            hold_id=held.hold_id,
                            event_id=event_id,
                            user_id=account,
                            seats=[],
                            general_admission=[{"ticket_type_id": standing, "quantity": 1}],
                            expires_at=held.expires_at,
                            created_at=clock(),
                        ),
                    ),
                    session,
                )
            hold = {
                "hold_id": held.hold_id,
                "event_id": str(event_id),
                "user_id": account,
                "seats": [],
                "general_admission": [{"ticket_type_id": str(standing), "quantity": 1}],
            }
            outcome = await catalog.sell(order_paid(hold), clock=clock)
            if outcome != "confirmed":
                failures.append(f"{account}'s sale was {outcome}")
                return
            sold.append(account)
            if len(sold) == PLACES:
                sold_out_at.append(time.monotonic())
            async with waitroom_database.transaction() as session:
                await consumers.on_sale_confirmed(
                    delivered(
                        SALE_CONFIRMED.name,
                        SaleConfirmed(
                            order_id=uuid.uuid4(),
                            hold_id=held.hold_id,
                            event_id=event_id,
                            user_id=account,
                            seats=[],
                            general_admission=[{"ticket_type_id": standing, "quantity": 1}],
                            confirmed_at=clock(),
                        ),
                    ),
                    session,
                )

    stop = asyncio.Event()

    async def admission_loop() -> None:
        while not stop.is_set():
            await engine.admit_event(event_id)
            await asyncio.sleep(0.1)

    # The start: the pre-queue closes and is shuffled; then late fans arrive, one by one.
    clock.jump_to(starts)
    tasks = [asyncio.create_task(listen())]
    tasks += [asyncio.create_task(fan_worker()) for _ in range(16)]
    tasks.append(asyncio.create_task(admission_loop()))
    late_order: list[str] = []
    try:
        for account in accounts[PRE_QUEUE:]:
            outcome = await queue_store.join(
                event_id, account, f"q_late_{uuid.uuid4().hex}", to_ms(clock())
            )
            assert outcome[0] == "joined", outcome
            ticket_of[account] = outcome[1]
            late_order.append(outcome[1])
        await wait_until(
            lambda: bool(sold_out_heard),
            timeout=90,
            message=lambda: (
                f"the sold-out notice ({len(sold)} sold, {len(abandoned)} "
                f"abandoned, {sum(granted.values())} admitted, failures {failures[:3]})"
            ),
        )
        admitted_at_sellout = await redis.hlen(QueueKeys.of(event_id).named("adm")["adm"])
        # A few more rounds after the sell-out admit nobody.
        rounds_before = time.monotonic()
        await wait_until(lambda: time.monotonic() - rounds_before > 1.0, timeout=5)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await listener.aclose()  # type: ignore[no-untyped-call]

    assert failures == []
    assert len(sold) == PLACES, "every place sold"
    _, _, general_admission, _ = await hold_store.counts(event_id)
    assert general_admission[str(standing)]["sold"] == PLACES
    assert general_admission[str(standing)]["available"] == 0

    admitted = decode(await redis.hgetall(QueueKeys.of(event_id).named("adm")["adm"]))
    assert len(admitted) == admitted_at_sellout, "nobody admitted after the sell-out"
    assert len(admitted) == PLACES + len(abandoned)
    assert max(granted.values()) == 1, "no fan admitted twice"
    assert set(granted) == {account for account, ticket in ticket_of.items() if ticket in admitted}

    # Told within 2 s of the last place selling, and every waiting fan sees it.
    assert sold_out_heard[0] - sold_out_at[0] < 2.0, sold_out_heard[0] - sold_out_at[0]
    waiting = [a for a, t in ticket_of.items() if t not in admitted]
    assert len(waiting) == PRE_QUEUE + LATE - len(admitted)
    for account in waiting[:: max(1, len(waiting) // 200)]:
        place = await queue_store.me(event_id, account, now_ms=to_ms(clock()), touch=False)
        assert (place.status, place.state) == ("waiting", "sold-out")

    # The pre-queue's numbers are what the revealed seed gives; late fans keep arrival order.
    pre_queue = await queue_store.pre_queue(event_id)
    assert len(pre_queue) == PRE_QUEUE
    numbers_key = QueueKeys.of(event_id).named("num")["num"]
    numbers = {k: int(v) for k, v in decode(await redis.hgetall(numbers_key)).items()}
    told_order = sorted(pre_queue, key=lambda ticket: numbers[ticket])
    verdict = verify(
        seed_hex=seed.hex(),
        commitment=fairness.commitment(seed),
        pre_queue=pre_queue,
        order=told_order,
    )
    assert verdict.fair, verdict.problems
    assert [numbers[ticket] for ticket in told_order] == list(range(1, PRE_QUEUE + 1))
    assert [numbers[ticket] for ticket in late_order] == list(
        range(PRE_QUEUE + 1, PRE_QUEUE + LATE + 1)
    )
    # And it is a shuffle, not the arrival order.
    assert told_order != pre_queue
