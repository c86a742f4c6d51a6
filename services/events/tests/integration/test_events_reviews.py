"""Reviews: only ticket holders, only after the event ended, once each; one organizer reply."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from marquee_contracts.booking import TicketIssued
from marquee_events import handlers
from marquee_events.repository import TicketHolderRepository
from marquee_platform.db import Database
from marquee_testing.events import Catalog, People, key, outbox_rows


async def hold_ticket(database: Database, event_id: str, user_id: str) -> None:
    """What the ticket-issued consumer does (its own test runs it through Kafka)."""
    async with database.transaction() as session:
        await handlers.record_ticket_holder(
            TicketIssued(
                ticket_id=uuid.uuid4(),
                order_id=uuid.uuid4(),
                event_id=uuid.UUID(event_id),
                user_id=user_id,
                issued_at=datetime.now(UTC),
            ),
            holders=TicketHolderRepository(session),
        )


async def review(
    client: httpx.AsyncClient, people: People, event_id: str, user: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/events/{event_id}/reviews",
        json={"rating": 4, "comment": "Great night.", **body},
        headers={**people.customer(user), **key()},
    )


async def test_ticket_holders_review_once_after_the_end_and_the_organizer_replies(
    client: httpx.AsyncClient, catalog: Catalog, people: People, database: Database
) -> None:
    event = await catalog.published_event()
    event_id = event["id"]
    assert (await catalog.status(event_id, "on_sale")).status_code == 200
    await hold_ticket(database, event_id, "fan-1")
    await hold_ticket(database, event_id, "fan-2")
    await hold_ticket(database, event_id, "fan-3")

    early = await review(client, people, event_id, "fan-1")
    assert early.status_code == 409
    assert early.json()["type"].endswith("/event-not-ended")
    stranger = await review(client, people, event_id, "fan-9")
    assert stranger.status_code == 403
    assert stranger.json()["type"].endswith("/not-a-ticket-holder")

    catalog.clock.advance(timedelta(days=31))
    assert (await catalog.status(event_id, "completed")).status_code == 200

    headers = {**people.customer("fan-1"), **key()}
    body = {"rating": 5, "comment": "Best gig this year."}
    first = await client.post(f"/api/v1/events/{event_id}/reviews", json=body, headers=headers)
    assert first.status_code == 201, first.text
    replayed = await client.post(f"/api/v1/events/{event_id}/reviews", json=body, headers=headers)
    assert replayed.json() == first.json()
    assert replayed.headers["Idempotent-Replayed"] == "true"
    twice = await review(client, people, event_id, "fan-1", rating=1)
    assert twice.status_code == 409
    assert twice.json()["type"].endswith("/already-reviewed")
    assert twice.json()["review_id"] == first.json()["id"]

    out_of_range = await review(client, people, event_id, "fan-3", rating=6)
    assert out_of_range.status_code == 422
    catalog.clock.advance(timedelta(minutes=5))
    second = await review(client, people, event_id, "fan-2", rating=3, comment="")
    assert second.status_code == 201

    listed = (await client.get(f"/api/v1/events/{event_id}/reviews")).json()
    assert [(item["author_id"], item["rating"]) for item in listed["items"]] == [
        ("fan-2", 3),
        ("fan-1", 5),
    ]
    summary = (await client.get(f"/api/v1/events/{event_id}")).json()["reviews"]
    assert summary == {"count": 2, "average_rating": 4.0}

    reply_url = f"/api/v1/events/{event_id}/reviews/{first.json()['id']}/reply"
    not_theirs = await client.post(
        reply_url, json={"reply": "Thanks!"}, headers=people.organizer("organizer-2")
    )
    assert not_theirs.status_code == 403
    fan = await client.post(reply_url, json={"reply": "Me too"}, headers=people.customer("fan-2"))
    assert fan.status_code == 403
    replied = await client.post(reply_url, json={"reply": "Thanks!"}, headers=people.organizer())
    assert replied.status_code == 200, replied.text
    assert replied.json()["reply"]["text"] == "Thanks!"
    assert replied.json()["reply"]["replied_by"] == "organizer-1"
    again = await client.post(reply_url, json={"reply": "Really!"}, headers=people.organizer())
    assert again.status_code == 409
    assert again.json()["type"].endswith("/already-replied")

    posted = await outbox_rows(database, "events.review-posted.v1")
    assert [row["payload"]["data"]["author_id"] for row in posted] == ["fan-1", "fan-2"]
    assert all(row["key"] == event_id for row in posted)
    replies = await outbox_rows(database, "events.review-replied.v1")
    assert [row["payload"]["data"]["reply"] for row in replies] == ["Thanks!"]


async def test_a_cancelled_event_cannot_be_reviewed(
    client: httpx.AsyncClient, catalog: Catalog, people: People, database: Database
) -> None:
    event = await catalog.published_event()
    await hold_ticket(database, event["id"], "fan-1")
    catalog.clock.advance(timedelta(days=31))
    assert (await catalog.status(event["id"], "cancelled")).status_code == 200
    response = await review(client, people, event["id"], "fan-1")
    assert response.status_code == 409
    assert response.json()["type"].endswith("/event-cancelled")
