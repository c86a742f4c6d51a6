"""Factories for the inventory service's tests: published events as the events service
sends them, and an ``Inventory`` harness that applies catalog messages the way the
consumer does (one transaction, Redis after the commit) and drives the hold API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from marquee_contracts.booking import OrderPaid, TicketCancelled
from marquee_contracts.catalog import (
    EventChanged,
    EventPublished,
    EventVenue,
    GeneralAdmissionCapacity,
    PublishedRow,
    PublishedSeat,
    PublishedSeating,
    PublishedSection,
    TicketTypeSnapshot,
)
from marquee_contracts.inventory import HeldQuantity, HeldSeat
from marquee_inventory import handlers
from marquee_inventory.repository import EventRepository, SaleRepository, SeatRepository
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_platform.outbox import Outbox


def seat_id(section: int, row: int, seat: int) -> str:
    return f"S{section}-R{row}-{seat}"


@dataclass
class PublishedEvent:
    """An event as inventory learns it: its message, and its ticket types by role."""

    message: EventPublished
    seated: dict[str, uuid.UUID] = field(default_factory=dict)
    """Price category → the seated ticket type that sells it."""
    general_admission: uuid.UUID | None = None

    @property
    def event_id(self) -> uuid.UUID:
        return self.message.event_id


def published_event(
    *,
    sections: int = 1,
    rows: int = 2,
    seats_per_row: int = 5,
    categories: tuple[str, ...] = ("standard",),
    general_admission: int = 0,
    max_per_order: int = 10,
    max_tickets_per_order: int = 20,
    sale_starts_at: datetime | None = None,
    sale_ends_at: datetime | None = None,
    organizer_id: str = "organizer-1",
    version: int = 3,
    high_demand: bool = False,
) -> PublishedEvent:
    """Sections ranked best first; a row's seats take the categories in turn by row."""
    now = datetime.now(UTC)
    event_id = uuid.uuid4()
    seated = {category: uuid.uuid4() for category in categories}
    layout = [
        PublishedSection(
            name=f"Section {section}",
            rows=[
                PublishedRow(
                    label=str(row),
                    seats=[
                        PublishedSeat(
                            id=seat_id(section, row, seat),
                            price_category=categories[row % len(categories)],
                        )
                        for seat in range(seats_per_row)
                    ],
                )
                for row in range(rows)
            ],
        )
        for section in range(sections)
    ]
    ticket_types = [
        TicketTypeSnapshot(
            ticket_type_id=tt,
            name=f"Seat {category}",
            price_minor=5000,
            currency="EUR",
            kind="seated",
            price_category=category,
            min_per_order=1,
            max_per_order=max_per_order,
        )
        for category, tt in seated.items()
    ]
    standing = None
    if general_admission:
        standing = uuid.uuid4()
        ticket_types.append(
            TicketTypeSnapshot(
                ticket_type_id=standing,
                name="Standing",
                price_minor=3000,
                currency="EUR",
                kind="general_admission",
                general_admission_area="Floor",
                quantity=general_admission,
                min_per_order=1,
                max_per_order=max_per_order,
            )
        )
    by_category: dict[str, list[str]] = {}
    for section in layout:
        for row in section.rows:
            for seat in row.seats:
                by_category.setdefault(seat.price_category, []).append(seat.id)
    message = EventPublished(
        event_id=event_id,
        version=version,
        organizer_id=organizer_id,
        name="The test concert",
        starts_at=now + timedelta(days=30),
        ends_at=now + timedelta(days=30, hours=3),
        time_zone="Europe/Paris",
        venue_id=uuid.uuid4(),
        sale_starts_at=sale_starts_at or now - timedelta(days=1),
        sale_ends_at=sale_ends_at or now + timedelta(days=29),
        high_demand=high_demand,
        max_tickets_per_order=max_tickets_per_order,
        ticket_types=ticket_types,
        seating=PublishedSeating(
            capacity=sum(len(ids) for ids in by_category.values()) + general_admission,
            seat_ids_by_price_category=by_category,
            general_admission=(
                [GeneralAdmissionCapacity(name="Floor", capacity=general_admission)]
                if general_admission
                else []
            ),
            sections=layout,
        ),
        published_at=now,
    )
    return PublishedEvent(message, seated, standing)


def changed_snapshot(
    event: PublishedEvent, *, version: int, status: str = "on_sale", **changes: Any
) -> EventChanged:
    """An ``events.event-changed.v1`` for the same event at ``version``."""
    message = event.message
    values: dict[str, Any] = {
        "event_id": message.event_id,
        "version": version,
        "deleted": False,
        "public": True,
        "status": status,
        "organizer_id": message.organizer_id,
        "name": message.name,
        "description": "",
        "category": "concert",
        "tags": [],
        "image_urls": [],
        "starts_at": message.starts_at,
        "ends_at": message.ends_at,
        "time_zone": message.time_zone,
        "venue": EventVenue(
            id=message.venue_id,
            name="Hall",
            address="1 Street",
            city="Paris",
            country="FR",
            latitude=48.8,
            longitude=2.3,
            time_zone=message.time_zone,
        ),
        "price_range": None,
        "ticket_types": message.ticket_types,
        "sale_starts_at": message.sale_starts_at,
        "sale_ends_at": message.sale_ends_at,
        "high_demand": message.high_demand,
        "max_tickets_per_order": message.max_tickets_per_order,
        "created_at": message.published_at,
        "updated_at": message.published_at,
        "published_at": message.published_at,
    }
    values.update(changes)
    return EventChanged(**values)


def order_paid(
    hold: dict[str, Any], *, order_id: uuid.UUID | None = None, user_id: str | None = None
) -> OrderPaid:
    """What booking sends once the order made from ``hold`` (a hold API answer) is paid."""
    return OrderPaid(
        order_id=order_id or uuid.uuid4(),
        hold_id=hold["hold_id"],
        event_id=uuid.UUID(hold["event_id"]),
        user_id=user_id or hold["user_id"],
        seats=[HeldSeat(**seat) for seat in hold["seats"]],
        general_admission=[HeldQuantity(**place) for place in hold["general_admission"]],
        amount_minor=1000,
        currency="EUR",
        paid_at=datetime.now(UTC),
    )


def ticket_cancelled(
    *, order_id: uuid.UUID, event_id: uuid.UUID, seat_id: str | None, ticket_type_id: uuid.UUID
) -> TicketCancelled:
    return TicketCancelled(
        ticket_id=uuid.uuid4(),
        order_id=order_id,
        event_id=event_id,
        seat_id=seat_id,
        ticket_type_id=ticket_type_id,
        reason="refunded",
        cancelled_at=datetime.now(UTC),
    )


class Catalog:
    """Applies catalog messages like the consumer: one transaction, then Redis."""

    def __init__(self, database: Database, store: HoldStore) -> None:
        self.database = database
        self.store = store

    async def publish(self, event: PublishedEvent) -> PublishedEvent:
        async with self.database.transaction() as session:
            await handlers.apply_event_published(
                event.message, events=EventRepository(session), seats=SeatRepository(session)
            )
        await handlers.push_config(event.event_id, database=self.database, store=self.store)
        return event

    async def change(self, message: EventChanged) -> None:
        async with self.database.transaction() as session:
            await handlers.apply_event_changed(message, events=EventRepository(session))
        await handlers.push_config(message.event_id, database=self.database, store=self.store)

    async def sell(self, message: OrderPaid, *, clock: Any) -> str:
        """Apply ``booking.order-paid.v1`` like the consumer; ``confirmed`` or ``rejected``."""
        async with self.database.transaction() as session:
            outcome: str = await handlers.confirm_sale(
                message,
                events=EventRepository(session),
                seats=SeatRepository(session),
                sales=SaleRepository(session),
                outbox=Outbox(session, source="/marquee/inventory"),
                store=self.store,
                database=self.database,
                clock=clock,
            )
        return outcome

    async def cancel_ticket(self, message: TicketCancelled, *, clock: Any) -> bool:
        async with self.database.transaction() as session:
            returned: bool = await handlers.return_place(
                message,
                seats=SeatRepository(session),
                sales=SaleRepository(session),
                store=self.store,
                database=self.database,
                clock=clock,
            )
        return returned


@dataclass
class HoldApi:
    client: httpx.AsyncClient

    async def hold(
        self, event_id: uuid.UUID, headers: dict[str, str], **body: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/inventory/events/{event_id}/holds", json=body, headers=headers
        )

    async def release(
        self, event_id: uuid.UUID, hold_id: str, headers: dict[str, str]
    ) -> httpx.Response:
        return await self.client.delete(
            f"/api/v1/inventory/events/{event_id}/holds/{hold_id}", headers=headers
        )

    async def availability(self, event_id: uuid.UUID) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/inventory/events/{event_id}/availability")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def sold_seats(database: Database, event_id: uuid.UUID) -> list[tuple[str, str]]:
    from sqlalchemy import text

    async with database.reading() as session:
        rows = await session.execute(
            text("SELECT seat_id, order_id::text FROM sold_seats WHERE event_id = :e ORDER BY 1"),
            {"e": event_id},
        )
        return [(row[0], row[1]) for row in rows]
