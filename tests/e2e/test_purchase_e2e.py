"""A ticket bought, used, refunded and given away, end to end through the gateway.

Every piece is real and talks over the network: auth (whose login tokens every service
verifies against its JWKS), events, search, inventory, booking and payments served on
127.0.0.1 behind the gateway; each service's outbox carried to the Kafka-protocol broker
by the CDC relay; the inventory, booking, payments, search and notifications consumers in
their own groups; the simulated provider posting Stripe-signed webhooks to payments;
notifications mailing a real SMTP server (the aiosmtpd sink), where every account's
verification link is read, and where the fan finds one confirmation per order whose PDF's
QR code is the ticket's barcode.

An admin made with the CLI makes a registered user an organizer, who publishes a seated
event, a promo code and a service fee. A fan finds the event, holds a seat, orders it
with the code, pays, gets a ticket with a QR code, is let in once (then "already used"),
and is refunded: the barcode is revoked and another fan can hold the seat. A second
ticket is transferred to a friend: the old barcode is revoked, the friend's works.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
import redis.asyncio as redis_asyncio

from marquee_auth.main import SERVICE as AUTH
from marquee_auth.main import create_app as create_auth_app
from marquee_auth.settings import AuthSettings
from marquee_booking import barcodes
from marquee_booking.consumers import build_consumer as build_booking_consumer
from marquee_booking.main import SERVICE as BOOKING
from marquee_booking.main import create_app as create_booking_app
from marquee_booking.settings import BookingSettings
from marquee_events.main import SERVICE as EVENTS
from marquee_events.main import create_app as create_events_app
from marquee_events.settings import EventsSettings
from marquee_gateway.main import create_app as create_gateway_app
from marquee_gateway.settings import GatewaySettings, RateLimitClass, RateLimitRule
from marquee_inventory.consumers import build_consumer as build_inventory_consumer
from marquee_inventory.main import SERVICE as INVENTORY
from marquee_inventory.main import create_app as create_inventory_app
from marquee_inventory.settings import InventorySettings
from marquee_notifications.consumers import build_consumer as build_notifications_consumer
from marquee_notifications.main import SERVICE as NOTIFICATIONS
from marquee_notifications.main import create_app as create_notifications_app
from marquee_notifications.settings import NotificationsSettings
from marquee_notifications.sink import MemoryStore, SmtpSink
from marquee_payments.consumers import build_consumer as build_payments_consumer
from marquee_payments.main import SERVICE as PAYMENTS
from marquee_payments.main import create_app as create_payments_app
from marquee_payments.providers_factory import build_provider, close_provider
from marquee_payments.settings import PaymentsSettings
from marquee_platform.consumer import ConsumerRunner
from marquee_platform.db import Database, to_libpq_dsn
from marquee_platform.relay import run_relay
from marquee_platform.settings import ServiceSettings
from marquee_search.consumers import create_runner as create_search_runner
from marquee_search.engines import create_engine as create_search_engine
from marquee_search.main import SERVICE as SEARCH
from marquee_search.main import create_app as create_search_app
from marquee_search.settings import SearchSettings
from marquee_testing.fixtures import DatabaseFactory, serve_in_thread
from marquee_testing.localinfra import free_port
from marquee_testing.notifications import attachments, mail_to, qr_codes, text_body
from marquee_testing.waiting import wait_until

PASSWORD = "correct horse battery staple"
Settings = TypeVar("Settings", bound=ServiceSettings)
SERVICES = {
    "auth": AUTH,
    "events": EVENTS,
    "search": SEARCH,
    "inventory": INVENTORY,
    "booking": BOOKING,
    "payments": PAYMENTS,
    "notifications": NOTIFICATIONS,
}
RELAYED = ("auth", "events", "inventory", "booking", "payments")
"""The databases whose outbox the relay carries to the broker."""

# Every person here calls from 127.0.0.1, and runs of this test follow each other on one
# Redis database: the gateway's limits have their own tests.
UNLIMITED = RateLimitClass(
    per_user=RateLimitRule(requests=100_000, per_seconds=60),
    per_ip=RateLimitRule(requests=100_000, per_seconds=60),
)


@dataclass
class Platform:
    gateway: str
    auth_database_url: str
    kafka_bootstrap: str
    mailbox: MemoryStore = field(default_factory=MemoryStore)
    """What notifications sent, as the SMTP server received it."""
    background: list[asyncio.Task[None]] = field(default_factory=list)
    """Relays and consumers: one that dies fails the next wait at once, with its error."""

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.gateway, timeout=15, trust_env=False)

    def _raise_if_background_died(self) -> None:
        for task in self.background:
            if task.done():
                raise AssertionError(f"{task.get_name()} stopped") from task.exception()

    async def wait_until(
        self,
        condition: Callable[[], Awaitable[bool]],
        *,
        timeout: float,
        message: str | Callable[[], str],
    ) -> float:
        """Polls ``condition`` until it holds; answers how many seconds that took."""

        async def holds() -> bool:
            self._raise_if_background_died()
            return await condition()

        started = time.perf_counter()
        await wait_until(holds, timeout=timeout, message=message)
        return time.perf_counter() - started

    async def emailed_token(self, email: str) -> str:
        """The token in the verification link notifications mailed to ``email`` (as the
        person would click it); waits up to 60 s."""
        [message] = await mail_to(self.mailbox, email, "verify-email", timeout=60)
        found = re.search(r"/verify-email\?token=([A-Za-z0-9_\-]+)", text_body(message))
        assert found, text_body(message)
        return found[1]


@dataclass
class Person:
    """Someone signed in through the gateway, with the tokens of their last sign-in."""

    client: httpx.AsyncClient
    email: str
    tokens: dict[str, Any]

    @property
    def user_id(self) -> str:
        return str(self.tokens["user_id"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def post(
        self, path: str, body: dict[str, Any] | None = None, *, key: str | None = None
    ) -> httpx.Response:
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        return await self.client.post(path, json=body, headers=headers)

    async def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(path, json=body, headers=self.headers)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json()


def background(
    stack: AsyncExitStack, platform: Platform, stop: asyncio.Event, name: str, job: Awaitable[None]
) -> None:
    """Runs ``job`` until the test is over (``stop``), then waits for it to finish."""
    task: asyncio.Task[None] = asyncio.ensure_future(job)
    task.set_name(name)
    platform.background.append(task)

    async def finish() -> None:
        stop.set()
        await asyncio.wait_for(task, timeout=30)

    stack.push_async_callback(finish)


@pytest.fixture
async def platform(
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> AsyncIterator[Platform]:
    database_urls = dict(
        zip(
            SERVICES,
            await asyncio.gather(
                *(
                    make_database(spec.migrations, prefix=f"e2e_{name}")
                    for name, spec in SERVICES.items()
                )
            ),
            strict=True,
        )
    )
    # Every address is chosen first: each service's settings name the others it calls.
    ports = {name: free_port() for name in (*SERVICES, "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    common: dict[str, Any] = {
        "redis_url": redis_url,
        "kafka_bootstrap": kafka_bootstrap,
        "jwks_url": f"{urls['auth']}/.well-known/jwks.json",  # real sign-ins verify everywhere
        "log_json": False,
        "database_pool_size": 4,
    }

    def settings(name: str, settings_class: type[Settings], **own: Any) -> Settings:
        return settings_class(database_url=database_urls[name], **common, **own)

    inventory_settings = settings(
        "inventory", InventorySettings, redis_index_prefix=unique_name("e2e-inventory")
    )
    booking_settings = settings("booking", BookingSettings, inventory_url=urls["inventory"])
    payments_settings = settings(
        "payments",
        PaymentsSettings,
        provider="simulated",
        simulator_enabled=True,
        booking_url=urls["booking"],
        simulator_webhook_url=f"{urls['payments']}/api/v1/payments/webhooks/simulated",
    )
    search_settings = settings("search", SearchSettings)  # the PostgreSQL engine
    platform = Platform(urls["gateway"], database_urls["auth"], kafka_bootstrap)
    stop = asyncio.Event()

    async with AsyncExitStack() as stack:
        sink = await stack.enter_async_context(SmtpSink(platform.mailbox))
        notifications_settings = settings(
            "notifications",
            NotificationsSettings,
            smtp_url=sink.url,
            public_url=urls["gateway"],
            send_interval_seconds=0.1,
        )
        # Unwound last in, first out: the servers stop, then the background jobs, then
        # the consumers' connections close.
        redis = redis_asyncio.Redis.from_url(redis_url)
        stack.push_async_callback(redis.aclose)
        consumer_databases = {
            name: Database(database_urls[name], pool_size=4)
            for name in ("inventory", "booking", "payments", "search", "notifications")
        }
        for database in consumer_databases.values():
            stack.push_async_callback(database.dispose)
        search_engine = create_search_engine(search_settings, database=consumer_databases["search"])
        stack.push_async_callback(search_engine.close)
        # The consumer's provider posts the webhooks of the refunds it makes.
        provider = build_provider(payments_settings, consumer_databases["payments"])
        stack.push_async_callback(close_provider, provider)
        consumers: list[ConsumerRunner] = [
            build_inventory_consumer(
                inventory_settings,
                database=consumer_databases["inventory"],
                redis=redis,
                group=unique_name("inventory"),
            ),
            build_booking_consumer(
                booking_settings,
                database=consumer_databases["booking"],
                group=unique_name("booking"),
            ),
            build_payments_consumer(
                payments_settings,
                database=consumer_databases["payments"],
                provider=provider,
                group=unique_name("payments"),
            ),
            create_search_runner(
                engine=search_engine,
                database=consumer_databases["search"],
                bootstrap=kafka_bootstrap,
                group=unique_name("search"),
            ),
            build_notifications_consumer(
                notifications_settings,
                database=consumer_databases["notifications"],
                group=unique_name("notifications"),
            ),
        ]

        for name in RELAYED:
            relay = run_relay(
                to_libpq_dsn(database_urls[name]),
                kafka_bootstrap,
                name=unique_name(f"e2e_{name}").replace("-", "_"),
                stop=stop,
            )
            background(stack, platform, stop, f"the {name} relay", relay)
        for runner in consumers:
            background(stack, platform, stop, f"consumer {runner.group}", runner.run(stop))
        # A consumer joins its group once, at start: the test then measures steady state.
        await asyncio.wait_for(
            asyncio.gather(*(runner.ready.wait() for runner in consumers)), timeout=60
        )

        apps: dict[str, Any] = {
            "auth": create_auth_app(settings("auth", AuthSettings)),
            "events": create_events_app(settings("events", EventsSettings)),
            "search": create_search_app(search_settings),
            "inventory": create_inventory_app(inventory_settings),
            "booking": create_booking_app(booking_settings),
            "payments": create_payments_app(payments_settings),
            "notifications": create_notifications_app(notifications_settings),
            "gateway": create_gateway_app(
                GatewaySettings(
                    service_urls={name: urls[name] for name in SERVICES},
                    rate_limit_auth=UNLIMITED,
                    rate_limit_write=UNLIMITED,
                    rate_limit_read=UNLIMITED,
                    **common,
                )
            ),
        }
        for name, app in apps.items():
            stack.enter_context(serve_in_thread(app, port=ports[name]))
        yield platform


# ---- people --------------------------------------------------------------------------------


async def login(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    tokens: dict[str, Any] = ok(
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    )
    return tokens


async def register(platform: Platform, client: httpx.AsyncClient, name: str) -> Person:
    """A new account: registered, verified by the emailed token, signed in."""
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.org"
    ok(
        await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "name": name.title()},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        ),
        201,
    )
    token = await platform.emailed_token(email)
    assert ok(await client.post("/api/v1/auth/verify-email", json={"token": token}))[
        "email_verified"
    ]
    return Person(client, email, await login(client, email))


async def create_admin(platform: Platform, client: httpx.AsyncClient) -> Person:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.org"
    made = await asyncio.to_thread(
        subprocess.run,
        [
            *(sys.executable, "-m", "marquee_cli", "auth", "create-admin"),
            *("--email", email, "--password", PASSWORD),
        ],
        env={**os.environ, "AUTH_DATABASE_URL": platform.auth_database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    admin = Person(client, email, await login(client, email))
    assert "admin" in admin.tokens["roles"]
    return admin


# ---- the organizer's catalog ---------------------------------------------------------------


async def publish_event(organizer: Person, word: str) -> dict[str, Any]:
    """A venue with eight seats in row A, an event selling them as "Stalls" (45.00 EUR)
    and a standing floor, published (the bodies of test_catalog_search_e2e)."""

    async def post(
        path: str, body: dict[str, Any] | None = None, *, status: int = 201
    ) -> dict[str, Any]:
        result: dict[str, Any] = ok(await organizer.post(path, body, key=str(uuid.uuid4())), status)
        return result

    seats = [{"id": f"A-{number}"} for number in range(1, 9)]
    venue = await post(
        "/api/v1/events/venues",
        {
            "name": "Olympia",
            "address": "28 Boulevard des Capucines",
            "city": "Paris",
            "country": "FR",
            "location": {"latitude": 48.8702, "longitude": 2.3283},
            "time_zone": "Europe/Paris",
            "capacity": 108,
            "seating_map": {
                "sections": [
                    {
                        "name": "Stalls",
                        "rows": [{"label": "A", "price_category": "standard", "seats": seats}],
                    }
                ],
                "general_admission": [{"name": "Floor", "capacity": 100}],
            },
        },
    )
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    event = await post(
        "/api/v1/events",
        {
            "venue_id": venue["id"],
            "name": f"{word} symphony night",
            "description": "An orchestra plays under the glass roof.",
            "category": "concert",
            "tags": ["classical", "orchestra"],
            "image_urls": ["https://images.example/symphony.jpg"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "sale_starts_at": datetime.now(UTC).isoformat(),
            "sale_ends_at": starts.isoformat(),
            "high_demand": False,
            "max_tickets_per_order": 6,
        },
    )
    path = f"/api/v1/events/{event['id']}"
    await post(
        f"{path}/ticket-types",
        {
            "name": "Stalls",
            "price_minor": 4_500,
            "currency": "EUR",
            "price_category": "standard",
            "max_per_order": 6,
        },
    )
    await post(
        f"{path}/ticket-types",
        {
            "name": "Floor",
            "price_minor": 3_000,
            "currency": "EUR",
            "general_admission_area": "Floor",
            "quantity": 100,
            "max_per_order": 6,
        },
    )
    return await post(f"{path}/publish", status=200)


# ---- a fan's purchase ----------------------------------------------------------------------


async def hold(fan: Person, event_id: str, seat: str) -> str:
    held = ok(
        await fan.post(
            f"/api/v1/inventory/events/{event_id}/holds", {"seats": [{"seat_id": seat}]}
        ),
        201,
    )
    assert [place["seat_id"] for place in held["seats"]] == [seat]
    hold_id: str = held["hold_id"]
    return hold_id


async def place_order(
    fan: Person, event_id: str, hold_id: str, *, key: str | None = None, **extra: Any
) -> httpx.Response:
    body = {"event_id": event_id, "hold_id": hold_id, **extra}
    return await fan.post("/api/v1/orders", body, key=key or str(uuid.uuid4()))


async def pay(fan: Person, order: dict[str, Any]) -> float:
    """Start the payment and confirm it at the simulated provider, as the fan's browser
    does with the client secret; answers when the confirmation was answered."""
    payment = ok(await fan.post("/api/v1/payments", {"order_id": order["order_id"]}), 201)
    assert (payment["provider"], payment["status"]) == ("simulated", "requires_payment_method")
    assert (payment["amount_minor"], payment["currency"]) == (order["total_minor"], "EUR")
    confirmed = ok(
        await fan.client.post(
            f"/api/v1/payments/simulator/intents/{payment['provider_payment_id']}/confirm",
            json={"client_secret": payment["client_secret"]},
        )
    )
    assert confirmed["status"] == "succeeded"
    return time.perf_counter()


async def order_reaches(
    platform: Platform, person: Person, order_id: str, status: str, *, timeout: float
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def reached() -> bool:
        last.update(ok(await person.get(f"/api/v1/orders/{order_id}")))
        return bool(last["status"] == status)

    await platform.wait_until(
        reached,
        timeout=timeout,
        message=lambda: f"order {order_id} to be {status} (it is {last.get('status')})",
    )
    return last


async def check_in(organizer: Person, event_id: str, barcode: str, gate: str) -> dict[str, Any]:
    answer: dict[str, Any] = ok(
        await organizer.post(
            f"/api/v1/events/{event_id}/checkins", {"barcode": barcode, "gate": gate}
        )
    )
    return answer


async def seat_state(client: httpx.AsyncClient, event_id: str, seat: str) -> str:
    availability = ok(await client.get(f"/api/v1/inventory/events/{event_id}/availability"))
    return str(availability["seats"][seat])


# ---- the test ------------------------------------------------------------------------------


async def test_a_ticket_is_bought_used_refunded_resold_and_transferred(
    platform: Platform,
) -> None:
    async with platform.client() as client:
        started = time.perf_counter()
        admin, organizer, fan, other_fan, friend = await asyncio.gather(
            create_admin(platform, client),
            register(platform, client, "organizer"),
            register(platform, client, "fan"),
            register(platform, client, "other"),
            register(platform, client, "friend"),
        )
        print(f"an admin (CLI) and four verified accounts: {time.perf_counter() - started:.1f} s")
        ok(
            await admin.post(
                f"/api/v1/auth/users/{organizer.user_id}/roles/organizer", key=str(uuid.uuid4())
            )
        )
        organizer.tokens = await login(client, organizer.email)  # a token with the new role
        assert "organizer" in organizer.tokens["roles"]

        # The organizer publishes; search, inventory and booking each learn of it (the
        # waits start as the publish is answered).
        word = "zq" + uuid.uuid4().hex[:8]
        event = await publish_event(organizer, word)
        event_id = str(event["id"])
        events = f"/api/v1/events/{event_id}"

        async def found() -> bool:
            response = await client.get("/api/v1/search/events", params={"q": word})
            items = ok(response)["items"]
            return any(item["event_id"] == event_id for item in items)

        async def selling() -> bool:
            response = await client.get(f"/api/v1/inventory/events/{event_id}/availability")
            return response.status_code == 200 and bool(response.json()["selling"])

        async def booking_knows() -> bool:
            return (await organizer.get(f"{events}/sales-settings")).status_code == 200

        waits = await asyncio.gather(
            platform.wait_until(found, timeout=30, message="search to find the event"),
            platform.wait_until(selling, timeout=30, message="inventory to sell the event"),
            platform.wait_until(booking_knows, timeout=30, message="booking to know the event"),
        )
        print(
            "publish → found {:.0f} ms, holdable {:.0f} ms, known to booking {:.0f} ms".format(
                *(1000 * seconds for seconds in waits)
            )
        )
        promo = ok(
            await organizer.post(
                f"{events}/promo-codes",
                {"code": "early", "kind": "percent", "value": 2000, "max_uses_per_user": 1},
                key=str(uuid.uuid4()),
            ),
            201,
        )
        assert (promo["code"], promo["uses"], promo["active"]) == ("EARLY", 0, True)
        ok(await organizer.put(f"{events}/sales-settings", {"service_fee_minor": 150}))

        # The fan finds it, holds seat A-3 and orders it with the code.
        results = ok(await fan.get("/api/v1/search/events", q=f"{word} symphony"))["items"]
        assert [item["event_id"] for item in results] == [event_id]
        seat = "A-3"
        hold_id = await hold(fan, event_id, seat)
        key = str(uuid.uuid4())
        placed = await place_order(fan, event_id, hold_id, key=key, promo_code="early")
        order = ok(placed, 201)
        order_id = order["order_id"]
        assert placed.headers["Location"] == f"/api/v1/orders/{order_id}"
        replayed = await place_order(fan, event_id, hold_id, key=key, promo_code="early")
        assert ok(replayed, 201)["order_id"] == order_id, "the same key answers the same order"
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert (order["status"], order["user_id"], order["promo_code"]) == (
            "pending_payment",
            fan.user_id,
            "EARLY",
        )
        # 45.00 - 20 % + 1.50 fee, priced by booking from its copy of the catalog.
        assert (order["subtotal_minor"], order["discount_minor"], order["fees_minor"]) == (
            4500,
            900,
            150,
        )
        assert order["total_minor"] == 3750
        assert [line["seat_id"] for line in order["lines"]] == [seat]

        # Paid at the simulated provider; its signed webhook starts the saga.
        confirmed = await pay(fan, order)
        paid = await order_reaches(platform, fan, order_id, "paid", timeout=30)
        print(f"confirm → paid: {1000 * (time.perf_counter() - confirmed):.0f} ms")
        assert (paid["paid_minor"], paid["refunded_minor"]) == (3750, 0)
        assert await seat_state(client, event_id, seat) == "sold"

        # Its ticket, with a barcode signed for this event and this holder.
        tickets = ok(await fan.get(f"/api/v1/orders/{order_id}/tickets"))
        assert [(ticket["seat_id"], ticket["status"]) for ticket in tickets] == [(seat, "valid")]
        ticket = tickets[0]
        assert ticket["holder_id"] == fan.user_id
        claims = barcodes.read_barcode(ticket["barcode"])
        assert (str(claims.ticket_id), str(claims.event_id), str(claims.holder_id)) == (
            ticket["ticket_id"],
            event_id,
            fan.user_id,
        )
        mine = ok(await fan.get("/api/v1/users/me/tickets"))["items"]
        assert [item["ticket_id"] for item in mine] == [ticket["ticket_id"]]
        svg = await fan.get(f"/api/v1/tickets/{ticket['ticket_id']}/qr")
        assert svg.status_code == 200, svg.text
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in svg.text
        png = await fan.get(f"/api/v1/tickets/{ticket['ticket_id']}/qr", format="png")
        assert png.status_code == 200, png.text
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")

        # The fan's confirmation: once, its PDF's QR code the ticket's barcode, its .ics in
        # the event's time zone.
        [confirmation] = await mail_to(platform.mailbox, fan.email, "order-confirmation")
        files = attachments(confirmation)
        assert qr_codes(files["tickets.pdf"]) == [ticket["barcode"]]
        assert b"TZID=" in files["event.ics"]
        assert order_id in text_body(confirmation)

        # Another fan is told neither exists.
        for path in (f"/api/v1/orders/{order_id}", f"/api/v1/tickets/{ticket['ticket_id']}"):
            assert (await other_fan.get(path)).status_code == 404, path

        # The door: let in once, then "already used" with when and where.
        first = await check_in(organizer, event_id, ticket["barcode"], "North")
        assert (first["result"], first["ticket_id"], first["seat_id"]) == (
            "valid",
            ticket["ticket_id"],
            seat,
        )
        again = await check_in(organizer, event_id, ticket["barcode"], "South")
        assert again["result"] == "already_used", again
        assert again["first_scan"]["gate"] == "North"

        # The organizer refunds the order: the barcode dies, the money and the seat go back.
        refund = ok(await organizer.post(f"/api/v1/orders/{order_id}/refunds", {}), 201)
        refund_asked = time.perf_counter()
        assert (refund["amount_minor"], refund["reason"]) == (3750, "requested-by-organizer")
        assert refund["ticket_ids"] == [ticket["ticket_id"]]
        refunded = await order_reaches(platform, fan, order_id, "refunded", timeout=30)
        print(f"refund → refunded: {1000 * (time.perf_counter() - refund_asked):.0f} ms")
        assert refunded["refunded_minor"] == 3750
        revoked = await check_in(organizer, event_id, ticket["barcode"], "North")
        assert revoked["result"] == "revoked", revoked
        assert (await fan.get(f"/api/v1/tickets/{ticket['ticket_id']}/qr")).status_code == 409
        await mail_to(platform.mailbox, fan.email, "refund-issued")

        async def seat_is_free() -> bool:
            return await seat_state(client, event_id, seat) == "available"

        await platform.wait_until(
            seat_is_free, timeout=30, message=f"seat {seat} to be available again"
        )
        print(f"refund → seat available: {1000 * (time.perf_counter() - refund_asked):.0f} ms")
        resold_hold = await hold(other_fan, event_id, seat)
        other_order = ok(await place_order(other_fan, event_id, resold_hold), 201)
        assert other_order["total_minor"] == 4650  # no code: 45.00 + 1.50
        assert (await fan.get(f"/api/v1/orders/{other_order['order_id']}")).status_code == 404

        # A second ticket for the fan, given to a friend.
        second_seat = "A-4"
        second_hold = await hold(fan, event_id, second_seat)
        used_up = await place_order(fan, event_id, second_hold, promo_code="EARLY")
        assert used_up.status_code == 422, used_up.text
        assert used_up.json()["type"].endswith("/promo-code-used-up-by-you")
        second = ok(await place_order(fan, event_id, second_hold), 201)  # the code took nothing
        assert second["total_minor"] == 4650
        confirmed = await pay(fan, second)
        await order_reaches(platform, fan, second["order_id"], "paid", timeout=30)
        print(f"confirm → paid (second order): {1000 * (time.perf_counter() - confirmed):.0f} ms")
        (given,) = ok(await fan.get(f"/api/v1/orders/{second['order_id']}/tickets"))
        transfer: dict[str, Any] = {}

        async def transferred() -> bool:
            # Booking learns accounts from auth's topic; until it has the friend's, the
            # email names nobody (409 unknown-recipient).
            response = await fan.post(
                f"/api/v1/tickets/{given['ticket_id']}/transfer", {"email": friend.email}
            )
            if response.status_code == 409 and response.json()["type"].endswith(
                "/unknown-recipient"
            ):
                return False
            transfer.update(ok(response, 201))
            return True

        await platform.wait_until(
            transferred, timeout=30, message="booking to know the friend's account"
        )
        assert (transfer["holder_id"], transfer["seat_id"], transfer["barcode"]) == (
            friend.user_id,
            second_seat,
            None,
        )
        assert transfer["ticket_id"] != given["ticket_id"]
        (received,) = ok(await friend.get("/api/v1/users/me/tickets"))["items"]
        assert (received["ticket_id"], received["status"]) == (transfer["ticket_id"], "valid")
        assert received["barcode"] != given["barcode"]
        assert ok(await fan.get("/api/v1/users/me/tickets"))["items"] == []
        gone = ok(await fan.get(f"/api/v1/orders/{second['order_id']}/tickets", status="revoked"))
        assert [(one["ticket_id"], one["revoked_reason"]) for one in gone] == [
            (given["ticket_id"], "transferred")
        ]
        old = await check_in(organizer, event_id, given["barcode"], "East")
        assert old["result"] == "revoked", old
        new = await check_in(organizer, event_id, received["barcode"], "East")
        assert (new["result"], new["ticket_id"]) == ("valid", received["ticket_id"])
        # Both told: the friend gets the new ticket (its barcode in the PDF), the fan a note.
        [gift] = await mail_to(platform.mailbox, friend.email, "ticket-received")
        assert qr_codes(attachments(gift)["tickets.pdf"]) == [received["barcode"]]
        await mail_to(platform.mailbox, fan.email, "ticket-transferred")
        # Two orders, two confirmations, one each; nobody heard anything twice.
        await mail_to(platform.mailbox, fan.email, "order-confirmation", count=2)
        kinds = [(mail.rcpt_to, mail.message_id) for mail in platform.mailbox.messages]
        assert len(kinds) == len(set(kinds)), "no message arrived twice"
        assert await seat_state(client, event_id, second_seat) == "sold"
