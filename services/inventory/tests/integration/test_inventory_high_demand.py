"""High-demand mode: holds queue on the event's partition and are applied first come,
first served by the consumer; the outcome is on the request and the fan's channel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from marquee_contracts.inventory import HOLD_REQUESTED
from marquee_inventory.consumers import CONSUMED_TOPICS, build_consumer
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_platform.kafka import ensure_topics
from marquee_testing.events import People
from marquee_testing.inventory import Catalog, HoldApi, published_event, seat_id
from marquee_testing.waiting import wait_until


async def test_requests_are_queued_and_applied_in_arrival_order(
    inventory_settings: InventorySettings,
    catalog: Catalog,
    api: HoldApi,
    people: People,
    database: Database,
    store: HoldStore,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    client: httpx.AsyncClient,
) -> None:
    topic = f"test.{unique_name('hold-requested')}.v1"
    inventory_settings.hold_requests_topic = topic  # the app reads its settings per request
    await ensure_topics(kafka_bootstrap, {topic: 3})
    event = await catalog.publish(published_event(rows=1, seats_per_row=3, high_demand=True))
    wanted = [{"seat_id": seat_id(0, 0, 1)}]

    # Five fans ask for the same seat, one after another: first come, first served.
    asked = []
    for n in range(5):
        response = await api.hold(event.event_id, people.customer(f"fan-{n}"), seats=wanted)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        asked.append((f"fan-{n}", response.headers["location"]))
    pending = await client.get(asked[0][1], headers=people.customer("fan-0"))
    assert pending.json()["status"] == "pending"
    assert (await client.get(asked[0][1], headers=people.customer("fan-1"))).status_code == 404
    assert (await api.availability(event.event_id))["seats"][seat_id(0, 0, 1)] == "available"

    # Every other topic under a name of its own too: the shared ones carry other tests'.
    names = {name: f"test.{unique_name('unused')}.v1" for name in CONSUMED_TOPICS}
    names[HOLD_REQUESTED.name] = topic
    await ensure_topics(kafka_bootstrap, {name: 1 for name in names.values() if name != topic})
    runner = build_consumer(
        inventory_settings,
        database=database,
        redis=store.redis,
        group=unique_name("inventory"),
        topic_names=names,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:

        async def all_decided() -> bool:
            for user, location in asked:
                body = (await client.get(location, headers=people.customer(user))).json()
                if body["status"] == "pending":
                    return False
            return True

        await wait_until(all_decided, timeout=60, message="every queued request decided")
    finally:
        stop.set()
        await running
    outcomes = [
        (await client.get(location, headers=people.customer(user))).json()
        for user, location in asked
    ]
    assert [outcome["status"] for outcome in outcomes] == ["held"] + ["refused"] * 4
    assert outcomes[0]["hold"]["seats"][0]["seat_id"] == seat_id(0, 0, 1)
    assert outcomes[1]["problem"]["status"] == 409
    assert outcomes[1]["problem"]["code"] == "places-unavailable"
    assert (await api.availability(event.event_id))["seats"][seat_id(0, 0, 1)] == "held"


async def test_a_retried_queued_request_is_the_same_request(
    inventory_settings: InventorySettings,
    catalog: Catalog,
    people: People,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    client: httpx.AsyncClient,
) -> None:
    topic = f"test.{unique_name('hold-requested')}.v1"
    inventory_settings.hold_requests_topic = topic
    await ensure_topics(kafka_bootstrap, {topic: 1})
    event = await catalog.publish(published_event(rows=1, seats_per_row=3, high_demand=True))
    path = f"/api/v1/inventory/events/{event.event_id}/holds"
    headers = {**people.customer("fan-1"), "Idempotency-Key": "queued-once"}
    body = {"seats": [{"seat_id": seat_id(0, 0, 0)}]}
    first = await client.post(path, json=body, headers=headers)
    again = await client.post(path, json=body, headers=headers)
    other_fan = await client.post(
        path, json=body, headers={**people.customer("fan-2"), "Idempotency-Key": "queued-once"}
    )
    assert (first.status_code, again.status_code, other_fan.status_code) == (202, 202, 202)
    assert first.json()["request_id"] == again.json()["request_id"]
    assert other_fan.json()["request_id"] != first.json()["request_id"]
