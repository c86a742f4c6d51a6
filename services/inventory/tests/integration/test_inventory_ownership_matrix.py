"""Who may call which inventory endpoint, as one table: every row as the fan holding the
places, another fan, the event's organizer, another organizer, anonymous and an admin.

The rule (docs/services/inventory.md): any signed-in person may hold places; a hold and a
queued hold request are their fan's and admins' only, and a **404** to everyone else
(the event's organizer included: a hold id is never confirmed to someone it does not
belong to), as is a hold or request named under another event than its own;
hold-settings are the event's organizer's and admins', a **404** to everyone else ("no
such event of yours"); availability is public and never says who holds what. Without a
token: 401. Each request acts on an event published afresh for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from marquee_inventory.settings import InventorySettings
from marquee_platform.kafka import ensure_topics
from marquee_testing.events import People
from marquee_testing.inventory import Catalog, published_event, seat_id
from marquee_testing.ownership import Caller, Check, Given, Row, check_ownership

FAN, OTHER_FAN, ORGANIZER, OTHER_ORGANIZER, ADMIN = (
    "fan-1",
    "fan-2",
    "organizer-1",
    "organizer-2",
    "admin-1",
)
DEFAULT_HOLD_TTL_SECONDS = 300


def callers(people: People) -> dict[str, Caller]:
    """The columns of the table, in order (each request gets a token of its own)."""
    return {
        "holder": lambda _: people.customer(FAN),
        "another fan": lambda _: people.customer(OTHER_FAN),
        "event's organizer": lambda _: people.organizer(ORGANIZER),
        "another organizer": lambda _: people.organizer(OTHER_ORGANIZER),
        "anonymous": {},
        "admin": lambda _: people.admin(ADMIN),
        # The event's organizer after an admin revoked the role: a customer now, to
        # inventory as to events (auth: a revoked role takes effect at the next refresh).
        "its organizer, role revoked": lambda _: people.customer(ORGANIZER),
    }


@dataclass
class Things:
    """Publishes ORGANIZER's events to inventory and makes FAN's holds on them."""

    client: httpx.AsyncClient
    catalog: Catalog
    people: People

    async def event(self, *, high_demand: bool = False) -> Given:
        event = await self.catalog.publish(
            published_event(organizer_id=ORGANIZER, high_demand=high_demand)
        )
        return {"event_id": event.event_id}

    async def hold(self) -> Given:
        """FAN holds one seat of a fresh event."""
        given = await self.event()
        held = await self.client.post(
            f"/api/v1/inventory/events/{given['event_id']}/holds",
            json={"seats": [{"seat_id": seat_id(0, 0, 1)}]},
            headers=self.people.customer(FAN),
        )
        assert held.status_code == 201, held.text
        return {**given, "hold_id": held.json()["hold_id"], "hold_event_id": given["event_id"]}

    async def hold_made_with_a_key(self) -> Given:
        """FAN's hold of one seat, made with an Idempotency-Key that others will send too."""
        given = await self.event()
        sent = {"Idempotency-Key": str(uuid.uuid4())}
        held = await self.client.post(
            f"/api/v1/inventory/events/{given['event_id']}/holds",
            json={"seats": [{"seat_id": seat_id(0, 0, 2)}]},
            headers={**self.people.customer(FAN), **sent},
        )
        assert held.status_code == 201, held.text
        return {**given, "hold_id": held.json()["hold_id"], "key": sent}

    async def hold_named_under_another_event(self) -> Given:
        """FAN's hold, its id put under another (published) event of the same organizer."""
        hold = await self.hold()
        return {**hold, "event_id": (await self.event())["event_id"]}

    async def queued_request(self) -> Given:
        """FAN's hold request on a high-demand event, queued and still pending."""
        given = await self.event(high_demand=True)
        queued = await self.client.post(
            f"/api/v1/inventory/events/{given['event_id']}/holds",
            json={"seats": [{"seat_id": seat_id(0, 0, 1)}]},
            headers=self.people.customer(FAN),
        )
        assert queued.status_code == 202, queued.text
        return {**given, "request_id": queued.json()["request_id"]}

    async def queued_request_named_under_another_event(self) -> Given:
        request = await self.queued_request()
        return {**request, "event_id": (await self.event())["event_id"]}

    async def missing(self) -> Given:
        return {"event_id": uuid.uuid4()}

    # ---- checks

    async def hold_still_live(
        self, response: httpx.Response, given: Given, caller: str
    ) -> str | None:
        """A release refused (or one under the wrong event) leaves the hold to its fan."""
        if response.status_code == 204:
            return None
        held = await self.client.get(
            f"/api/v1/inventory/events/{given['hold_event_id']}/holds/{given['hold_id']}",
            headers=self.people.customer(FAN),
        )
        return None if held.status_code == 200 else f"the hold is gone after {caller} tried"

    def hold_time(self, wanted: int) -> Check:
        """The event's hold time is ``wanted`` after a change, and as it was after a refusal."""

        async def check(response: httpx.Response, given: Given, caller: str) -> str | None:
            settings = await self.client.get(
                f"/api/v1/inventory/events/{given['event_id']}/hold-settings",
                headers=self.people.organizer(ORGANIZER),
            )
            if settings.status_code == 404:
                return None  # no such event at all
            now = settings.json()["hold_ttl_seconds"]
            expected = wanted if response.status_code == 200 else DEFAULT_HOLD_TTL_SECONDS
            return None if now == expected else f"hold time is {now}s, not {expected}s"

        return check


def the_holders_hold_only_to_the_holder(
    response: httpx.Response, given: Given, caller: str
) -> str | None:
    """The same Idempotency-Key from someone else is their own request (refused: the seat
    is held), never the holder's hold handed back."""
    if response.status_code == 201 and response.json()["hold_id"] != given["hold_id"]:
        return f"a new hold {response.json()['hold_id']}, not the one this key made"
    if caller != "holder" and given["hold_id"] in response.text:
        return f"{caller} was shown the holder's hold"
    return None


def never_names_the_holder(response: httpx.Response, given: Given, caller: str) -> str | None:
    return f"availability names {FAN}" if FAN in response.text else None


def one_seat(_: Given) -> dict[str, object]:
    return {"seats": [{"seat_id": seat_id(0, 0, 2)}]}


def ten_minutes(_: Given) -> dict[str, int]:
    return {"hold_ttl_seconds": 600}


def rows(things: Things) -> list[Row]:
    event = "/api/v1/inventory/events/{event_id}"
    hold, request = event + "/holds/{hold_id}", event + "/hold-requests/{request_id}"
    # A table, one row per request (ruff format would spread each over ten lines).
    # Statuses for: holder, another fan, event's organizer, another organizer, anonymous, admin,
    # its organizer with the role revoked
    return [
        # ---- holds
        Row("hold a seat", "POST", event + "/holds", (201, 201, 201, 201, 401, 201, 201),
            given=things.event, body=one_seat),
        Row("hold the same seat again with the holder's Idempotency-Key", "POST",
            event + "/holds", (201, 409, 409, 409, 401, 409, 409),
            given=things.hold_made_with_a_key, headers=lambda given: given["key"],
            check=the_holders_hold_only_to_the_holder, body=one_seat),
        Row("hold a seat of an event that does not exist", "POST", event + "/holds",
            (404, 404, 404, 404, 401, 404, 404), given=things.missing, body=one_seat),
        Row("read a hold", "GET", hold, (200, 404, 404, 404, 401, 200, 404),
            given=things.hold, changes_nothing=True),
        Row("release a hold", "DELETE", hold, (204, 404, 404, 404, 401, 204, 404),
            given=things.hold, check=things.hold_still_live),
        Row("read a hold under another event", "GET", hold, (404, 404, 404, 404, 401, 404, 404),
            given=things.hold_named_under_another_event, changes_nothing=True),
        Row("release a hold under another event", "DELETE", hold,
            (404, 404, 404, 404, 401, 404, 404), given=things.hold_named_under_another_event,
            check=things.hold_still_live),
        # ---- queued hold requests (high demand)
        Row("read a queued hold request", "GET", request, (200, 404, 404, 404, 401, 200, 404),
            given=things.queued_request, changes_nothing=True),
        Row("read a hold request under another event", "GET", request,
            (404, 404, 404, 404, 401, 404, 404),
            given=things.queued_request_named_under_another_event, changes_nothing=True),
        # ---- availability: public, and never who holds
        Row("read availability", "GET", event + "/availability",
            (200, 200, 200, 200, 200, 200, 200), given=things.hold, check=never_names_the_holder,
            changes_nothing=True),
        # ---- hold settings
        Row("read hold settings", "GET", event + "/hold-settings",
            (404, 404, 200, 404, 401, 200, 404), given=things.event, changes_nothing=True),
        Row("set hold settings", "PUT", event + "/hold-settings",
            (404, 404, 200, 404, 401, 200, 404), given=things.event, check=things.hold_time(600),
            body=ten_minutes),
        Row("set hold settings of an event that does not exist", "PUT",
            event + "/hold-settings", (404, 404, 404, 404, 401, 404, 404), given=things.missing,
            body=ten_minutes),
    ]  # fmt: skip


async def test_every_inventory_endpoint_answers_each_caller_as_the_rule_says(
    client: httpx.AsyncClient,
    catalog: Catalog,
    people: People,
    inventory_settings: InventorySettings,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    topic = f"test.{unique_name('hold-requested')}.v1"
    inventory_settings.hold_requests_topic = topic  # the app reads its settings per request
    await ensure_topics(kafka_bootstrap, {topic: 1})
    things = Things(client, catalog, people)
    report = await check_ownership(client, rows(things), callers(people))
    assert report.requests == 13 * 7
