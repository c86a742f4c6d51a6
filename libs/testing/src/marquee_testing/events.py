"""Factories for tests that drive the events API: a clock the tests move, signed-in people,
request bodies, an organizer's ``Catalog`` of calls, and the outbox as rows.

Used by the events service's tests (``services/events/tests``); any test that needs a venue,
an event or its ticket types through the API can import them from here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from marquee_platform.db import Database
from marquee_testing.fixtures import TokenIssuer


@dataclass
class Clock:
    """What "now" is to the app's rules; tests move it forward instead of waiting."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class People:
    issuer: TokenIssuer

    def organizer(self, user_id: str = "organizer-1") -> dict[str, str]:
        return self.issuer.headers(user_id, ("organizer",))

    def customer(self, user_id: str = "customer-1") -> dict[str, str]:
        return self.issuer.headers(user_id, ("customer",))

    def admin(self, user_id: str = "admin-1") -> dict[str, str]:
        return self.issuer.headers(user_id, ("admin",))


async def outbox_rows(database: Database, topic: str | None = None) -> list[dict[str, Any]]:
    """The outbox in commit order: ``topic``, ``key`` and the CloudEvent ``payload``."""
    statement = "SELECT topic, message_key, payload FROM outbox"
    if topic is not None:
        statement += " WHERE topic = :topic"
    async with database.reading() as session:
        rows = await session.execute(
            text(statement + " ORDER BY position"), {"topic": topic} if topic else {}
        )
        return [
            {"topic": row.topic, "key": row.message_key, "payload": row.payload} for row in rows
        ]


# ---- request bodies -------------------------------------------------------------------------


def seating_map() -> dict[str, Any]:
    """Stalls: 2 rows of 3 standard seats; Balcony: 1 row of 2 premium; Floor: 100 standing."""
    return {
        "sections": [
            {
                "name": "Stalls",
                "rows": [
                    {
                        "label": "A",
                        "price_category": "standard",
                        "seats": [{"id": "A-1"}, {"id": "A-2"}, {"id": "A-3"}],
                    },
                    {
                        "label": "B",
                        "price_category": "standard",
                        "seats": [{"id": "B-1"}, {"id": "B-2"}, {"id": "B-3"}],
                    },
                ],
            },
            {
                "name": "Balcony",
                "rows": [
                    {
                        "label": "C",
                        "seats": [
                            {"id": "C-1", "price_category": "premium"},
                            {"id": "C-2", "price_category": "premium"},
                        ],
                    }
                ],
            },
        ],
        "general_admission": [{"name": "Floor", "capacity": 100}],
    }


def venue_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Olympia",
        "address": "28 Boulevard des Capucines",
        "city": "Paris",
        "country": "FR",
        "location": {"latitude": 48.8702, "longitude": 2.3283},
        "time_zone": "Europe/Paris",
        "capacity": 108,
        "seating_map": seating_map(),
        **overrides,
    }


def event_body(venue_id: str, clock: Clock, **overrides: Any) -> dict[str, Any]:
    starts = clock.now + timedelta(days=30)
    return {
        "venue_id": venue_id,
        "name": "Rock night",
        "description": "Three bands, one night.",
        "category": "concert",
        "tags": ["Rock", "live"],
        "image_urls": ["https://images.example/rock-night.jpg"],
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=4)).isoformat(),
        "sale_starts_at": clock.now.isoformat(),
        "sale_ends_at": starts.isoformat(),
        "high_demand": True,
        "max_tickets_per_order": 6,
        **overrides,
    }


SEATED_TICKETS = {
    "name": "Stalls",
    "price_minor": 4_500,
    "currency": "EUR",
    "price_category": "standard",
    "max_per_order": 6,
}
PREMIUM_TICKETS = {
    "name": "Balcony",
    "price_minor": 9_000,
    "currency": "EUR",
    "price_category": "premium",
    "max_per_order": 2,
}
FLOOR_TICKETS = {
    "name": "Floor",
    "price_minor": 3_000,
    "currency": "EUR",
    "general_admission_area": "Floor",
    "quantity": 100,
    "max_per_order": 6,
}


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


@dataclass
class Catalog:
    """Drives the API like an organizer would."""

    client: httpx.AsyncClient
    people: People
    clock: Clock

    async def venue(self, owner: str = "organizer-1", **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/events/venues",
            json=venue_body(**overrides),
            headers=self.people.organizer(owner),
        )
        assert response.status_code == 201, response.text
        venue: dict[str, Any] = response.json()
        return venue

    async def event(
        self, venue_id: str, owner: str = "organizer-1", **overrides: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/events",
            json=event_body(venue_id, self.clock, **overrides),
            headers=self.people.organizer(owner),
        )
        assert response.status_code == 201, response.text
        event: dict[str, Any] = response.json()
        return event

    async def ticket_type(
        self, event_id: str, body: dict[str, Any], owner: str = "organizer-1"
    ) -> dict[str, Any]:
        self.clock.advance(timedelta(seconds=1))  # listed in the order they were added
        response = await self.client.post(
            f"/api/v1/events/{event_id}/ticket-types",
            json=body,
            headers=self.people.organizer(owner),
        )
        assert response.status_code == 201, response.text
        ticket_type: dict[str, Any] = response.json()
        return ticket_type

    async def status(
        self, event_id: str, status: str, owner: str = "organizer-1"
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/events/{event_id}/status",
            json={"status": status},
            headers=self.people.organizer(owner),
        )

    async def published_event(self, owner: str = "organizer-1") -> dict[str, Any]:
        venue = await self.venue(owner)
        event = await self.event(venue["id"], owner)
        await self.ticket_type(event["id"], SEATED_TICKETS, owner)
        await self.ticket_type(event["id"], FLOOR_TICKETS, owner)
        response = await self.client.post(
            f"/api/v1/events/{event['id']}/publish", headers=self.people.organizer(owner)
        )
        assert response.status_code == 200, response.text
        published: dict[str, Any] = response.json()
        return published
