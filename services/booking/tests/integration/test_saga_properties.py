"""Random sequences of what fans, the organizer, the provider and the network do to a
purchase, played against the whole saga (marquee_testing.saga), and the invariants that
must survive every one of them.

A few fans compete for the one or two seats of a fresh event: they hold and order, start
payments and confirm them (succeed, fail, 3-D Secure approved or refused), cancel; the
organizer refunds paid orders (whole or one ticket); holds lapse under the sweeper;
chosen message types are held back and delivered later, in order or reversed; delivered
webhooks come again with a fresh signature (Stripe's retries), and stale PaymentIntent
events signed now but created days ago arrive late. ``pump()`` is a step like the others.

Checked after every step: no seat has two live tickets, a live ticket's seat is sold to
its order, a paid order has a succeeded payment, the ledger balances, nothing is refunded
beyond what was paid. Checked once the saga has settled (everything parked delivered,
pumped until quiet, the sweeper run hours later): inventory's sold seats (PostgreSQL and
Redis) are exactly booking's live tickets, no order is left half-way, and money taken is
either sold or given back in full — booking, payments, the provider and the ledger agree
on the amounts.

One saga serves every example of the test (three migrated databases are too slow to make
per example); each example has an event, fans and orders of its own and checks only those.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_booking.models import Order, OrderLine, Ticket
from marquee_contracts.booking import ORDER_CLOSED, ORDER_PAID, REFUND_REQUESTED, TICKET_CANCELLED
from marquee_contracts.inventory import HOLD_EXPIRED, SALE_CONFIRMED, SALE_REJECTED
from marquee_contracts.payments import PAYMENT_FAILED, PAYMENT_SUCCEEDED, REFUND_SUCCEEDED
from marquee_inventory.models import SoldSeat
from marquee_payments.ledger import Ledger
from marquee_payments.models import LedgerEntry, Payment, SimulatedIntent, SimulatedWebhook
from marquee_payments.providers import stripe_shaped
from marquee_payments.providers.signature import sign_payload
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import PublishedEvent, published_event
from marquee_testing.saga import Saga

from .helpers import fan, first_seats

FANS = 3
MAX_SEATS = 2
PAID = frozenset({"paid", "partially_refunded"})
MONEY_TAKEN = frozenset({"succeeded", "refunded"})
HELD_BACK_TOPICS = (
    ORDER_CLOSED.name,
    ORDER_PAID.name,
    PAYMENT_SUCCEEDED.name,
    PAYMENT_FAILED.name,
    SALE_CONFIRMED.name,
    SALE_REJECTED.name,
    HOLD_EXPIRED.name,
    REFUND_REQUESTED.name,
    REFUND_SUCCEEDED.name,
    TICKET_CANCELLED.name,
)
STALE_EVENTS = {
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.processing": "processing",
}
"""Earlier states of an intent, as a late event reports them (type → intent status)."""


# ---- the steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldAndOrder:
    fan: int
    seats: tuple[int, ...]
    """Indexes into the event's seats (modulo how many it has)."""


@dataclass(frozen=True)
class StartPayment:
    order: int
    """Which of the example's orders, newest first (modulo how many; none: nothing)."""


@dataclass(frozen=True)
class ConfirmPayment:
    order: int
    outcome: str


@dataclass(frozen=True)
class Authenticate:
    order: int
    approve: bool


@dataclass(frozen=True)
class LetHoldsLapse:
    pass


@dataclass(frozen=True)
class HoldBack:
    topic: str


@dataclass(frozen=True)
class ReleaseParked:
    reversed: bool


@dataclass(frozen=True)
class ResendWebhook:
    index: int
    """Index into the webhooks delivered so far for this example's intents."""


@dataclass(frozen=True)
class StaleEvent:
    order: int
    type: str


@dataclass(frozen=True)
class CancelOrder:
    order: int


@dataclass(frozen=True)
class OrganizerRefund:
    order: int
    one_ticket: bool


@dataclass(frozen=True)
class Pump:
    pass


Step = (
    HoldAndOrder
    | StartPayment
    | ConfirmPayment
    | Authenticate
    | LetHoldsLapse
    | HoldBack
    | ReleaseParked
    | ResendWebhook
    | StaleEvent
    | CancelOrder
    | OrganizerRefund
    | Pump
)

order_index = st.integers(0, 3)
hold_and_order = st.builds(
    HoldAndOrder, fan=st.integers(0, FANS - 1), seats=st.sampled_from([(0,), (1,), (0, 1)])
)
confirm_payment = st.builds(
    ConfirmPayment,
    order=order_index,
    outcome=st.sampled_from(["succeed", "succeed", "fail", "three_d_secure"]),
)
organizer_refund = st.builds(OrganizerRefund, order=order_index, one_ticket=st.booleans())
steps = st.sampled_from(
    [
        # Pump first: a failing example shrinks towards it (the step that changes least).
        # What moves a purchase forward comes up more often than what disturbs it.
        *[st.builds(Pump), hold_and_order] * 3,
        *[confirm_payment] * 4,
        *[organizer_refund] * 2,
        st.builds(StartPayment, order=order_index),
        st.builds(Authenticate, order=order_index, approve=st.booleans()),
        st.builds(LetHoldsLapse),
        st.builds(HoldBack, topic=st.sampled_from(HELD_BACK_TOPICS)),
        st.builds(ReleaseParked, reversed=st.booleans()),
        st.builds(ResendWebhook, index=st.integers(0, 15)),
        st.builds(StaleEvent, order=order_index, type=st.sampled_from(sorted(STALE_EVENTS))),
        st.builds(CancelOrder, order=order_index),
    ]
).flatmap(lambda step: step)


# ---- one example's world ------------------------------------------------------------------


@dataclass
class Purchase:
    order_id: str
    fan: int
    payment: dict[str, Any] | None = None


@dataclass
class World:
    saga: Saga
    event: PublishedEvent
    seats: list[str]
    fans: list[dict[str, str]]
    organizer: dict[str, str]
    purchases: list[Purchase] = field(default_factory=list)
    held_topics: set[str] = field(default_factory=set)

    @property
    def order_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(purchase.order_id) for purchase in self.purchases]

    def purchase(self, index: int) -> Purchase | None:
        """Counted from the newest (0), the one most likely still waiting for something."""
        if not self.purchases:
            return None
        return self.purchases[-1 - index % len(self.purchases)]

    def paying(self, index: int) -> Purchase | None:
        """The chosen purchase if its payment was started."""
        purchase = self.purchase(index)
        return purchase if purchase is not None and purchase.payment is not None else None


def expect(response: httpx.Response, *statuses: int) -> bool:
    """The answer is one a person could act on (never a 5xx); True for the first status."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url.path} answered "
        f"{response.status_code}: {response.text}"
    )
    return response.status_code == statuses[0]


async def post_webhook(saga: Saga, payload: str) -> httpx.Response:
    """A body signed now (the saga's clock) with the provider's secret, as Stripe posts."""
    header = sign_payload(
        payload.encode(), saga.simulator.webhook_secret, timestamp=int(saga.clock().timestamp())
    )
    return await saga.payments.client.post(
        "/api/v1/payments/webhooks/simulated",
        content=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )


async def delivered_webhooks(world: World) -> list[str]:
    """The payloads delivered for this example's intents, oldest first."""
    intents = {
        purchase.payment["provider_payment_id"]: position
        for position, purchase in enumerate(world.purchases)
        if purchase.payment is not None
    }
    if not intents:
        return []
    async with world.saga.payments.database.reading() as session:
        rows = (
            await session.execute(
                select(SimulatedWebhook.payload, SimulatedWebhook.delivered_at).where(
                    SimulatedWebhook.delivered_at.is_not(None),
                    or_(*(SimulatedWebhook.payload.contains(intent) for intent in intents)),
                )
            )
        ).all()

    def when(row: Any) -> tuple[Any, ...]:
        body = json.loads(row.payload)
        data = body["data"]["object"]
        intent = data.get("payment_intent") or data["id"]
        return (row.delivered_at, intents.get(intent, -1), body["type"], row.payload)

    return [row.payload for row in sorted(rows, key=when)]


# ---- playing a step -----------------------------------------------------------------------


async def play(world: World, step: Step) -> None:
    saga = world.saga
    match step:
        case HoldAndOrder(fan=chosen, seats=indexes):
            headers = world.fans[chosen]
            seats = sorted({world.seats[index % len(world.seats)] for index in indexes})
            held = await saga.inventory.client.post(
                f"/api/v1/inventory/events/{world.event.event_id}/holds",
                json={"seats": [{"seat_id": seat} for seat in seats]},
                headers=headers,
            )
            if not expect(held, 201, 409, 422):
                return
            placed = await saga.booking.client.post(
                "/api/v1/orders",
                json={"event_id": str(world.event.event_id), "hold_id": held.json()["hold_id"]},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            expect(placed, 201)
            world.purchases.append(Purchase(placed.json()["order_id"], chosen))
        case StartPayment(order=index):
            purchase = world.purchase(index)
            if purchase is not None:
                await start_payment(world, purchase)
        case ConfirmPayment(order=index, outcome=outcome):
            purchase = world.purchase(index)
            if purchase is None:
                return
            if purchase.payment is None:
                # The buyer's browser starts the payment on the way to the card form.
                await start_payment(world, purchase)
                if purchase.payment is None:
                    return
            # A card of its own per order: the per-card velocity check stays out of the way.
            card = str(4242424242420000 + world.purchases.index(purchase))
            confirmed = await saga.payments.client.post(
                f"/api/v1/payments/simulator/intents/{purchase.payment['provider_payment_id']}"
                "/confirm",
                json={
                    "client_secret": purchase.payment["client_secret"],
                    "outcome": outcome,
                    "card": card,
                },
            )
            expect(confirmed, 200, 422)
        case Authenticate(order=index, approve=approve):
            purchase = world.paying(index)
            if purchase is None:
                return
            assert purchase.payment is not None
            authenticated = await saga.payments.client.post(
                f"/api/v1/payments/simulator/intents/{purchase.payment['provider_payment_id']}"
                "/authenticate",
                json={"client_secret": purchase.payment["client_secret"], "approve": approve},
            )
            expect(authenticated, 200, 422)
        case LetHoldsLapse():
            saga.clock.advance(timedelta(minutes=6))
            await saga.expire_holds()
        case HoldBack(topic=topic):
            world.held_topics.add(topic)
        case ReleaseParked(reversed=backwards):
            world.held_topics.clear()
            if backwards:
                saga.parked.reverse()
            await saga.release_parked()
        case ResendWebhook(index=index):
            delivered = await delivered_webhooks(world)
            if delivered:
                expect(await post_webhook(saga, delivered[index % len(delivered)]), 200)
        case StaleEvent(order=index, type=event_type):
            purchase = world.paying(index)
            if purchase is None:
                return
            assert purchase.payment is not None
            late = stripe_shaped.event_object(
                event_type,
                stripe_shaped.payment_intent_object(
                    amount=int(purchase.payment["amount_minor"]),
                    currency=str(purchase.payment["currency"]).lower(),
                    intent_id=purchase.payment["provider_payment_id"],
                    status=STALE_EVENTS[event_type],
                    metadata={
                        "order_id": purchase.order_id,
                        "event_id": str(world.event.event_id),
                    },
                ),
                created=saga.clock() - timedelta(days=3),
            )
            expect(await post_webhook(saga, json.dumps(late)), 200)
        case CancelOrder(order=index):
            purchase = world.purchase(index)
            if purchase is None:
                return
            cancelled = await saga.booking.client.post(
                f"/api/v1/orders/{purchase.order_id}/cancel", headers=world.fans[purchase.fan]
            )
            expect(cancelled, 200, 409)
        case OrganizerRefund(order=index, one_ticket=one_ticket):
            purchase = world.purchase(index)
            if purchase is None:
                return
            body: dict[str, Any] = {}
            if one_ticket:
                live = await live_tickets_of(saga, uuid.UUID(purchase.order_id))
                if live:
                    body = {"ticket_ids": [str(live[0])]}
            refunded = await saga.booking.client.post(
                f"/api/v1/orders/{purchase.order_id}/refunds", json=body, headers=world.organizer
            )
            expect(refunded, 201, 409)
        case Pump():
            await saga.pump()
    # The webhooks a step made the provider owe arrive before the next step (a fast
    # network), so an example does not depend on how background tasks interleave.
    await saga.simulator.settle()


async def start_payment(world: World, purchase: Purchase) -> None:
    started = await world.saga.payments.client.post(
        "/api/v1/payments",
        json={"order_id": purchase.order_id},
        headers=world.fans[purchase.fan],
    )
    if expect(started, 201, 409):
        payment = started.json()
        if purchase.payment is None:
            purchase.payment = payment
        assert payment["payment_id"] == purchase.payment["payment_id"], "a second payment"


async def live_tickets_of(saga: Saga, order_id: uuid.UUID) -> list[uuid.UUID]:
    async with saga.booking.database.reading() as session:
        return list(
            await session.scalars(
                select(Ticket.id)
                .where(Ticket.order_id == order_id, Ticket.status == "valid")
                .order_by(Ticket.seat_id)
            )
        )


async def settle(world: World) -> None:
    """Everything parked delivered, pumped until quiet; then hours later (every hold
    lapsed, every failed webhook due again) the sweeper, and quiet again."""
    saga = world.saga
    world.held_topics.clear()
    for later in (timedelta(0), timedelta(hours=2)):
        saga.clock.advance(later)
        await saga.expire_holds()
        for _ in range(10):
            await saga.simulator.settle()
            await saga.release_parked()
            await saga.simulator.settle()
            if not await saga.pump() and not saga.parked:
                break
        else:
            raise AssertionError("the saga did not settle")


# ---- what the three services hold --------------------------------------------------------


@dataclass
class Books:
    """This example's rows in booking, inventory and payments (and the provider's)."""

    orders: dict[uuid.UUID, Order]
    lines: dict[uuid.UUID, int]
    """Order → how many lines (places) it has."""
    live_tickets: list[tuple[uuid.UUID, str | None]]
    """(order, seat) of every valid ticket."""
    sold_seats: dict[str, uuid.UUID]
    """Seat → the order inventory sold it to (PostgreSQL)."""
    seat_states: dict[str, str]
    """Seat → available, held or sold (Redis, through the availability API; settled only)."""
    payments: dict[uuid.UUID, Payment]
    """Order → its payment."""
    intents: dict[uuid.UUID, SimulatedIntent]
    """Order → its PaymentIntent at the provider."""
    unbalanced: list[tuple[uuid.UUID, int]]
    ledger_total: int
    held_at_provider: dict[uuid.UUID, int]
    """Order → the ledger's provider account for it (charges less refunds)."""
    undelivered_webhooks: int


async def pairs(session: AsyncSession, statement: Select[Any]) -> dict[Any, Any]:
    return {key: value for key, value in (await session.execute(statement)).all()}


async def read_books(world: World, *, settled: bool = False) -> Books:
    """``settled`` also asks Redis (through the availability API) what each seat is."""
    saga, event_id, order_ids = world.saga, world.event.event_id, world.order_ids
    async with saga.booking.database.reading() as session:
        orders = {
            order.id: order
            for order in (await session.scalars(select(Order).where(Order.event_id == event_id)))
        }
        lines = await pairs(
            session,
            select(OrderLine.order_id, func.count())
            .where(OrderLine.order_id.in_(order_ids))
            .group_by(OrderLine.order_id),
        )
        live_tickets = [
            (order_id, seat)
            for order_id, seat in await session.execute(
                select(Ticket.order_id, Ticket.seat_id).where(
                    Ticket.event_id == event_id, Ticket.status == "valid"
                )
            )
        ]
    async with saga.inventory.database.reading() as session:
        sold_seats = await pairs(
            session,
            select(SoldSeat.seat_id, SoldSeat.order_id).where(SoldSeat.event_id == event_id),
        )
    seat_states: dict[str, str] = {}
    if settled:
        availability = await saga.inventory.client.get(
            f"/api/v1/inventory/events/{event_id}/availability"
        )
        expect(availability, 200)
        seat_states = availability.json()["seats"]
    async with saga.payments.database.reading() as session:
        payments = {
            payment.order_id: payment
            for payment in await session.scalars(
                select(Payment).where(Payment.order_id.in_(order_ids))
            )
        }
        intents = {
            intent.order_id: intent
            for intent in await session.scalars(
                select(SimulatedIntent).where(SimulatedIntent.order_id.in_(order_ids))
            )
            if intent.order_id is not None
        }
        unbalanced = [
            (order_id, amount)
            for order_id, amount in await Ledger(session).unbalanced_orders()
            if order_id in orders
        ]
        ledger_total = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
                LedgerEntry.order_id.in_(order_ids)
            )
        )
        held_at_provider = await pairs(
            session,
            select(LedgerEntry.order_id, func.sum(LedgerEntry.amount_minor))
            .where(LedgerEntry.order_id.in_(order_ids), LedgerEntry.account.like("provider:%"))
            .group_by(LedgerEntry.order_id),
        )
        undelivered = await session.scalar(
            select(func.count())
            .select_from(SimulatedWebhook)
            .where(
                SimulatedWebhook.delivered_at.is_(None),
                or_(
                    false(),
                    *(SimulatedWebhook.payload.contains(intent.id) for intent in intents.values()),
                ),
            )
        )
    return Books(
        orders=orders,
        lines=lines,
        live_tickets=live_tickets,
        sold_seats=sold_seats,
        seat_states=seat_states,
        payments=payments,
        intents=intents,
        unbalanced=unbalanced,
        ledger_total=int(ledger_total or 0),
        held_at_provider={order_id: int(amount) for order_id, amount in held_at_provider.items()},
        undelivered_webhooks=int(undelivered or 0),
    )


# ---- the invariants -----------------------------------------------------------------------


def check_always(books: Books) -> None:
    """What holds between any two steps, however far the saga is behind."""
    twice = [seat for seat, count in Counter(s for _, s in books.live_tickets).items() if count > 1]
    assert not twice, f"seats with two live tickets: {twice}"
    for order_id, seat in books.live_tickets:
        assert seat is not None
        assert books.sold_seats.get(seat) == order_id, (
            f"order {order_id} has a live ticket for {seat}, which inventory sold to "
            f"{books.sold_seats.get(seat)}"
        )
    assert books.unbalanced == [], f"unbalanced orders in the ledger: {books.unbalanced}"
    assert books.ledger_total == 0, f"the example's ledger adds up to {books.ledger_total}"
    for order_id, order in books.orders.items():
        payment = books.payments.get(order_id)
        intent = books.intents.get(order_id)
        assert 0 <= order.refunded_minor <= order.paid_minor, (
            f"order {order_id} refunded {order.refunded_minor} of {order.paid_minor} paid"
        )
        if order.status in PAID:
            assert payment is not None, f"order {order_id} is {order.status} without a payment"
            assert payment.status == "succeeded", (
                f"order {order_id} is {order.status}, its payment is {payment.status}"
            )
            assert order.payment_id == payment.id
        if payment is not None:
            assert 0 <= payment.amount_refunded_minor <= payment.amount_minor, (
                f"payment of {order_id} refunded {payment.amount_refunded_minor} "
                f"of {payment.amount_minor}"
            )
        if intent is not None:
            assert 0 <= intent.amount_refunded_minor <= intent.amount_minor, (
                f"the provider refunded {intent.amount_refunded_minor} of {intent.amount_minor} "
                f"for {order_id}"
            )
        held = books.held_at_provider.get(order_id, 0)
        charged = payment.amount_minor if payment is not None else 0
        assert 0 <= held <= charged, (
            f"the ledger holds {held} at the provider for order {order_id} (charged {charged})"
        )


def check_settled(books: Books, parked: int) -> None:
    """What holds once every message is delivered and every hold has lapsed."""
    assert parked == 0, f"{parked} messages still parked"
    assert books.undelivered_webhooks == 0, f"{books.undelivered_webhooks} webhooks undelivered"
    live = {seat: order_id for order_id, seat in books.live_tickets if seat is not None}
    assert live == books.sold_seats, (
        f"booking's live tickets {live} and inventory's sold seats {books.sold_seats} differ"
    )
    redis_sold = {seat for seat, state in books.seat_states.items() if state == "sold"}
    assert redis_sold == set(books.sold_seats), (
        f"Redis sells {sorted(redis_sold)}, PostgreSQL {sorted(books.sold_seats)}"
    )
    held = sorted(seat for seat, state in books.seat_states.items() if state == "held")
    assert not held, f"seats still held hours after every hold lapsed: {held}"
    tickets_per_order = Counter(order_id for order_id, _ in books.live_tickets)
    for order_id, order in books.orders.items():
        payment = books.payments.get(order_id)
        intent = books.intents.get(order_id)
        assert order.status not in ("pending_payment", "confirming", "refunding"), (
            f"order {order_id} is still {order.status} (closed {order.closed_reason})"
        )
        if order.status == "paid":
            assert tickets_per_order[order_id] == books.lines.get(order_id)
        elif order.status == "partially_refunded":
            assert 0 < tickets_per_order[order_id] < books.lines.get(order_id, 0)
        else:
            assert tickets_per_order[order_id] == 0, (
                f"order {order_id} is {order.status} with live tickets"
            )
        took_money = intent is not None and intent.status == "succeeded"
        assert took_money == (payment is not None and payment.status in MONEY_TAKEN), (
            f"the provider's intent for {order_id} is {intent.status if intent else None}, "
            f"payments says {payment.status if payment else None}"
        )
        if not took_money:
            assert order.status not in {*PAID, "refunded"}, (
                f"order {order_id} is {order.status} though no money was taken"
            )
            continue
        assert payment is not None
        assert intent is not None
        kept = payment.amount_minor - payment.amount_refunded_minor
        if kept > 0:
            assert order.status in PAID, (
                f"order {order_id} is {order.status} ({order.closed_reason}) while "
                f"{kept} of its payment ({payment.status}) was kept"
            )
        else:
            assert payment.status == "refunded"
            assert order.status == "refunded", (
                f"payment of {order_id} refunded in full, the order is {order.status}"
            )
        amounts = {
            "booking paid": order.paid_minor,
            "payments charged": payment.amount_minor,
            "provider charged": intent.amount_minor,
        }
        assert len(set(amounts.values())) == 1, f"order {order_id}: {amounts}"
        refunds = {
            "booking": order.refunded_minor,
            "payments": payment.amount_refunded_minor,
            "provider": intent.amount_refunded_minor,
        }
        assert len(set(refunds.values())) == 1, f"order {order_id} refunded: {refunds}"
        assert books.held_at_provider.get(order_id, 0) == kept, (
            f"the ledger holds {books.held_at_provider.get(order_id, 0)} at the provider for "
            f"{order_id}, which kept {kept}"
        )


# ---- the test ---------------------------------------------------------------------------


class Running:
    """The saga and who signs tokens, shared by every example. Not a dataclass: hypothesis
    reports a failing example's arguments, and this keeps the saga's repr out of it."""

    def __init__(self, saga: Saga, token_issuer: TokenIssuer) -> None:
        self.saga = saga
        self.token_issuer = token_issuer

    def __repr__(self) -> str:
        return "Running(saga, token_issuer)"


@pytest.fixture
def running(saga: Saga, token_issuer: TokenIssuer) -> Running:
    return Running(saga, token_issuer)


# A pass takes well under a minute; a failure is shrunk for minutes more (hypothesis gives
# up shrinking after five), which the default 300 s timeout would cut short.
@pytest.mark.timeout(900)
@settings(
    max_examples=50,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seat_count=st.integers(1, MAX_SEATS), sequence=st.lists(steps, min_size=8, max_size=40))
# Paths random sequences reach rarely, played on every run before the random ones.
@example(  # one ticket refunded, then the other
    seat_count=2,
    sequence=[
        HoldAndOrder(fan=0, seats=(0, 1)),
        ConfirmPayment(order=0, outcome="succeed"),
        Pump(),
        OrganizerRefund(order=0, one_ticket=True),
        Pump(),
        OrganizerRefund(order=0, one_ticket=True),
    ],
)
@example(  # paid after the hold lapsed and the seat went to someone else: refunded
    seat_count=1,
    sequence=[
        HoldAndOrder(fan=0, seats=(0,)),
        StartPayment(order=0),
        HoldBack(topic=ORDER_CLOSED.name),
        LetHoldsLapse(),
        Pump(),
        HoldAndOrder(fan=1, seats=(0,)),
        ConfirmPayment(order=1, outcome="succeed"),
        Pump(),
    ],
)
@example(  # 3-D Secure approved while its success waits, a stale failure, a retry
    seat_count=1,
    sequence=[
        HoldAndOrder(fan=0, seats=(0,)),
        HoldBack(topic=PAYMENT_SUCCEEDED.name),
        ConfirmPayment(order=0, outcome="three_d_secure"),
        Authenticate(order=0, approve=True),
        StaleEvent(order=0, type="payment_intent.payment_failed"),
        ResendWebhook(index=1),
        Pump(),
        ReleaseParked(reversed=True),
    ],
)
@example(  # a refund whose confirmation is held back, its webhook sent again
    seat_count=1,
    sequence=[
        HoldAndOrder(fan=0, seats=(0,)),
        ConfirmPayment(order=0, outcome="succeed"),
        Pump(),
        HoldBack(topic=REFUND_SUCCEEDED.name),
        OrganizerRefund(order=0, one_ticket=False),
        Pump(),
        ResendWebhook(index=1),
        ReleaseParked(reversed=False),
    ],
)
async def test_no_sequence_sells_a_seat_twice_or_loses_money(
    running: Running, seat_count: int, sequence: list[Step]
) -> None:
    saga, token_issuer = running.saga, running.token_issuer
    saga.held_back, saga.parked = None, []
    event = published_event(
        rows=1,
        seats_per_row=seat_count,
        sale_starts_at=saga.clock() - timedelta(days=1),
        sale_ends_at=saga.clock() + timedelta(days=20),
    )
    await saga.publish(event.message)
    world = World(
        saga=saga,
        event=event,
        seats=first_seats(event, seat_count),
        fans=[fan(token_issuer)[1] for _ in range(FANS)],
        organizer=token_issuer.headers(event.message.organizer_id, ("organizer",)),
    )
    saga.held_back = lambda topic, _: topic in world.held_topics
    try:
        for step in sequence:
            await play(world, step)
            check_always(await read_books(world))
        await settle(world)
        books = await read_books(world, settled=True)
        check_always(books)
        check_settled(books, len(saga.parked))
    finally:
        # The next example starts from a quiet saga, even after this one failed.
        saga.held_back, saga.parked = None, []
        saga.clock.advance(timedelta(hours=2))
