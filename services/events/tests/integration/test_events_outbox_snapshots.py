"""What leaves through the outbox: full snapshots with increasing versions, in the same
transaction as the change, and nothing for a refused request."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from marquee_contracts import REGISTRY, CloudEvent
from marquee_contracts.catalog import EventCancelled, EventChanged, EventPublished, VenueChanged
from marquee_platform.db import Database
from marquee_testing.events import FLOOR_TICKETS, SEATED_TICKETS, Catalog, People, outbox_rows


def parse(row: dict[str, Any]) -> Any:
    """The row's CloudEvent, checked against the registered schema of its topic."""
    event = CloudEvent.model_validate(row["payload"])
    assert event.type == row["topic"]
    assert event.source == "/marquee/events"
    assert event.subject == row["key"]
    return REGISTRY.parse_data(event)


async def snapshots(database: Database, event_id: str) -> list[EventChanged]:
    rows = await outbox_rows(database, "events.event-changed.v1")
    return [parse(row) for row in rows if row["key"] == event_id]


async def test_every_change_sends_the_full_snapshot_with_the_next_version(
    client: httpx.AsyncClient, catalog: Catalog, people: People, database: Database
) -> None:
    venue = await catalog.venue()
    event = await catalog.event(venue["id"])
    await catalog.ticket_type(event["id"], SEATED_TICKETS)
    await catalog.ticket_type(event["id"], FLOOR_TICKETS)
    edit = await client.patch(
        f"/api/v1/events/{event['id']}",
        json={"description": "Four bands now.", "tags": ["rock", "indie"]},
        headers=people.organizer(),
    )
    assert edit.status_code == 200
    published = await client.post(
        f"/api/v1/events/{event['id']}/publish", headers=people.organizer()
    )
    assert published.status_code == 200
    renamed = await client.patch(
        f"/api/v1/events/venues/{venue['id']}",
        json={"name": "L'Olympia", "location": {"latitude": 48.87, "longitude": 2.33}},
        headers=people.organizer(),
    )
    assert renamed.status_code == 200

    sent = await snapshots(database, event["id"])
    assert [snapshot.version for snapshot in sent] == [1, 2, 3, 4, 5, 6]
    assert [snapshot.status for snapshot in sent] == ["draft"] * 4 + ["published"] * 2
    assert [snapshot.public for snapshot in sent] == [False] * 4 + [True] * 2
    final = (await client.get(f"/api/v1/events/{event['id']}")).json()
    assert final["version"] == sent[-1].version

    last = sent[-1]
    assert str(last.event_id) == event["id"]
    assert last.deleted is False
    assert last.organizer_id == "organizer-1"
    assert (last.name, last.description, last.category) == (
        "Rock night",
        "Four bands now.",
        "concert",
    )
    assert last.tags == ["rock", "indie"]
    assert last.image_urls == ["https://images.example/rock-night.jpg"]
    assert last.time_zone == "Europe/Paris"
    assert last.venue.model_dump(mode="json") == {
        "id": venue["id"],
        "name": "L'Olympia",
        "address": "28 Boulevard des Capucines",
        "city": "Paris",
        "country": "FR",
        "latitude": 48.87,
        "longitude": 2.33,
        "time_zone": "Europe/Paris",
    }
    assert last.price_range is not None
    assert last.price_range.model_dump() == {
        "min_minor": 3_000,
        "max_minor": 4_500,
        "currency": "EUR",
    }
    assert [(ticket.name, ticket.kind) for ticket in last.ticket_types] == [
        ("Stalls", "seated"),
        ("Floor", "general_admission"),
    ]
    assert last.high_demand is True
    assert last.max_tickets_per_order == 6
    assert last.sale_starts_at is not None
    assert last.sale_ends_at is not None
    assert last.published_at is not None
    assert sent[0].price_range is None, "no ticket types yet"

    announced = [parse(row) for row in await outbox_rows(database, "events.event-published.v1")]
    assert len(announced) == 1
    publication: EventPublished = announced[0]
    assert publication.version == 5
    assert publication.seating.capacity == 108
    assert publication.seating.seat_ids_by_price_category == {
        "standard": ["A-1", "A-2", "A-3", "B-1", "B-2", "B-3"],
        "premium": ["C-1", "C-2"],
    }
    assert [area.model_dump() for area in publication.seating.general_admission] == [
        {"name": "Floor", "capacity": 100}
    ]
    # The layout inventory places best-available seats from: sections in the organizer's
    # order, rows from the stage back, each seat with its own or its row's category.
    assert publication.seating.sections is not None
    layout = [
        (section.name, row.label, [(seat.id, seat.price_category) for seat in row.seats])
        for section in publication.seating.sections
        for row in section.rows
    ]
    assert layout == [
        ("Stalls", "A", [("A-1", "standard"), ("A-2", "standard"), ("A-3", "standard")]),
        ("Stalls", "B", [("B-1", "standard"), ("B-2", "standard"), ("B-3", "standard")]),
        ("Balcony", "C", [("C-1", "premium"), ("C-2", "premium")]),
    ]
    assert [ticket.name for ticket in publication.ticket_types] == ["Stalls", "Floor"]

    venues: list[VenueChanged] = [
        parse(row) for row in await outbox_rows(database, "events.venue-changed.v1")
    ]
    assert [(item.version, item.name) for item in venues] == [(1, "Olympia"), (2, "L'Olympia")]
    assert venues[0].seated_seats == 8


async def test_refused_requests_send_nothing(
    client: httpx.AsyncClient, catalog: Catalog, people: People, database: Database
) -> None:
    venue = await catalog.venue()
    event = await catalog.event(venue["id"])
    before = await outbox_rows(database)

    assert (await catalog.status(event["id"], "on_sale")).status_code == 409
    assert (
        await client.post(f"/api/v1/events/{event['id']}/publish", headers=people.organizer())
    ).status_code == 409
    refused = await client.patch(
        f"/api/v1/events/{event['id']}", json={"name": "x"}, headers=people.organizer("other")
    )
    assert refused.status_code == 403
    assert await outbox_rows(database) == before


async def test_cancelling_and_deleting_are_announced(
    client: httpx.AsyncClient, catalog: Catalog, people: People, database: Database
) -> None:
    event = await catalog.published_event()
    assert (await catalog.status(event["id"], "on_sale")).status_code == 200
    cancelled = await client.post(
        f"/api/v1/events/{event['id']}/cancel",
        json={"reason": "The band split up."},
        headers=people.organizer(),
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["cancellation_reason"] == "The band split up."

    notices: list[EventCancelled] = [
        parse(row) for row in await outbox_rows(database, "events.event-cancelled.v1")
    ]
    assert len(notices) == 1
    assert notices[0].previous_status == "on_sale"
    assert notices[0].reason == "The band split up."
    last = (await snapshots(database, event["id"]))[-1]
    assert (last.status, last.public, last.version) == ("cancelled", True, notices[0].version)
    assert last.cancellation_reason == "The band split up."
    assert (await client.get(f"/api/v1/events/{event['id']}")).json()["status"] == "cancelled"

    draft = await catalog.event(event["venue"]["id"])
    deleted = await client.delete(f"/api/v1/events/{draft['id']}", headers=people.organizer())
    assert deleted.status_code == 204
    sent = await snapshots(database, draft["id"])
    assert [(snapshot.version, snapshot.deleted) for snapshot in sent] == [(1, False), (2, True)]


async def test_concurrent_edits_get_distinct_versions_in_commit_order(
    client: httpx.AsyncClient, catalog: Catalog, people: People, database: Database
) -> None:
    venue = await catalog.venue()
    event = await catalog.event(venue["id"])
    url = f"/api/v1/events/{event['id']}"

    edits = await asyncio.gather(
        *(
            client.patch(url, json={"description": f"take {index}"}, headers=people.organizer())
            for index in range(8)
        )
    )
    assert [response.status_code for response in edits] == [200] * 8
    sent = await snapshots(database, event["id"])
    assert [snapshot.version for snapshot in sent] == list(range(1, 10)), "gap-free, in order"
    final = (await client.get(url, headers=people.organizer())).json()
    assert (final["version"], final["description"]) == (9, sent[-1].description)

    racing = await asyncio.gather(
        *(
            client.patch(
                url,
                json={"name": f"Rename {index}"},
                headers={**people.organizer(), "If-Match": '"9"'},
            )
            for index in range(4)
        )
    )
    assert sorted(response.status_code for response in racing) == [200, 412, 412, 412]
