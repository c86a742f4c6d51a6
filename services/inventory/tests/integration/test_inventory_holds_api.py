"""Holds through the API against real Redis and PostgreSQL: all or nothing, limits, sale
windows, best-available, release, idempotency, availability and its ETag."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from marquee_testing.events import People
from marquee_testing.inventory import Catalog, HoldApi, changed_snapshot, published_event, seat_id


def code_of(response: httpx.Response) -> str:
    """The problem's code: the last part of its ``type`` URI."""
    return str(response.json()["type"]).rsplit("/", 1)[1]


async def test_a_hold_takes_its_seats_and_nobody_else_gets_them(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event(rows=2, seats_per_row=5))
    seats = [{"seat_id": seat_id(0, 0, 1)}, {"seat_id": seat_id(0, 0, 2)}]

    held = await api.hold(event.event_id, people.customer("fan-1"), seats=seats)
    assert held.status_code == 201, held.text
    body = held.json()
    assert body["hold_id"].startswith("hld_")
    assert len(body["hold_id"]) > 20
    assert {seat["seat_id"] for seat in body["seats"]} == {seat_id(0, 0, 1), seat_id(0, 0, 2)}
    assert {seat["ticket_type_id"] for seat in body["seats"]} == {str(event.seated["standard"])}
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=4, seconds=50) < expires - datetime.now(UTC) <= timedelta(minutes=5)
    assert held.headers["location"].endswith(body["hold_id"])

    # All or nothing: one of the two is taken, so the other is not held either.
    refused = await api.hold(
        event.event_id,
        people.customer("fan-2"),
        seats=[{"seat_id": seat_id(0, 0, 2)}, {"seat_id": seat_id(0, 0, 3)}],
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].rsplit("/", 1)[1] == "places-unavailable"
    assert seat_id(0, 0, 2) in problem["detail"]
    assert problem["left"]["seats"] == 8
    availability = await api.availability(event.event_id)
    assert availability["seats"][seat_id(0, 0, 3)] == "available"
    assert availability["seats"][seat_id(0, 0, 1)] == "held"
    assert availability["seats_available"] == 8
    assert "fan-1" not in str(availability)  # never who holds a seat


async def test_only_the_holder_or_an_admin_reads_or_releases_a_hold(
    catalog: Catalog, api: HoldApi, people: People, client: object
) -> None:
    event = await catalog.publish(published_event())
    held = (
        await api.hold(
            event.event_id, people.customer("fan-1"), seats=[{"seat_id": seat_id(0, 0, 0)}]
        )
    ).json()
    path = f"/api/v1/inventory/events/{event.event_id}/holds/{held['hold_id']}"
    http = api.client
    assert (await http.get(path, headers=people.customer("fan-2"))).status_code == 404
    assert (await http.get(path)).status_code == 401
    assert (await http.get(path, headers=people.customer("fan-1"))).status_code == 200
    assert (await http.get(path, headers=people.admin())).status_code == 200
    assert (
        await api.release(event.event_id, held["hold_id"], people.customer("fan-2"))
    ).status_code == 404
    assert (await api.availability(event.event_id))["seats"][seat_id(0, 0, 0)] == "held"

    released = await api.release(event.event_id, held["hold_id"], people.customer("fan-1"))
    assert released.status_code == 204
    assert (await api.availability(event.event_id))["seats"][seat_id(0, 0, 0)] == "available"
    again = await api.release(event.event_id, held["hold_id"], people.customer("fan-1"))
    assert again.status_code == 404
    assert code_of(again) == "hold-not-found"

    other = (
        await api.hold(
            event.event_id, people.customer("fan-3"), seats=[{"seat_id": seat_id(0, 0, 0)}]
        )
    ).json()
    assert (await api.release(event.event_id, other["hold_id"], people.admin())).status_code == 204


async def test_general_admission_quantities_never_go_beyond_capacity(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event(rows=1, seats_per_row=1, general_admission=5))
    standing = str(event.general_admission)

    first = await api.hold(
        event.event_id,
        people.customer("fan-1"),
        general_admission=[{"ticket_type_id": standing, "quantity": 3}],
    )
    assert first.status_code == 201
    too_many = await api.hold(
        event.event_id,
        people.customer("fan-2"),
        general_admission=[{"ticket_type_id": standing, "quantity": 3}],
    )
    assert too_many.status_code == 409
    assert too_many.json()["left"][standing] == 2
    assert "only 2 places" in too_many.json()["detail"]
    counts = (await api.availability(event.event_id))["general_admission"][standing]
    assert counts == {"capacity": 5, "held": 3, "sold": 0, "available": 2}


async def test_the_per_person_limit_counts_every_live_hold(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event(rows=1, seats_per_row=10, max_per_order=3))
    fan = people.customer("fan-1")
    first = await api.hold(
        event.event_id, fan, seats=[{"seat_id": seat_id(0, 0, n)} for n in (0, 1)]
    )
    assert first.status_code == 201
    over = await api.hold(
        event.event_id, fan, seats=[{"seat_id": seat_id(0, 0, n)} for n in (5, 6)]
    )
    assert over.status_code == 422
    assert code_of(over) == "over-limit"
    assert "At most 3" in over.json()["detail"]
    assert "already hold 2" in over.json()["detail"]
    # Releasing gives the allowance back.
    await api.release(event.event_id, first.json()["hold_id"], fan)
    assert (
        await api.hold(
            event.event_id, fan, seats=[{"seat_id": seat_id(0, 0, n)} for n in (5, 6, 7)]
        )
    ).status_code == 201


async def test_outside_the_sale_window_or_cancelled_nothing_is_held(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    opens = datetime.now(UTC) + timedelta(days=2)
    early = await catalog.publish(published_event(sale_starts_at=opens))
    refused = await api.hold(
        early.event_id, people.customer(), seats=[{"seat_id": seat_id(0, 0, 0)}]
    )
    assert refused.status_code == 409
    assert code_of(refused) == "sale-not-open"
    assert (
        opens.replace(microsecond=(opens.microsecond // 1000) * 1000).isoformat()[:19]
        in refused.json()["detail"]
    )

    event = await catalog.publish(published_event())
    await catalog.change(changed_snapshot(event, version=10, status="cancelled"))
    cancelled = await api.hold(
        event.event_id, people.customer(), seats=[{"seat_id": seat_id(0, 0, 0)}]
    )
    assert cancelled.status_code == 409
    assert code_of(cancelled) == "event-cancelled"
    assert "cancelled" in cancelled.json()["detail"]


async def test_bad_requests_name_what_is_wrong_and_change_nothing(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event(general_admission=4))
    other = await catalog.publish(published_event())
    fan = people.customer()
    cases = [
        ({"seats": [{"seat_id": "Z-99"}]}, 422, "unknown-seat", "Z-99"),
        (
            {"seats": [{"seat_id": seat_id(0, 0, 0)}, {"seat_id": "nope"}]},
            422,
            "unknown-seat",
            "nope",
        ),
        (
            {
                "seats": [
                    {"seat_id": seat_id(0, 0, 0), "ticket_type_id": str(other.seated["standard"])}
                ]
            },
            422,
            "unknown-ticket-type",
            str(other.seated["standard"]),
        ),
        (
            {
                "seats": [
                    {"seat_id": seat_id(0, 0, 0), "ticket_type_id": str(event.general_admission)}
                ]
            },
            422,
            "wrong-ticket-type",
            "does not sell",
        ),
        (
            {
                "general_admission": [
                    {"ticket_type_id": str(event.seated["standard"]), "quantity": 1}
                ]
            },
            422,
            "wrong-ticket-type",
            "general admission",
        ),
        (
            {
                "general_admission": [
                    {"ticket_type_id": str(event.general_admission), "quantity": 0}
                ]
            },
            422,
            None,
            "quantity",
        ),
        ({"best_available": {"count": 0}}, 422, None, "count"),
        ({}, 422, "one-kind-of-hold", "exactly one"),
        (
            {"seats": [{"seat_id": seat_id(0, 0, 0)}], "best_available": {"count": 1}},
            422,
            "one-kind-of-hold",
            "exactly one",
        ),
        (
            {"seats": [{"seat_id": seat_id(0, 0, 1)}, {"seat_id": seat_id(0, 0, 1)}]},
            422,
            "duplicate-seat",
            "twice",
        ),
    ]
    for body, status, code, mentioned in cases:
        response = await api.hold(event.event_id, fan, **body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        if code is not None:
            assert code_of(response) == code, (body, response.text)
        assert mentioned in response.text, (body, response.text)
    unknown = await api.hold(uuid.uuid4(), fan, seats=[{"seat_id": seat_id(0, 0, 0)}])
    assert unknown.status_code == 404
    availability = await api.availability(event.event_id)
    assert availability["seats_available"] == 10
    assert availability["general_admission"][str(event.general_admission)]["held"] == 0


async def test_best_available_prefers_adjacent_seats_in_the_best_section_near_the_centre(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event(sections=2, rows=2, seats_per_row=6))
    held = await api.hold(event.event_id, people.customer("fan-1"), best_available={"count": 2})
    assert held.status_code == 201, held.text
    body = held.json()
    # Section 0 (best ranked), row 0 (nearest the stage), the two seats either side of
    # the centre line of a 6-seat row: positions 2 and 3.
    assert sorted(seat["seat_id"] for seat in body["seats"]) == [seat_id(0, 0, 2), seat_id(0, 0, 3)]
    assert body["placement"]["rule"] == "adjacent"
    assert "adjacent" in body["placement"]["explanation"]

    # Break row 0 into single free seats: 4 together no longer fit there, row 1 has them.
    for n in (0, 5):
        await api.hold(
            event.event_id, people.customer("fan-2"), seats=[{"seat_id": seat_id(0, 0, n)}]
        )
    block = (
        await api.hold(event.event_id, people.customer("fan-3"), best_available={"count": 4})
    ).json()
    assert sorted(seat["seat_id"] for seat in block["seats"]) == [
        seat_id(0, 1, n) for n in (1, 2, 3, 4)
    ]


async def test_best_available_splits_when_no_row_has_enough_adjacent_seats(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event(rows=2, seats_per_row=3))
    held = await api.hold(event.event_id, people.customer(), best_available={"count": 5})
    assert held.status_code == 201, held.text
    body = held.json()
    assert len(body["seats"]) == 5
    assert body["placement"]["rule"] == "split"
    assert "2 blocks" in body["placement"]["explanation"]
    none_left = await api.hold(
        event.event_id, people.customer("fan-2"), best_available={"count": 2}
    )
    assert none_left.status_code == 409
    assert "Only 1 seats are left" in none_left.json()["detail"]


async def test_the_same_idempotency_key_returns_the_same_hold(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event())
    headers = {**people.customer("fan-1"), "Idempotency-Key": "retry-1"}
    path = f"/api/v1/inventory/events/{event.event_id}/holds"
    body = {"best_available": {"count": 2}}
    first = await api.client.post(path, json=body, headers=headers)
    again = await api.client.post(path, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["hold_id"] == again.json()["hold_id"]
    assert (await api.availability(event.event_id))["seats_available"] == 8  # held once
    other_body = await api.client.post(path, json={"best_available": {"count": 3}}, headers=headers)
    assert other_body.status_code == 422
    assert code_of(other_body) == "idempotency-key-reused"


async def test_availability_answers_304_while_nothing_changed(
    catalog: Catalog, api: HoldApi, people: People
) -> None:
    event = await catalog.publish(published_event())
    path = f"/api/v1/inventory/events/{event.event_id}/availability"
    first = await api.client.get(path)
    etag = first.headers["etag"]
    assert (await api.client.get(path, headers={"If-None-Match": etag})).status_code == 304
    await api.hold(event.event_id, people.customer(), seats=[{"seat_id": seat_id(0, 0, 0)}])
    changed = await api.client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
