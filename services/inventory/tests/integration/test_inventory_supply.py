"""``GET …/supply``: what is left and in play, from the scripts' counters, against real
Redis and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from marquee_inventory.holds import EventKeys
from marquee_testing.events import Clock, People
from marquee_testing.inventory import Catalog, HoldApi, order_paid, published_event, seat_id


async def supply(client: httpx.AsyncClient, event_id: uuid.UUID) -> dict[str, Any]:
    response = await client.get(f"/api/v1/inventory/events/{event_id}/supply")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def numbers(body: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in body.items()
        if name not in ("event_id", "version", "ticket_types")
    }


async def test_supply_counts_free_places_holds_and_general_admission(
    catalog: Catalog, api: HoldApi, people: People, client: httpx.AsyncClient, clock: Clock
) -> None:
    event = await catalog.publish(published_event(rows=2, seats_per_row=5, general_admission=10))
    standing = str(event.general_admission)
    before = await supply(client, event.event_id)
    assert before["event_id"] == str(event.event_id)
    assert numbers(before) == {
        "selling": True,
        "available": 20,
        "live_holds": 0,
        "held_general_admission": 0,
        "sold_general_admission": 0,
    }

    seats = await api.hold(
        event.event_id,
        people.customer("fan-1"),
        seats=[{"seat_id": seat_id(0, 0, 0)}, {"seat_id": seat_id(0, 0, 1)}],
    )
    three = await api.hold(
        event.event_id,
        people.customer("fan-2"),
        general_admission=[{"ticket_type_id": standing, "quantity": 3}],
    )
    two = await api.hold(
        event.event_id,
        people.customer("fan-3"),
        general_admission=[{"ticket_type_id": standing, "quantity": 2}],
    )
    assert {seats.status_code, three.status_code, two.status_code} == {201}
    held = await supply(client, event.event_id)
    assert numbers(held) == {
        "selling": True,
        "available": 8 + 5,
        "live_holds": 3,
        "held_general_admission": 5,
        "sold_general_admission": 0,
    }
    assert held["version"] > before["version"]
    assert held["version"] == (await api.availability(event.event_id))["version"]

    # A paid hold's places move from held to sold; a released one is free again.
    assert await catalog.sell(order_paid(three.json()), clock=clock) == "confirmed"
    await api.release(event.event_id, seats.json()["hold_id"], people.customer("fan-1"))
    after = await supply(client, event.event_id)
    assert numbers(after) == {
        "selling": True,
        "available": 10 + 5,
        "live_holds": 1,
        "held_general_admission": 2,
        "sold_general_admission": 3,
    }
    availability = await api.availability(event.event_id)
    free_general_admission = availability["general_admission"][standing]["available"]
    assert after["available"] == availability["seats_available"] + free_general_admission
    assert after["ticket_types"] == {standing: 5}, "per ticket type, for the waitlist"


async def test_supply_rebuilds_a_lost_state_and_404s_an_unknown_event(
    catalog: Catalog, api: HoldApi, people: People, client: httpx.AsyncClient, clock: Clock
) -> None:
    event = await catalog.publish(published_event(rows=1, seats_per_row=4, general_admission=6))
    paid = await api.hold(
        event.event_id,
        people.customer("fan-1"),
        general_admission=[{"ticket_type_id": str(event.general_admission), "quantity": 2}],
    )
    assert await catalog.sell(order_paid(paid.json()), clock=clock) == "confirmed"
    # The event's state lost from Redis (its keys only: the worker's Redis is shared).
    keys = EventKeys.of(event.event_id)
    await catalog.store.redis.delete(*keys.all_static(), keys.deadlines)

    rebuilt = await supply(client, event.event_id)
    assert numbers(rebuilt) == {
        "selling": True,
        "available": 4 + 4,
        "live_holds": 0,
        "held_general_admission": 0,
        "sold_general_admission": 2,  # from PostgreSQL
    }

    unknown = await client.get(f"/api/v1/inventory/events/{uuid.uuid4()}/supply")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["type"].rsplit("/", 1)[1] == "event-not-found"


async def test_supply_is_documented_in_openapi(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/inventory/events/{event_id}/supply"]["get"]
    assert "(anyone)" in operation["summary"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/SupplyRead")
    assert set(document["components"]["schemas"]["SupplyRead"]["properties"]) == {
        "event_id",
        "version",
        "selling",
        "available",
        "live_holds",
        "held_general_admission",
        "sold_general_admission",
        "ticket_types",
    }
    holds = document["paths"]["/api/v1/inventory/events/{event_id}/holds"]["post"]
    assert "403" in holds["responses"]
    assert any(parameter["name"] == "Admission-Token" for parameter in holds["parameters"])
