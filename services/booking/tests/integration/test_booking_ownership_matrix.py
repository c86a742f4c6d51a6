"""Who may call which booking and payments endpoint, as one table per service: every row
as the buyer, another fan, the event's organizer, another organizer, the door staff the
organizer named, anonymous and an admin.

The rule (docs/services/booking.md): an order is its buyer's, its event's organizer's
and admins'; a ticket its holder's, the organizer's and admins' (its QR code and transfer
only the holder's and admins'); an event's orders, settings, staff and promo codes its
organizer's and admins'; check-in and the scanner kit also the door staff's. Everyone
else gets a **404** (an id is never confirmed to a stranger); no token, 401. A payment is
its buyer's (and an admin's to read); reviews are admins' only (403 for the signed-in).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from marquee_contracts import CloudEvent
from marquee_contracts.auth import USER_REGISTERED
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import published_event
from marquee_testing.ownership import Caller, Given, Row, check_ownership
from marquee_testing.saga import Saga

from .helpers import confirm, first_seats, hold, order, start_payment

ORGANIZER, OTHER_ORGANIZER, ADMIN = "organizer-1", "organizer-2", "admin-1"


@pytest.fixture
def payments_overrides() -> dict[str, object]:
    """One buyer pays for dozens of orders here: lift the fraud velocity limits."""
    return {"max_orders_per_account": 10_000, "max_orders_per_card": 10_000}


@dataclass
class People:
    token_issuer: TokenIssuer
    buyer: str
    other_fan: str
    staff: str

    def customer(self, user_id: str) -> dict[str, str]:
        return self.token_issuer.headers(user_id, ("customer",))

    def callers(self) -> dict[str, Caller]:
        issuer = self.token_issuer
        return {
            "buyer": lambda _: self.customer(self.buyer),
            "another fan": lambda _: self.customer(self.other_fan),
            "event's organizer": lambda _: issuer.headers(ORGANIZER, ("organizer",)),
            "another organizer": lambda _: issuer.headers(OTHER_ORGANIZER, ("organizer",)),
            "door staff": lambda _: self.customer(self.staff),
            "anonymous": {},
            "admin": lambda _: issuer.headers(ADMIN, ("admin",)),
        }


@dataclass
class Shop:
    saga: Saga
    people: People

    async def event(self) -> Given:
        event = published_event(organizer_id=ORGANIZER, rows=1, seats_per_row=4)
        await self.saga.publish(event.message)
        staffed = await self.saga.booking.client.put(
            f"/api/v1/events/{event.event_id}/staff",
            json={"user_ids": [self.people.staff]},
            headers=self.people.token_issuer.headers(ORGANIZER, ("organizer",)),
        )
        assert staffed.status_code == 200, staffed.text
        return {"event_id": event.event_id, "seats": first_seats(event, 4)}

    async def held(self) -> Given:
        given = await self.event()
        buyer = self.people.customer(self.people.buyer)
        hold_id = await hold(
            self.saga, given["event_id"], buyer, seats=[{"seat_id": given["seats"][0]}]
        )
        return {**given, "hold_id": hold_id}

    async def pending_order(self) -> Given:
        given = await self.held()
        buyer = self.people.customer(self.people.buyer)
        placed = await order(self.saga, given["event_id"], given["hold_id"], buyer)
        assert placed.status_code == 201, placed.text
        await self.saga.pump()
        return {**given, "order_id": placed.json()["order_id"]}

    async def paid_order(self) -> Given:
        given = await self.pending_order()
        buyer = self.people.customer(self.people.buyer)
        payment = await start_payment(self.saga, given["order_id"], buyer)
        await confirm(self.saga, payment)
        await self.saga.pump()
        tickets = await self.saga.booking.client.get(
            f"/api/v1/orders/{given['order_id']}/tickets", headers=buyer
        )
        assert tickets.status_code == 200, tickets.text
        placed = await self.saga.booking.client.get(
            f"/api/v1/orders/{given['order_id']}", headers=buyer
        )
        assert placed.json()["status"] == "paid", placed.text
        [ticket] = tickets.json()
        return {**given, "ticket_id": ticket["ticket_id"], "barcode": ticket["barcode"]}

    async def promo_code(self) -> Given:
        given = await self.event()
        made = await self.saga.booking.client.post(
            f"/api/v1/events/{given['event_id']}/promo-codes",
            json={"code": "FRIENDS", "kind": "percent", "value": 1000},
            headers=self.people.token_issuer.headers(ORGANIZER, ("organizer",)),
        )
        assert made.status_code == 201, made.text
        return {**given, "promo_code_id": made.json()["promo_code_id"]}

    async def no_review(self) -> Given:
        """A payment id nothing waits on: only an admin learns that (404)."""
        return {"payment_id": uuid.uuid4()}

    async def paid_order_and_a_recipient(self) -> Given:
        given = await self.paid_order()
        recipient = str(uuid.uuid4())
        email = f"{recipient}@example.com"
        registered = CloudEvent(
            source="/marquee/auth",
            type=USER_REGISTERED.name,
            data={"user_id": recipient, "email": email, "registered_at": "2026-12-01T00:00:00Z"},
        )
        await self.saga.booking.runner.apply(registered, topic=USER_REGISTERED.name)
        return {**given, "email": email}


def key(_: Given) -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def only_own_orders(people: People) -> Callable[[httpx.Response, Given, str], str | None]:
    def check(response: httpx.Response, given: Given, caller: str) -> str | None:
        if response.status_code != 200:
            return None
        listed = {item["order_id"] for item in response.json()["items"]}
        if caller != "buyer" and given["order_id"] in listed:
            return f"{caller} sees the buyer's order"
        if caller == "buyer" and given["order_id"] not in listed:
            return "the buyer does not see their order"
        return None

    return check


def booking_rows(shop: Shop) -> list[Row]:
    order_path, ticket_path = "/api/v1/orders/{order_id}", "/api/v1/tickets/{ticket_id}"
    event = "/api/v1/events/{event_id}"
    # Statuses for: buyer, another fan, event's organizer, another organizer, door staff,
    # anonymous, admin. (A table: ruff format would spread each row over ten lines.)
    return [
        Row(
            "order a hold",
            "POST",
            "/api/v1/orders",
            (201, 404, 404, 404, 404, 401, 404),
            given=shop.held,
            headers=key,
            body=lambda given: {"event_id": str(given["event_id"]), "hold_id": given["hold_id"]},
        ),
        Row(
            "read an order",
            "GET",
            order_path,
            (200, 404, 200, 404, 404, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
        ),
        Row(
            "list my orders",
            "GET",
            "/api/v1/users/me/orders",
            (200, 200, 200, 200, 200, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
            check=only_own_orders(shop.people),
        ),
        Row(
            "cancel an unpaid order",
            "POST",
            order_path + "/cancel",
            (200, 404, 404, 404, 404, 401, 200),
            given=shop.pending_order,
        ),
        Row(
            "refund a paid order",
            "POST",
            order_path + "/refunds",
            (409, 404, 201, 404, 404, 401, 201),
            given=shop.paid_order,
            body=lambda _: {},
        ),
        Row(
            "an order's tickets",
            "GET",
            order_path + "/tickets",
            (200, 404, 200, 404, 404, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
        ),
        Row(
            "read a ticket",
            "GET",
            ticket_path,
            (200, 404, 200, 404, 404, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
        ),
        Row(
            "a ticket's QR code",
            "GET",
            ticket_path + "/qr",
            (200, 404, 404, 404, 404, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
        ),
        Row(
            "transfer a ticket",
            "POST",
            ticket_path + "/transfer",
            (201, 404, 404, 404, 404, 401, 201),
            given=shop.paid_order_and_a_recipient,
            body=lambda given: {"email": given["email"]},
        ),
        Row(
            "an event's orders",
            "GET",
            event + "/orders",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
        ),
        Row(
            "an event's orders as CSV",
            "GET",
            event + "/orders.csv",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
        ),
        Row(
            "sales settings",
            "PUT",
            event + "/sales-settings",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.event,
            body=lambda _: {"service_fee_minor": 100},
        ),
        Row(
            "door staff",
            "PUT",
            event + "/staff",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.event,
            body=lambda _: {"user_ids": []},
        ),
        Row(
            "create a promo code",
            "POST",
            event + "/promo-codes",
            (404, 404, 201, 404, 404, 401, 201),
            given=shop.event,
            body=lambda _: {"code": "FRIENDS", "kind": "percent", "value": 1000},
        ),
        Row(
            "list promo codes",
            "GET",
            event + "/promo-codes",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.event,
            changes_nothing=True,
        ),
        Row(
            "check a ticket in",
            "POST",
            event + "/checkins",
            (404, 404, 200, 404, 200, 401, 200),
            given=shop.paid_order,
            body=lambda given: {"barcode": given["barcode"]},
        ),
        Row(
            "read sales settings",
            "GET",
            event + "/sales-settings",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.event,
            changes_nothing=True,
        ),
        Row(
            "read door staff",
            "GET",
            event + "/staff",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.event,
            changes_nothing=True,
        ),
        Row(
            "change a promo code",
            "PATCH",
            event + "/promo-codes/{promo_code_id}",
            (404, 404, 200, 404, 404, 401, 200),
            given=shop.promo_code,
            body=lambda _: {"active": False},
        ),
        Row(
            "upload offline scans",
            "POST",
            event + "/checkins/offline",
            (404, 404, 200, 404, 200, 401, 200),
            given=shop.paid_order,
            body=lambda given: {
                "device_id": "door-1",
                "scans": [
                    {
                        "scan_id": str(uuid.uuid4()),
                        "barcode": given["barcode"],
                        "scanned_at": "2026-12-01T20:00:00+00:00",
                    }
                ],
            },
        ),
        Row(
            "the scanner kit",
            "GET",
            event + "/scanner-kit",
            (404, 404, 200, 404, 200, 401, 200),
            given=shop.event,
            changes_nothing=True,
        ),
    ]


def payments_rows(shop: Shop) -> list[Row]:
    # Statuses for: buyer, another fan, event's organizer, another organizer, door staff,
    # anonymous, admin.
    return [
        Row(
            "start paying an order",
            "POST",
            "/api/v1/payments",
            (201, 404, 404, 404, 404, 401, 404),
            given=shop.pending_order,
            body=lambda given: {"order_id": given["order_id"]},
        ),
        Row(
            "read an order's payment",
            "GET",
            "/api/v1/payments/orders/{order_id}",
            (200, 404, 404, 404, 404, 401, 200),
            given=shop.paid_order,
            changes_nothing=True,
        ),
        Row(
            "payments held for review",
            "GET",
            "/api/v1/payments/reviews",
            (403, 403, 403, 403, 403, 401, 200),
            changes_nothing=True,
        ),
        Row(
            "approve a held payment",
            "POST",
            "/api/v1/payments/reviews/{payment_id}/approve",
            (403, 403, 403, 403, 403, 401, 404),
            given=shop.no_review,
            changes_nothing=True,
        ),
        Row(
            "refund a held payment",
            "POST",
            "/api/v1/payments/reviews/{payment_id}/refund",
            (403, 403, 403, 403, 403, 401, 404),
            given=shop.no_review,
            changes_nothing=True,
        ),
    ]


def people_of(token_issuer: TokenIssuer) -> People:
    return People(token_issuer, str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))


async def test_booking_ownership_matrix(saga: Saga, token_issuer: TokenIssuer) -> None:
    people = people_of(token_issuer)
    shop = Shop(saga, people)
    await check_ownership(saga.booking.client, booking_rows(shop), people.callers())


async def test_payments_ownership_matrix(saga: Saga, token_issuer: TokenIssuer) -> None:
    people = people_of(token_issuer)
    shop = Shop(saga, people)
    await check_ownership(saga.payments.client, payments_rows(shop), people.callers())
