"""Who may call which events endpoint, as one table: every row as the event's or venue's
organizer, another organizer, a customer, anonymous and an admin.

The rule (docs/services/events.md): reads of public things are open; a draft is a 404 to
everyone but its organizer and admins; a change by anyone else is a **403** whatever the
status (``not-the-owner`` for another organizer, ``organizer-role-required`` for a
customer), a 401 without a token, and a 404 only when the thing does not exist, or does
not belong to the event the path names. Each request acts on things made afresh for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from marquee_contracts.booking import TicketIssued
from marquee_events import handlers
from marquee_events.repository import TicketHolderRepository
from marquee_platform.db import Database
from marquee_testing.events import (
    FLOOR_TICKETS,
    PREMIUM_TICKETS,
    SEATED_TICKETS,
    Catalog,
    People,
    event_body,
    key,
    venue_body,
)
from marquee_testing.ownership import Caller, Given, Row, check_ownership

OWNER, OTHER, CUSTOMER, ADMIN = "organizer-1", "organizer-2", "customer-1", "admin-1"


def callers(people: People) -> dict[str, Caller]:
    """The columns of the table, in order (each request gets a token of its own)."""
    return {
        "owner": lambda _: people.organizer(OWNER),
        "other organizer": lambda _: people.organizer(OTHER),
        "customer": lambda _: people.customer(CUSTOMER),
        "anonymous": {},
        "admin": lambda _: people.admin(ADMIN),
    }


@dataclass
class Things:
    """Makes, through the API, what a row acts on; owned by OWNER unless it says otherwise."""

    client: httpx.AsyncClient
    catalog: Catalog
    people: People
    database: Database

    async def venue(self) -> Given:
        return {"venue_id": (await self.catalog.venue(OWNER))["id"]}

    async def venue_made_with_a_key(self) -> Given:
        """OWNER's venue, created with an Idempotency-Key that others will send too."""
        sent = key()
        venue = await self.client.post(
            "/api/v1/events/venues",
            json=venue_body(),
            headers={**self.people.organizer(OWNER), **sent},
        )
        assert venue.status_code == 201, venue.text
        return {"venue_id": venue.json()["id"], "key": sent}

    async def draft(self) -> Given:
        venue = await self.catalog.venue(OWNER)
        event = await self.catalog.event(venue["id"], OWNER)
        return {"event_id": event["id"], "venue_id": venue["id"]}

    async def publishable_draft(self) -> Given:
        given = await self.draft()
        ticket_type = await self.catalog.ticket_type(given["event_id"], SEATED_TICKETS, OWNER)
        return {**given, "ticket_type_id": ticket_type["id"]}

    async def published(self, owner: str = OWNER) -> Given:
        event = await self.catalog.published_event(owner)
        return {
            "event_id": event["id"],
            "venue_id": event["venue"]["id"],
            "ticket_type_id": event["ticket_types"][0]["id"],
        }

    async def my_draft_and_their_venue(self) -> Given:
        return {**await self.draft(), "their_venue_id": (await self.catalog.venue(OTHER))["id"]}

    async def my_draft_and_their_ticket_type(self) -> Given:
        theirs = await self.published(OTHER)
        return {**await self.draft(), "ticket_type_id": theirs["ticket_type_id"]}

    async def ended_with_a_ticket_holder(self, owner: str = OWNER) -> Given:
        """A completed event CUSTOMER held a ticket to (the clock moves past its end)."""
        given = await self.published(owner)
        assert (await self.catalog.status(given["event_id"], "on_sale", owner)).status_code == 200
        await hold_ticket(self.database, given["event_id"], CUSTOMER)
        self.catalog.clock.advance(timedelta(days=31))
        assert (await self.catalog.status(given["event_id"], "completed", owner)).status_code == 200
        return given

    async def reviewed(self, owner: str = OWNER) -> Given:
        given = await self.ended_with_a_ticket_holder(owner)
        review = await self.client.post(
            f"/api/v1/events/{given['event_id']}/reviews",
            json={"rating": 4, "comment": "Great night."},
            headers={**self.people.customer(CUSTOMER), **key()},
        )
        assert review.status_code == 201, review.text
        return {**given, "review_id": review.json()["id"]}

    async def my_event_and_their_review(self) -> Given:
        theirs = await self.reviewed(OTHER)
        return {**await self.published(), "review_id": theirs["review_id"]}

    async def missing(self) -> Given:
        return {"event_id": str(uuid.uuid4()), "venue_id": str(uuid.uuid4())}

    async def everyones_catalog(self) -> Given:
        """Venues and events of OWNER (a draft and a public one), OTHER and ADMIN: what
        each of them should find under ``/mine``."""
        mine_draft, mine_public = await self.draft(), await self.published()
        theirs = await self.draft_of(self.people.organizer(OTHER))
        admins = await self.draft_of(self.people.admin(ADMIN))
        return {
            "drafts": {mine_draft["event_id"], theirs["event_id"], admins["event_id"]},
            "public": mine_public["event_id"],
            "venues": {
                "owner": {mine_draft["venue_id"], mine_public["venue_id"]},
                "other organizer": {theirs["venue_id"]},
                "admin": {admins["venue_id"]},
            },
            "events": {
                "owner": {mine_draft["event_id"], mine_public["event_id"]},
                "other organizer": {theirs["event_id"]},
                "admin": {admins["event_id"]},
            },
        }

    async def draft_of(self, headers: dict[str, str]) -> Given:
        venue = await self.client.post("/api/v1/events/venues", json=venue_body(), headers=headers)
        assert venue.status_code == 201, venue.text
        event = await self.client.post(
            "/api/v1/events",
            json=event_body(venue.json()["id"], self.catalog.clock),
            headers=headers,
        )
        assert event.status_code == 201, event.text
        return {"venue_id": venue.json()["id"], "event_id": event.json()["id"]}


async def hold_ticket(database: Database, event_id: str, user_id: str) -> None:
    """What the ticket-issued consumer records (its own test runs it through Kafka)."""
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


USER_IDS = {"owner": OWNER, "other organizer": OTHER, "admin": ADMIN}


def only_their_own(kind: str, owner_field: str) -> Any:
    """A ``/mine`` listing shows the caller's own venues or events and nobody else's
    (earlier rows made more of them, so it checks owners, not an exact list)."""

    def check(response: httpx.Response, given: Given, caller: str) -> str | None:
        if response.status_code != 200:
            return None
        items = response.json()["items"]
        listed = {item["id"] for item in items}
        own: set[str] = given[kind][caller]
        others = set().union(*(ids for who, ids in given[kind].items() if who != caller))
        strangers = sorted({item[owner_field] for item in items} - {USER_IDS[caller]})
        if strangers or listed & others or not own <= listed:
            return (
                f"{kind} of {strangers} listed; "
                f"missing own {sorted(own - listed)}; others' {sorted(listed & others)}"
            )
        return None

    return check


def replayed_only_to_its_sender(response: httpx.Response, given: Given, caller: str) -> str | None:
    """An Idempotency-Key is the caller's own: the same key from someone else is a new
    request, never a replay of another's answer."""
    if response.status_code != 201:
        return None
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    same = response.json()["id"] == given["venue_id"]
    if (replayed, same) != ((True, True) if caller == "owner" else (False, False)):
        return f"replayed={replayed}, the owner's venue={same} for {caller}"
    return None


def no_drafts(response: httpx.Response, given: Given, caller: str) -> str | None:
    """The public listing shows public events only, whoever asks."""
    listed = {item["id"] for item in response.json()["items"]}
    if listed & given["drafts"] or given["public"] not in listed:
        return f"drafts listed: {sorted(listed & given['drafts'])}"
    return None


def transitions_only_for_managers(
    response: httpx.Response, given: Given, caller: str
) -> str | None:
    """``allowed_statuses`` is for the event's organizer and admins; others get null."""
    shown = response.json()["allowed_statuses"] is not None
    if shown != (caller in {"owner", "admin"}):
        return f"allowed_statuses {'shown to' if shown else 'hidden from'} {caller}"
    return None


def renamed(_: Given) -> dict[str, str]:
    return {"name": "Renamed"}


def rows(things: Things) -> list[Row]:
    venues, events = "/api/v1/events/venues", "/api/v1/events"
    event = events + "/{event_id}"
    ticket_type = event + "/ticket-types/{ticket_type_id}"
    # A table, one row per request (ruff format would spread each over ten lines).
    # Statuses for:                  owner, other organizer, customer, anonymous, admin
    return [
        # ---- venues
        Row("create a venue", "POST", venues, (201, 201, 403, 401, 201),
            body=lambda _: venue_body()),
        Row("list your venues: only your own", "GET", venues + "/mine", (200, 200, 403, 401, 200),
            given=things.everyones_catalog, check=only_their_own("venues", "owner_id"),
            changes_nothing=True),
        Row("create a venue again with the owner's Idempotency-Key", "POST", venues,
            (201, 201, 403, 401, 201), given=things.venue_made_with_a_key,
            body=lambda _: venue_body(), headers=lambda given: given["key"],
            check=replayed_only_to_its_sender),
        Row("read a venue", "GET", venues + "/{venue_id}", (200, 200, 200, 200, 200),
            given=things.venue, changes_nothing=True),
        Row("edit a venue", "PATCH", venues + "/{venue_id}", (200, 403, 403, 401, 200),
            given=things.venue, body=renamed),
        Row("edit a venue that does not exist", "PATCH", venues + "/{venue_id}",
            (404, 404, 404, 401, 404), given=things.missing, body=renamed),
        # ---- events
        Row("create an event at the owner's venue", "POST", events, (201, 403, 403, 401, 201),
            given=things.venue,
            body=lambda given: event_body(given["venue_id"], things.catalog.clock)),
        Row("create an event at a venue that does not exist", "POST", events,
            (422, 422, 403, 401, 422), given=things.missing,
            body=lambda given: event_body(given["venue_id"], things.catalog.clock)),
        Row("list your events: only your own, drafts too", "GET", events + "/mine",
            (200, 200, 403, 401, 200), given=things.everyones_catalog,
            check=only_their_own("events", "organizer_id"), changes_nothing=True),
        Row("list upcoming events: public ones only", "GET", events, (200, 200, 200, 200, 200),
            given=things.everyones_catalog, check=no_drafts, changes_nothing=True),
        Row("every event's snapshot", "GET", events + "/snapshots", (403, 403, 403, 401, 200),
            given=things.draft, changes_nothing=True),
        Row("read a draft", "GET", event, (200, 404, 404, 404, 200),
            given=things.draft, changes_nothing=True),
        Row("read a public event", "GET", event, (200, 200, 200, 200, 200), given=things.published,
            check=transitions_only_for_managers, changes_nothing=True),
        Row("read an event that does not exist", "GET", event, (404, 404, 404, 404, 404),
            given=things.missing, changes_nothing=True),
        Row("edit a draft", "PATCH", event, (200, 403, 403, 401, 200),
            given=things.draft, body=renamed),
        Row("edit a public event", "PATCH", event, (200, 403, 403, 401, 200),
            given=things.published, body=renamed),
        Row("edit an event that does not exist", "PATCH", event, (404, 404, 404, 401, 404),
            given=things.missing, body=renamed),
        Row("move my draft to another organizer's venue", "PATCH", event,
            (403, 403, 403, 401, 200), given=things.my_draft_and_their_venue,
            body=lambda given: {"venue_id": given["their_venue_id"]}),
        Row("delete a draft", "DELETE", event, (204, 403, 403, 401, 204), given=things.draft),
        Row("publish a draft", "POST", event + "/publish", (200, 403, 403, 401, 200),
            given=things.publishable_draft),
        Row("cancel a draft", "POST", event + "/cancel", (200, 403, 403, 401, 200),
            given=things.draft, body=lambda _: {"reason": "Called off"}),
        Row("cancel a public event", "POST", event + "/cancel", (200, 403, 403, 401, 200),
            given=things.published, body=lambda _: {"reason": "Called off"}),
        Row("put a public event on sale", "POST", event + "/status", (200, 403, 403, 401, 200),
            given=things.published, body=lambda _: {"status": "on_sale"}),
        # ---- ticket types
        Row("list a draft's ticket types", "GET", event + "/ticket-types",
            (200, 404, 404, 404, 200), given=things.publishable_draft, changes_nothing=True),
        Row("list a public event's ticket types", "GET", event + "/ticket-types",
            (200, 200, 200, 200, 200), given=things.published, changes_nothing=True),
        Row("add a ticket type", "POST", event + "/ticket-types", (201, 403, 403, 401, 201),
            given=things.draft, body=lambda _: PREMIUM_TICKETS),
        Row("add a ticket type to a public event", "POST", event + "/ticket-types",
            (201, 403, 403, 401, 201), given=things.published, body=lambda _: PREMIUM_TICKETS),
        Row("change a ticket type", "PATCH", ticket_type, (200, 403, 403, 401, 200),
            given=things.publishable_draft, body=renamed),
        Row("delete a ticket type", "DELETE", ticket_type, (204, 403, 403, 401, 204),
            given=things.publishable_draft),
        Row("change another's ticket type under my event", "PATCH", ticket_type,
            (404, 403, 403, 401, 404), given=things.my_draft_and_their_ticket_type, body=renamed),
        Row("delete another's ticket type under my event", "DELETE", ticket_type,
            (404, 403, 403, 401, 404), given=things.my_draft_and_their_ticket_type),
        Row("add a ticket type to an event that does not exist", "POST",
            event + "/ticket-types", (404, 404, 404, 401, 404), given=things.missing,
            body=lambda _: FLOOR_TICKETS),
        # ---- reviews (CUSTOMER held a ticket; nobody else did)
        Row("list a draft's reviews", "GET", event + "/reviews", (200, 404, 404, 404, 200),
            given=things.draft, changes_nothing=True),
        Row("list a public event's reviews", "GET", event + "/reviews",
            (200, 200, 200, 200, 200), given=things.reviewed, changes_nothing=True),
        Row("review an ended event (ticket holders)", "POST", event + "/reviews",
            (403, 403, 201, 401, 403), given=things.ended_with_a_ticket_holder,
            body=lambda _: {"rating": 5, "comment": "Loved it."}),
        Row("review a draft", "POST", event + "/reviews", (404, 404, 404, 401, 404),
            given=things.draft, body=lambda _: {"rating": 5, "comment": "Loved it."}),
        Row("reply to a review", "POST", event + "/reviews/{review_id}/reply",
            (200, 403, 403, 401, 200), given=things.reviewed, body=lambda _: {"reply": "Thanks!"}),
        Row("reply under my event to a review of another's", "POST",
            event + "/reviews/{review_id}/reply", (404, 403, 403, 401, 404),
            given=things.my_event_and_their_review, body=lambda _: {"reply": "Thanks!"}),
    ]  # fmt: skip


async def test_every_events_endpoint_answers_each_caller_as_the_rule_says(
    client: httpx.AsyncClient, catalog: Catalog, people: People, database: Database
) -> None:
    things = Things(client, catalog, people, database)
    report = await check_ownership(client, rows(things), callers(people))
    assert report.requests == 38 * 5
