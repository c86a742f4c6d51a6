"""The hold store on a three-node Redis Cluster, scripts unchanged.

Every key of an event carries the event's hash tag, so each script touches one slot (one
node) and stays atomic; the two cross-event indexes are plain keys, written by single-key
commands, wherever their slots are. The store gets a ``RedisCluster`` client instead of a
``Redis`` one and nothing else changes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from marquee_inventory import handlers, tasks
from marquee_inventory.domain import PlacesUnavailable, SeatState
from marquee_inventory.handlers import HoldRequest, SeatMaps
from marquee_inventory.holds import EventKeys
from marquee_inventory.schemas import HoldRead
from marquee_inventory.store import HeldPlaces, HoldStore
from marquee_platform.db import Database
from marquee_testing.events import Clock
from marquee_testing.inventory import (
    Catalog,
    changed_snapshot,
    order_paid,
    published_event,
    seat_id,
    sold_seats,
    ticket_cancelled,
)

BUYERS = 500
PLACES = 100


@pytest.fixture
async def cluster(redis_cluster: str) -> AsyncIterator[RedisCluster]:
    # Its pool raises MaxConnectionsError past max_connections (100 per node by default)
    # instead of waiting like the app's BlockingConnectionPool: room for every buyer.
    client = RedisCluster.from_url(redis_cluster, max_connections=BUYERS)
    await client.initialize()
    yield client
    await client.aclose()


@pytest.fixture
def cluster_store(cluster: RedisCluster, index_prefix: str) -> HoldStore:
    return HoldStore(cluster, index_prefix=index_prefix)


@pytest.fixture
def cluster_catalog(database: Database, cluster_store: HoldStore) -> Catalog:
    return Catalog(database, cluster_store)


def all_seats() -> list[str]:
    return [seat_id(0, row, seat) for row in range(10) for seat in range(10)]


def api_answer(held: HeldPlaces) -> dict[str, object]:
    """The hold as the API answers it: what booking makes the order from."""
    return HoldRead.of(held).model_dump(mode="json")


async def test_an_events_keys_share_one_slot_of_a_three_node_cluster(
    cluster: RedisCluster, cluster_catalog: Catalog
) -> None:
    event = await cluster_catalog.publish(published_event(rows=10, seats_per_row=10))
    keys = EventKeys.of(event.event_id)
    every_key = [
        *keys.all_static(),
        keys.deadlines,
        keys.claimed,
        keys.log,
        keys.hold("hld_x"),
        keys.user("fan-1"),
        keys.key("idem", "fan-1", "digest"),
    ]
    slots = {key_slot(key.encode()) for key in every_key}
    assert len(slots) == 1
    assert len(cluster.get_primaries()) == 3
    (slot,) = slots
    owner = cluster.get_node_from_key(keys.meta)
    in_slot = await cluster.execute_command("CLUSTER GETKEYSINSLOT", slot, 100, target_nodes=owner)
    # The loaded state is on that one node (no general admission here: no ``ga`` hash).
    loaded = {keys.meta, keys.seats, keys.seatcat, keys.cattt, keys.tt}
    assert loaded <= {key.decode() if isinstance(key, bytes) else key for key in in_slot}


async def test_500_buyers_for_100_seats_on_a_redis_cluster(
    cluster_store: HoldStore,
    cluster_catalog: Catalog,
    database: Database,
    clock: Clock,
) -> None:
    """The race of test_inventory_races, against the store: half the buyers hold a seat by
    id (``HoldStore.hold``), half ask for the best one (``handlers.place_hold``, which
    reads availability, a MULTI of four same-slot reads); then every order is paid."""
    event = await cluster_catalog.publish(published_event(rows=10, seats_per_row=10))
    seats = all_seats()
    rng = random.Random(20240501)
    chosen = rng.sample(seats, len(seats))  # every seat asked for by id at least once
    chosen += [rng.choice(seats) for _ in range(BUYERS // 2 - len(seats))]
    seat_maps = SeatMaps(database)

    async def by_id(user: str, seat: str) -> HeldPlaces | PlacesUnavailable:
        try:
            return await cluster_store.hold(
                event.event_id,
                hold_id=f"hld_{uuid.uuid4().hex}",
                user_id=user,
                seats=[(seat, None)],
                general_admission=(),
                now=clock(),
            )
        except PlacesUnavailable as refused:
            return refused

    async def best(user: str) -> HeldPlaces | PlacesUnavailable:
        request = HoldRequest(event_id=event.event_id, user_id=user, best_available_count=1)
        try:
            placed = await handlers.place_hold(
                request, store=cluster_store, seat_maps=seat_maps, database=database, clock=clock
            )
        except PlacesUnavailable as refused:
            return refused
        return placed.held

    asks = [by_id(f"buyer-{n}", seat) for n, seat in enumerate(chosen)]
    asks += [best(f"buyer-{n}") for n in range(len(chosen), BUYERS)]
    rng.shuffle(asks)
    results = await asyncio.gather(*asks)

    winners = [result for result in results if isinstance(result, HeldPlaces)]
    losers = [result for result in results if isinstance(result, PlacesUnavailable)]
    assert len(winners) == PLACES
    assert len(losers) == BUYERS - PLACES
    assert sorted(seat for held in winners for seat, _ in held.seats) == sorted(seats)
    for refused in losers:
        assert 0 <= refused.extensions["left"]["seats"] < PLACES
    availability = await cluster_store.availability(event.event_id)
    assert Counter(availability.seats.values()) == {SeatState.HELD: PLACES}

    outcomes = await asyncio.gather(
        *(cluster_catalog.sell(order_paid(api_answer(held)), clock=clock) for held in winners)
    )
    assert Counter(outcomes) == {"confirmed": PLACES}
    sold = await sold_seats(database, event.event_id)
    assert sorted(seat for seat, _ in sold) == sorted(seats)
    assert len({order for _, order in sold}) == PLACES
    availability = await cluster_store.availability(event.event_id)
    assert Counter(availability.seats.values()) == {SeatState.SOLD: PLACES}

    assert await handlers.rebuild_event(
        event.event_id, database=database, store=cluster_store, force=True
    )
    rebuilt = await cluster_store.availability(event.event_id)
    assert rebuilt.seats == availability.seats
    assert rebuilt.version > availability.version


async def test_every_other_store_call_runs_on_a_redis_cluster(
    cluster: RedisCluster,
    cluster_store: HoldStore,
    cluster_catalog: Catalog,
    database: Database,
    clock: Clock,
) -> None:
    """Release, expiry (the untagged deadline index), idempotent replay, catalog changes,
    returns, reconcile, and the script reload after SCRIPT FLUSH."""
    event = await cluster_catalog.publish(
        published_event(rows=1, seats_per_row=4, general_admission=2)
    )
    standing = event.general_admission
    assert standing is not None
    event_id = event.event_id
    seat_maps = SeatMaps(database)

    def hold(user: str, *seats: str) -> HoldRequest:
        return HoldRequest(event_id=event_id, user_id=user, seats=[(s, None) for s in seats])

    async def place(request: HoldRequest) -> HeldPlaces:
        placed = await handlers.place_hold(
            request, store=cluster_store, seat_maps=seat_maps, database=database, clock=clock
        )
        return placed.held

    released = await place(hold("fan-1", seat_id(0, 0, 0)))
    await handlers.release_hold(
        event_id,
        released.hold_id,
        user_id="fan-1",
        is_admin=False,
        store=cluster_store,
        database=database,
        clock=clock,
    )
    lapsing = await place(hold("fan-2", seat_id(0, 0, 1)))
    assert await cluster_store.get_hold(event_id, lapsing.hold_id) is not None
    again = HoldRequest(
        event_id=event_id, user_id="fan-3", best_available_count=1, idempotency_key="k-1"
    )
    first = await place(again)
    assert (await place(again)).hold_id == first.hold_id
    standing_hold = await place(
        HoldRequest(event_id=event_id, user_id="fan-4", general_admission=[(standing, 2)])
    )

    clock.advance(timedelta(minutes=6))
    assert event_id in await cluster_store.due_events(now=clock())
    assert await tasks.expire_holds(cluster_store, clock=clock, on_change=lambda _: None) == 3
    assert await cluster_store.get_hold(event_id, lapsing.hold_id) is None
    availability = await cluster_store.availability(event_id)
    assert set(availability.seats.values()) == {SeatState.AVAILABLE}
    assert availability.general_admission[str(standing)]["held"] == 0

    # Paid after it lapsed, with the places still free: sold; then a ticket is returned.
    order = order_paid(api_answer(standing_hold))
    assert await cluster_catalog.sell(order, clock=clock) == "confirmed"
    refund = ticket_cancelled(
        order_id=order.order_id, event_id=event_id, seat_id=None, ticket_type_id=standing
    )
    assert await cluster_catalog.cancel_ticket(refund, clock=clock)
    counts = (await cluster_store.availability(event_id)).general_admission[str(standing)]
    assert counts == {"capacity": 2, "held": 0, "sold": 1, "available": 1}

    await cluster_catalog.change(changed_snapshot(event, version=4))
    assert await cluster_store.loaded_version(event_id) == 4
    assert await cluster_store.availability_version(event_id) is not None

    await cluster.delete(EventKeys.of(event_id).meta)  # the state lost, as after a failover
    assert await tasks.reconcile(database, cluster_store) == 1
    assert await cluster_store.loaded_version(event_id) == 4

    await cluster.script_flush()  # on every primary: each script is loaded again on NOSCRIPT
    assert (await place(hold("fan-5", seat_id(0, 0, 3)))).seats[0][0] == seat_id(0, 0, 3)
