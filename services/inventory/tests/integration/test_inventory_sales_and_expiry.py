"""Expiry, sales into PostgreSQL, returns, and rebuilding Redis from PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import redis.asyncio as redis_asyncio

from marquee_inventory import handlers, tasks
from marquee_inventory.holds import EventKeys
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_testing.events import Clock, People, outbox_rows
from marquee_testing.inventory import (
    Catalog,
    HoldApi,
    order_paid,
    published_event,
    seat_id,
    sold_seats,
    ticket_cancelled,
)


async def forget_everything_of(
    redis: redis_asyncio.Redis, event_id: uuid.UUID, store: HoldStore
) -> None:
    keys = [
        key
        async for key in redis.scan_iter(
            match=EventKeys.of(event_id).tag.replace("{", "\\{").replace("}", "\\}") + "*"
        )
    ]
    assert keys
    await redis.delete(*keys, store.deadline_index, store.log_index)


async def test_a_lapsed_hold_is_released_by_the_sweeper_and_logged(
    catalog: Catalog, api: HoldApi, people: People, store: HoldStore, clock: Clock
) -> None:
    event = await catalog.publish(published_event(general_admission=3))
    held = (
        await api.hold(
            event.event_id,
            people.customer("fan-1"),
            seats=[{"seat_id": seat_id(0, 0, 0)}],
        )
    ).json()
    standing = (
        await api.hold(
            event.event_id,
            people.customer("fan-2"),
            general_admission=[{"ticket_type_id": str(event.general_admission), "quantity": 2}],
        )
    ).json()
    changed: list[uuid.UUID] = []
    assert await tasks.expire_holds(store, clock=clock, on_change=changed.append) == 0

    clock.advance(timedelta(minutes=5, milliseconds=1))
    assert await tasks.expire_holds(store, clock=clock, on_change=changed.append) == 2
    assert changed == [event.event_id]
    availability = await api.availability(event.event_id)
    assert availability["seats"][seat_id(0, 0, 0)] == "available"
    assert availability["general_admission"][str(event.general_admission)]["held"] == 0
    log = await store.redis.xrange(EventKeys.of(event.event_id).log)
    kinds = [(fields[b"type"], fields[b"hold"].decode()) for _, fields in log]
    assert (b"hold-expired", held["hold_id"]) in kinds
    assert (b"hold-expired", standing["hold_id"]) in kinds
    # The deadline index no longer lists the event: nothing is due there.
    assert event.event_id not in await store.due_events(now=clock() + timedelta(days=1))
    # The fans' allowances came back with the places.
    assert (
        await api.hold(
            event.event_id,
            people.customer("fan-2"),
            general_admission=[{"ticket_type_id": str(event.general_admission), "quantity": 3}],
        )
    ).status_code == 201


async def test_a_paid_hold_becomes_sold_seats_once(
    catalog: Catalog, api: HoldApi, people: People, database: Database, clock: Clock
) -> None:
    event = await catalog.publish(published_event(general_admission=4))
    hold = (
        await api.hold(
            event.event_id,
            people.customer("fan-1"),
            seats=[{"seat_id": seat_id(0, 0, 0)}, {"seat_id": seat_id(0, 0, 1)}],
        )
    ).json()
    paid = order_paid(hold)
    assert await catalog.sell(paid, clock=clock) == "confirmed"
    assert await catalog.sell(paid, clock=clock) == "confirmed"  # redelivered: same answer
    assert await sold_seats(database, event.event_id) == [
        (seat_id(0, 0, 0), str(paid.order_id)),
        (seat_id(0, 0, 1), str(paid.order_id)),
    ]
    confirmations = await outbox_rows(database, "inventory.sale-confirmed.v1")
    assert len(confirmations) == 1
    assert confirmations[0]["key"] == str(event.event_id)
    assert confirmations[0]["payload"]["data"]["order_id"] == str(paid.order_id)
    availability = await api.availability(event.event_id)
    assert availability["seats"][seat_id(0, 0, 0)] == "sold"
    # The hold is gone: nobody can release sold seats through it.
    gone = await api.release(event.event_id, hold["hold_id"], people.customer("fan-1"))
    assert gone.status_code == 404


async def test_a_payment_after_expiry_is_honoured_if_the_places_are_still_free(
    catalog: Catalog, api: HoldApi, people: People, store: HoldStore, clock: Clock
) -> None:
    event = await catalog.publish(published_event(general_admission=2))
    hold = (
        await api.hold(
            event.event_id,
            people.customer("fan-1"),
            general_admission=[{"ticket_type_id": str(event.general_admission), "quantity": 2}],
        )
    ).json()
    clock.advance(timedelta(minutes=6))
    await tasks.expire_holds(store, clock=clock, on_change=lambda _: None)
    assert await catalog.sell(order_paid(hold), clock=clock) == "confirmed"
    counts = (await api.availability(event.event_id))["general_admission"]
    assert counts[str(event.general_admission)] == {
        "capacity": 2,
        "held": 0,
        "sold": 2,
        "available": 0,
    }


async def test_a_payment_after_expiry_is_rejected_when_someone_else_took_the_seats(
    catalog: Catalog,
    api: HoldApi,
    people: People,
    store: HoldStore,
    database: Database,
    clock: Clock,
) -> None:
    event = await catalog.publish(published_event())
    seat = {"seat_id": seat_id(0, 0, 0)}
    late = (await api.hold(event.event_id, people.customer("late-payer"), seats=[seat])).json()
    clock.advance(timedelta(minutes=6))
    await tasks.expire_holds(store, clock=clock, on_change=lambda _: None)
    quick = (await api.hold(event.event_id, people.customer("quick-fan"), seats=[seat])).json()
    assert await catalog.sell(order_paid(late), clock=clock) == "rejected"
    assert await catalog.sell(order_paid(quick), clock=clock) == "confirmed"
    rejections = await outbox_rows(database, "inventory.sale-rejected.v1")
    assert [row["payload"]["data"]["reason"] for row in rejections] == ["places-taken"]
    assert [row for row in await sold_seats(database, event.event_id)] == [
        (
            seat_id(0, 0, 0),
            (await outbox_rows(database, "inventory.sale-confirmed.v1"))[0]["payload"]["data"][
                "order_id"
            ],
        )
    ]


async def test_postgresql_refuses_a_second_sale_even_when_redis_forgot_the_first(
    catalog: Catalog,
    api: HoldApi,
    people: People,
    redis: redis_asyncio.Redis,
    database: Database,
    clock: Clock,
) -> None:
    """Redis lost the sold state (a failover to a stale replica, say) but kept the event:
    a second buyer holds and pays for the same seat; the unique constraint refuses it."""
    event = await catalog.publish(published_event())
    seat = {"seat_id": seat_id(0, 0, 0)}
    first = (await api.hold(event.event_id, people.customer("first"), seats=[seat])).json()
    assert await catalog.sell(order_paid(first), clock=clock) == "confirmed"
    await redis.hset(EventKeys.of(event.event_id).seats, seat_id(0, 0, 0), "a")  # forget it
    second = (await api.hold(event.event_id, people.customer("second"), seats=[seat])).json()
    assert await catalog.sell(order_paid(second), clock=clock) == "rejected"
    assert len(await sold_seats(database, event.event_id)) == 1
    # The refusal reloaded Redis from PostgreSQL: the seat shows sold again.
    assert (await api.availability(event.event_id))["seats"][seat_id(0, 0, 0)] == "sold"


async def test_a_cancelled_ticket_frees_its_place_once(
    catalog: Catalog, api: HoldApi, people: People, database: Database, clock: Clock
) -> None:
    event = await catalog.publish(published_event(general_admission=1))
    seat = {"seat_id": seat_id(0, 0, 0)}
    seated = (await api.hold(event.event_id, people.customer("fan-1"), seats=[seat])).json()
    standing = (
        await api.hold(
            event.event_id,
            people.customer("fan-2"),
            general_admission=[{"ticket_type_id": str(event.general_admission), "quantity": 1}],
        )
    ).json()
    seated_order, standing_order = order_paid(seated), order_paid(standing)
    assert await catalog.sell(seated_order, clock=clock) == "confirmed"
    assert await catalog.sell(standing_order, clock=clock) == "confirmed"
    refund = ticket_cancelled(
        order_id=seated_order.order_id,
        event_id=event.event_id,
        seat_id=seat_id(0, 0, 0),
        ticket_type_id=event.seated["standard"],
    )
    assert await catalog.cancel_ticket(refund, clock=clock)
    assert not await catalog.cancel_ticket(refund, clock=clock)  # redelivered
    standing_refund = ticket_cancelled(
        order_id=standing_order.order_id,
        event_id=event.event_id,
        seat_id=None,
        ticket_type_id=event.general_admission,  # type: ignore[arg-type]
    )
    assert await catalog.cancel_ticket(standing_refund, clock=clock)
    availability = await api.availability(event.event_id)
    assert availability["seats"][seat_id(0, 0, 0)] == "available"
    assert availability["general_admission"][str(event.general_admission)]["sold"] == 0
    assert await sold_seats(database, event.event_id) == []
    again = await api.hold(event.event_id, people.customer("fan-3"), seats=[seat])
    assert again.status_code == 201


async def test_after_flushall_the_state_is_rebuilt_from_postgresql_and_sold_stays_sold(
    catalog: Catalog,
    api: HoldApi,
    people: People,
    redis: redis_asyncio.Redis,
    database: Database,
    store: HoldStore,
    clock: Clock,
) -> None:
    event = await catalog.publish(published_event(general_admission=5))
    bought = (
        await api.hold(
            event.event_id,
            people.customer("fan-1"),
            seats=[{"seat_id": seat_id(0, 0, 0)}],
        )
    ).json()
    crowd = (
        await api.hold(
            event.event_id,
            people.customer("fan-1"),
            general_admission=[{"ticket_type_id": str(event.general_admission), "quantity": 2}],
        )
    ).json()
    assert await catalog.sell(order_paid(bought), clock=clock) == "confirmed"
    assert await catalog.sell(order_paid(crowd), clock=clock) == "confirmed"
    await api.hold(event.event_id, people.customer("fan-2"), seats=[{"seat_id": seat_id(0, 0, 1)}])

    # Everything of this event is gone, as after FLUSHALL (only its keys: the worker's Redis
    # database is shared with other tests).
    await forget_everything_of(redis, event.event_id, store)
    # The next request finds the state missing and rebuilds it: sold from PostgreSQL, the
    # lost hold is gone (holds may be lost with Redis; sales never).
    refused = await api.hold(
        event.event_id, people.customer("fan-3"), seats=[{"seat_id": seat_id(0, 0, 0)}]
    )
    assert refused.status_code == 409
    availability = await api.availability(event.event_id)
    assert availability["seats"][seat_id(0, 0, 0)] == "sold"
    assert availability["seats"][seat_id(0, 0, 1)] == "available"
    assert availability["general_admission"][str(event.general_admission)]["sold"] == 2

    # A forced rebuild (marquee inventory rebuild) keeps live holds.
    live = (
        await api.hold(
            event.event_id, people.customer("fan-4"), seats=[{"seat_id": seat_id(0, 1, 0)}]
        )
    ).json()
    assert await handlers.rebuild_event(event.event_id, database=database, store=store, force=True)
    after = await api.availability(event.event_id)
    assert after["seats"][seat_id(0, 1, 0)] == "held"
    assert (
        await api.release(event.event_id, live["hold_id"], people.customer("fan-4"))
    ).status_code == 204


async def test_reconcile_reloads_an_event_whose_redis_state_fell_behind(
    catalog: Catalog, api: HoldApi, people: People, database: Database, store: HoldStore
) -> None:
    from marquee_testing.inventory import changed_snapshot

    event = await catalog.publish(published_event())
    # A cancellation committed in PostgreSQL, and the process died before telling Redis.
    from marquee_inventory.repository import EventRepository

    async with database.transaction() as session:
        await handlers.apply_event_changed(
            changed_snapshot(event, version=9, status="cancelled"), events=EventRepository(session)
        )
    before = await api.hold(
        event.event_id, people.customer(), seats=[{"seat_id": seat_id(0, 0, 0)}]
    )
    assert before.status_code == 201  # Redis had not heard yet
    assert await tasks.reconcile(database, store) >= 1
    after = await api.hold(
        event.event_id, people.customer("fan-2"), seats=[{"seat_id": seat_id(0, 0, 1)}]
    )
    assert after.status_code == 409
