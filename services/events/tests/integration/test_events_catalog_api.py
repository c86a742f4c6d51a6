"""The catalog API end to end, in-process against a real PostgreSQL database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from marquee_testing.events import (
    FLOOR_TICKETS,
    PREMIUM_TICKETS,
    SEATED_TICKETS,
    Catalog,
    People,
    event_body,
    key,
    seating_map,
    venue_body,
)
from marquee_testing.waiting import wait_until

PROBLEM = "application/problem+json"


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: without_nulls(item) for name, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


async def test_an_organizer_builds_and_publishes_an_event_the_public_can_read(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    assert venue["seated_seats"] == 8
    assert venue["price_categories"] == ["premium", "standard"]
    assert venue["general_admission"] == [{"name": "Floor", "capacity": 100}]

    created = await client.post(
        "/api/v1/events",
        json=event_body(venue["id"], catalog.clock),
        headers=people.organizer(),
    )
    assert created.status_code == 201, created.text
    event = created.json()
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/api/v1/events/{event['id']}"
    assert (event["status"], event["version"], event["organizer_id"]) == ("draft", 1, "organizer-1")
    assert event["tags"] == ["rock", "live"]
    assert event["time_zone"] == "Europe/Paris"
    assert event["allowed_statuses"] == ["published", "cancelled"]

    seated = await catalog.ticket_type(event["id"], SEATED_TICKETS)
    assert seated["kind"] == "seated"
    floor = await catalog.ticket_type(event["id"], FLOOR_TICKETS)
    assert (floor["kind"], floor["quantity"]) == ("general_admission", 100)

    published = await client.post(
        f"/api/v1/events/{event['id']}/publish", headers=people.organizer()
    )
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert published.json()["version"] == 4
    assert published.headers["ETag"] == '"4"'

    public = await client.get(f"/api/v1/events/{event['id']}")
    assert public.status_code == 200
    body = public.json()
    assert body["status"] == "published"
    assert body["venue"]["name"] == "Olympia"
    assert body["venue"]["location"] == {"latitude": 48.8702, "longitude": 2.3283}
    assert [ticket["name"] for ticket in body["ticket_types"]] == ["Stalls", "Floor"]
    assert body["price_range"] == {"min_minor": 3_000, "max_minor": 4_500, "currency": "EUR"}
    assert body["reviews"] == {"count": 0, "average_rating": None}
    assert body["allowed_statuses"] is None, "only who manages it sees where it can go"
    assert public.headers["ETag"] == '"4"'

    upcoming = await client.get("/api/v1/events")
    assert [item["id"] for item in upcoming.json()["items"]] == [event["id"]]
    mine = await client.get("/api/v1/events/mine", headers=people.organizer())
    assert [item["id"] for item in mine.json()["items"]] == [event["id"]]

    on_sale = await catalog.status(event["id"], "on_sale")
    assert on_sale.status_code == 200, on_sale.text
    assert on_sale.json()["status"] == "on_sale"

    seating = await client.get(f"/api/v1/events/venues/{venue['id']}")
    assert without_nulls(seating.json()["seating_map"]) == seating_map()


async def test_listings_are_paginated_with_cursors(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    created = []
    for index in range(5):
        catalog.clock.advance(timedelta(seconds=1))
        created.append(await catalog.event(venue["id"], name=f"Night {index}"))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/api/v1/events/mine", params=params, headers=people.organizer())
        ).json()
        seen.extend(item["name"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [event["name"] for event in reversed(created)], "newest first, each once"

    drafts = await client.get(
        "/api/v1/events/mine", params={"status": "published"}, headers=people.organizer()
    )
    assert drafts.json()["items"] == []
    venues = await client.get("/api/v1/events/venues/mine", headers=people.organizer())
    assert [item["id"] for item in venues.json()["items"]] == [venue["id"]]
    assert "seating_map" not in venues.json()["items"][0]


async def test_invalid_seating_maps_are_refused_naming_the_part(
    client: httpx.AsyncClient, people: People
) -> None:
    duplicated = seating_map()
    duplicated["sections"][1]["rows"][0]["seats"][1]["id"] = "a-2"
    response = await client.post(
        "/api/v1/events/venues", json=venue_body(seating_map=duplicated), headers=people.organizer()
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/invalid-seating-map")
    assert (
        "sections[1].rows[0].seats[1]: seat id 'a-2' is used twice (first at "
        "sections[0].rows[0].seats[1] as 'A-2')" in problem["detail"]
    )
    assert problem["errors"][0]["field"] == "seating_map.sections[1].rows[0].seats[1]"

    empty_section = seating_map()
    empty_section["sections"].append({"name": "Gallery", "rows": []})
    response = await client.post(
        "/api/v1/events/venues",
        json=venue_body(seating_map=empty_section),
        headers=people.organizer(),
    )
    assert response.status_code == 422
    assert "sections[2]: section 'Gallery' has no rows" in response.json()["detail"]

    response = await client.post(
        "/api/v1/events/venues", json=venue_body(capacity=120), headers=people.organizer()
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "location": "body capacity",
            "field": "capacity",
            "message": "the venue's capacity is 120 but its seating map holds 108 places "
            "(8 seats + 100 general admission); they must be equal",
            "kind": "invalid",
        }
    ]

    response = await client.post(
        "/api/v1/events/venues",
        json=venue_body(country="France", time_zone="Europe/Pariss"),
        headers=people.organizer(),
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["country", "time_zone"]


async def test_bad_event_fields_are_named(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    body = event_body(
        venue["id"],
        catalog.clock,
        image_urls=["ftp://images.example/x.png"],
        category="rave",
    )
    body["ends_at"] = body["starts_at"]
    response = await client.post("/api/v1/events", json=body, headers=people.organizer())
    assert response.status_code == 422
    assert "category" in response.json()["detail"], "pydantic refuses an unknown category"

    body["category"] = "concert"
    response = await client.post("/api/v1/events", json=body, headers=people.organizer())
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [
        "image_urls[0]",
        "ends_at",
    ]


async def test_a_nul_character_is_a_422_naming_the_field(
    client: httpx.AsyncClient, people: People
) -> None:
    seats = seating_map()
    seats["sections"][0]["name"] = "Stalls\u0000"
    for body, field in (
        (venue_body(name="Olympia\u0000"), "name"),
        (venue_body(seating_map=seats), "seating_map.sections.0.name"),
    ):
        response = await client.post("/api/v1/events/venues", json=body, headers=people.organizer())
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_illegal_transitions_are_refused_with_the_allowed_ones(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    event = await catalog.event(venue["id"])

    response = await catalog.status(event["id"], "on_sale")
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/illegal-status-transition")
    assert problem["current_status"] == "draft"
    assert problem["requested_status"] == "on_sale"
    assert problem["allowed_statuses"] == ["published", "cancelled"]

    response = await client.post(
        f"/api/v1/events/{event['id']}/publish", headers=people.organizer()
    )
    assert response.status_code == 409
    assert response.json()["problems"] == ["ticket_types: add at least one ticket type"]

    await catalog.ticket_type(event["id"], SEATED_TICKETS)
    assert (await catalog.status(event["id"], "published")).status_code == 200
    response = await catalog.status(event["id"], "completed")
    assert response.status_code == 409
    assert response.json()["allowed_statuses"] == ["on_sale", "cancelled"]

    assert (await catalog.status(event["id"], "cancelled")).status_code == 200
    response = await catalog.status(event["id"], "published")
    assert response.status_code == 409
    assert response.json()["allowed_statuses"] == []
    edit = await client.patch(
        f"/api/v1/events/{event['id']}", json={"name": "Again"}, headers=people.organizer()
    )
    assert edit.status_code == 409
    assert edit.json()["type"].endswith("/event-not-editable")


async def test_other_organizers_and_customers_are_refused_and_admins_allowed(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    event = await catalog.published_event()
    url = f"/api/v1/events/{event['id']}"

    response = await client.patch(
        url, json={"name": "Mine now"}, headers=people.organizer("organizer-2")
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"].startswith(
        "You can't edit event 'Rock night': it belongs to another organizer"
    )
    assert response.json()["action"] == "edit event 'Rock night'"

    response = await client.patch(url, json={"name": "Mine now"}, headers=people.customer())
    assert response.status_code == 403
    assert response.json()["type"].endswith("/organizer-role-required")

    response = await client.post(
        f"{url}/cancel", json={"reason": "no"}, headers=people.organizer("organizer-2")
    )
    assert response.status_code == 403
    assert "change to cancelled the status of event 'Rock night'" in response.json()["detail"]

    response = await client.post(
        f"{url}/ticket-types", json=PREMIUM_TICKETS, headers=people.customer()
    )
    assert response.status_code == 403

    response = await client.post(
        "/api/v1/events",
        json=event_body(event["venue"]["id"], catalog.clock),
        headers=people.customer(),
    )
    assert response.status_code == 403
    assert response.json()["detail"].startswith("You can't create an event")

    response = await client.post(
        "/api/v1/events",
        json=event_body(event["venue"]["id"], catalog.clock),
        headers=people.organizer("organizer-2"),
    )
    assert response.status_code == 403, "another organizer's venue"
    assert "hold an event at venue 'Olympia'" in response.json()["detail"]

    response = await client.patch(
        f"/api/v1/events/venues/{event['venue']['id']}",
        json={"name": "Taken"},
        headers=people.organizer("organizer-2"),
    )
    assert response.status_code == 403

    response = await client.patch(url, json={"name": "Renamed by an admin"}, headers=people.admin())
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed by an admin"
    assert response.json()["organizer_id"] == "organizer-1", "an admin edit keeps the owner"
    response = await client.post(
        f"{url}/status", json={"status": "on_sale"}, headers=people.admin()
    )
    assert response.status_code == 200

    assert (await client.patch(url, json={"name": "x"})).status_code == 401


async def test_drafts_are_invisible_to_everyone_but_their_organizer_and_admins(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    draft = await catalog.event(venue["id"])
    url = f"/api/v1/events/{draft['id']}"

    for headers in ({}, people.customer(), people.organizer("organizer-2")):
        response = await client.get(url, headers=headers)
        assert response.status_code == 404, headers
        assert response.json()["detail"] == f"There is no event {draft['id']}."
        assert (await client.get(f"{url}/ticket-types", headers=headers)).status_code == 404
        assert (await client.get(f"{url}/reviews", headers=headers)).status_code == 404
    assert (await client.get(url, headers=people.organizer())).status_code == 200
    assert (await client.get(url, headers=people.admin())).status_code == 200
    assert (await client.get("/api/v1/events")).json()["items"] == []


async def test_a_create_replayed_with_its_idempotency_key_happens_once(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    body = event_body(venue["id"], catalog.clock)
    headers = {**people.organizer(), **key()}
    first = await client.post("/api/v1/events", json=body, headers=headers)
    again = await client.post("/api/v1/events", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    mine = await client.get("/api/v1/events/mine", headers=people.organizer())
    assert [item["id"] for item in mine.json()["items"]] == [first.json()["id"]]

    different = await client.post("/api/v1/events", json={**body, "name": "Other"}, headers=headers)
    assert different.status_code == 422
    assert different.json()["type"].endswith("/idempotency-key-reused")


async def test_a_publish_resent_with_its_idempotency_key_is_replayed_not_refused(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    # A client whose publish lost its answer (a gateway died under it) sends it again with
    # the same key: it must get the first answer, not a 409 "already published".
    venue = await catalog.venue()
    event = await catalog.event(venue["id"])
    await catalog.ticket_type(event["id"], SEATED_TICKETS)
    headers = {**people.organizer(), **key()}
    path = f"/api/v1/events/{event['id']}/publish"
    first = await client.post(path, headers=headers)
    again = await client.post(path, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    without_key = await client.post(path, headers=people.organizer())
    assert without_key.status_code == 409, "a new publish of a published event is refused"

    status_path = f"/api/v1/events/{event['id']}/status"
    cancel_headers = {**people.organizer(), **key()}
    body = {"status": "cancelled"}
    cancelled = await client.post(status_path, json=body, headers=cancel_headers)
    replayed = await client.post(status_path, json=body, headers=cancel_headers)
    assert cancelled.status_code == replayed.status_code == 200, replayed.text
    assert replayed.headers["Idempotent-Replayed"] == "true"


async def test_stale_versions_are_refused(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    event = await catalog.event(venue["id"])
    url = f"/api/v1/events/{event['id']}"

    response = await client.patch(
        url, json={"name": "First edit"}, headers={**people.organizer(), "If-Match": '"1"'}
    )
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'

    response = await client.patch(
        url, json={"name": "Lost update"}, headers={**people.organizer(), "If-Match": '"1"'}
    )
    assert response.status_code == 412
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["current_version"] == 2
    assert response.json()["expected_version"] == 1

    response = await client.patch(
        url, json={"name": "Lost update", "expected_version": 1}, headers=people.organizer()
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/version-conflict")

    response = await client.patch(
        url, json={"name": "Second edit", "expected_version": 2}, headers=people.organizer()
    )
    assert response.status_code == 200
    assert response.json()["version"] == 3

    unchanged = await client.patch(url, json={"name": "Second edit"}, headers=people.organizer())
    assert unchanged.json()["version"] == 3, "no change, no new version"

    response = await client.patch(
        url, json={"name": "x"}, headers={**people.organizer(), "If-Match": "soon"}
    )
    assert response.status_code == 422
    response = await client.patch(url, json={"name": None}, headers=people.organizer())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


async def test_ticket_types_follow_the_price_rules(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    event = await catalog.event(venue["id"])
    url = f"/api/v1/events/{event['id']}/ticket-types"
    floor = await catalog.ticket_type(event["id"], FLOOR_TICKETS)

    response = await client.post(
        url,
        json={**FLOOR_TICKETS, "name": "Late floor", "quantity": 1},
        headers=people.organizer(),
    )
    assert response.status_code == 422
    assert "so at most 0 are left" in response.json()["detail"]

    response = await client.post(
        url, json={**SEATED_TICKETS, "currency": "USD"}, headers=people.organizer()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "currency"

    response = await client.post(
        url, json={**SEATED_TICKETS, "name": "floor"}, headers=people.organizer()
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/duplicate-ticket-type")

    response = await client.post(
        url, json={**SEATED_TICKETS, "price_category": "vip"}, headers=people.organizer()
    )
    assert response.status_code == 422
    assert "'vip' is not a price category" in response.json()["detail"]

    await catalog.ticket_type(event["id"], SEATED_TICKETS)
    assert (await catalog.status(event["id"], "published")).status_code == 200
    assert (await catalog.status(event["id"], "on_sale")).status_code == 200
    response = await client.patch(
        f"{url}/{floor['id']}", json={"price_minor": 2_500}, headers=people.organizer()
    )
    assert response.status_code == 409
    assert "its price_minor can't change" in response.json()["detail"]
    response = await client.patch(
        f"{url}/{floor['id']}", json={"name": "Standing"}, headers=people.organizer()
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Standing"
    assert (
        await client.delete(f"{url}/{floor['id']}", headers=people.organizer())
    ).status_code == 409
    listed = await client.get(url)
    assert [item["name"] for item in listed.json()["items"]] == ["Standing", "Stalls"]


async def test_a_live_event_freezes_its_venues_seating_map(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    event = await catalog.published_event()
    url = f"/api/v1/events/venues/{event['venue']['id']}"
    smaller = seating_map()
    smaller["general_admission"][0]["capacity"] = 50
    response = await client.patch(
        url, json={"seating_map": smaller, "capacity": 58}, headers=people.organizer()
    )
    assert response.status_code == 409
    assert response.json()["events"] == ["Rock night"]

    renamed = await client.patch(url, json={"name": "L'Olympia"}, headers=people.organizer())
    assert renamed.status_code == 200
    assert renamed.json()["version"] == 2
    public = await client.get(f"/api/v1/events/{event['id']}")
    assert public.json()["venue"]["name"] == "L'Olympia"
    assert public.json()["version"] == event["version"] + 1, "the venue is part of its snapshot"


async def test_a_draft_can_be_deleted_and_a_public_event_cannot(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    venue = await catalog.venue()
    draft = await catalog.event(venue["id"])
    response = await client.delete(f"/api/v1/events/{draft['id']}", headers=people.organizer())
    assert response.status_code == 204
    response = await client.get(f"/api/v1/events/{draft['id']}", headers=people.organizer())
    assert response.status_code == 404

    event = await catalog.published_event()
    response = await client.delete(f"/api/v1/events/{event['id']}", headers=people.organizer())
    assert response.status_code == 409
    assert "Cancel it instead" in response.json()["detail"]


async def test_the_service_is_ready(client: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await wait_until(ready, timeout=30, message="/readyz never said ready (database, Kafka)")
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/api/v1/events/{event_id}/reviews/{review_id}/reply" in paths


async def test_admins_page_through_every_events_snapshot_others_are_refused(
    client: httpx.AsyncClient, catalog: Catalog, people: People
) -> None:
    published = await catalog.published_event()
    venue = await catalog.venue()
    draft = await catalog.event(venue["id"])

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/events/snapshots", params=params, headers=people.admin())
        assert page.status_code == 200, page.text
        seen.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    by_id = {snapshot["event_id"]: snapshot for snapshot in seen}
    assert len(by_id) == len(seen) == 2
    assert by_id[published["id"]]["public"] is True
    assert by_id[published["id"]]["version"] == published["version"]
    assert {ticket["name"] for ticket in by_id[published["id"]]["ticket_types"]} == {
        "Stalls",
        "Floor",
    }
    assert by_id[draft["id"]]["public"] is False

    for who in (people.organizer(), people.customer()):
        refused = await client.get("/api/v1/events/snapshots", headers=who)
        assert refused.status_code == 403
