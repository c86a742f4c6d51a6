"""``Annotated`` dependencies of the booking API: repositories on the request's session,
the inventory client, and loaders that load what the path names, answer 404 unless the
caller may see it, and lock it when the endpoint changes it.

Who may see what (404 for anyone else: an id is never confirmed to a stranger):

- an order: its buyer, the event's organizer, admins;
- a ticket: its holder, the event's organizer, admins (the QR code: its holder and admins);
- an event's orders, promo codes, settings and staff: its organizer, admins;
- an event's check-ins and scanner kit: its organizer, the staff they named, admins.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from marquee_booking.domain import OrderNotFound, TicketNotFound
from marquee_booking.inventory_client import InventoryClient
from marquee_booking.models import BookingEvent, Order, Ticket
from marquee_booking.repository import (
    CheckInRepository,
    EventRepository,
    OrderRepository,
    PeopleRepository,
    PromoRepository,
    RefundRepository,
    TicketRepository,
)
from marquee_booking.settings import BookingSettings
from marquee_platform.clock import Clock
from marquee_platform.deps import ClockDep, HandlerDependencies, OutboxDep, on_write_session
from marquee_platform.errors import NotFound
from marquee_platform.outbox import Outbox
from marquee_platform.security import CurrentUser, Principal, Role

EventsDep = Annotated[EventRepository, Depends(on_write_session(EventRepository))]
OrdersDep = Annotated[OrderRepository, Depends(on_write_session(OrderRepository))]
TicketsDep = Annotated[TicketRepository, Depends(on_write_session(TicketRepository))]
PromosDep = Annotated[PromoRepository, Depends(on_write_session(PromoRepository))]
RefundsDep = Annotated[RefundRepository, Depends(on_write_session(RefundRepository))]
CheckInsDep = Annotated[CheckInRepository, Depends(on_write_session(CheckInRepository))]
PeopleDep = Annotated[PeopleRepository, Depends(on_write_session(PeopleRepository))]


async def _inventory(request: Request) -> InventoryClient:
    client: InventoryClient = request.app.state.inventory_client
    return client


async def _settings(request: Request) -> BookingSettings:
    settings: BookingSettings = request.app.state.settings
    return settings


InventoryDep = Annotated[InventoryClient, Depends(_inventory)]
SettingsDep = Annotated[BookingSettings, Depends(_settings)]


@dataclass(frozen=True, slots=True)
class BookingHandlerDependencies(HandlerDependencies):
    events: EventRepository
    orders: OrderRepository
    tickets: TicketRepository
    promos: PromoRepository
    refunds: RefundRepository
    checkins: CheckInRepository
    people: PeopleRepository
    outbox: Outbox
    clock: Clock


async def _run(
    events: EventsDep,
    orders: OrdersDep,
    tickets: TicketsDep,
    promos: PromosDep,
    refunds: RefundsDep,
    checkins: CheckInsDep,
    people: PeopleDep,
    outbox: OutboxDep,
    clock: ClockDep,
) -> BookingHandlerDependencies:
    return BookingHandlerDependencies(
        events=events,
        orders=orders,
        tickets=tickets,
        promos=promos,
        refunds=refunds,
        checkins=checkins,
        people=people,
        outbox=outbox,
        clock=clock,
    )


RunHandler = Annotated[BookingHandlerDependencies, Depends(_run)]


# ---- who may do what ----------------------------------------------------------------------


def organizes(user: Principal, event: BookingEvent) -> bool:
    """Organizing takes the organizer role as well as the id (as in the events service)."""
    return user.has_role(Role.ORGANIZER) and event.organizer_id == user.user_id


def manages(user: Principal, event: BookingEvent) -> bool:
    return user.is_admin or organizes(user, event)


async def _order_seen_by(
    order_id: uuid.UUID,
    user: Principal,
    orders: OrderRepository,
    events: EventRepository,
    *,
    for_update: bool,
) -> Order:
    order = await orders.get(order_id, for_update=for_update)
    if order is None:
        raise OrderNotFound(order_id)
    if order.user_id == user.user_id or user.is_admin:
        return order
    event = await events.get(order.event_id)
    if event is None or not organizes(user, event):
        raise OrderNotFound(order_id)
    return order


async def _visible_order(
    order_id: uuid.UUID, user: CurrentUser, orders: OrdersDep, events: EventsDep
) -> Order:
    return await _order_seen_by(order_id, user, orders, events, for_update=False)


async def _locked_order(
    order_id: uuid.UUID, user: CurrentUser, orders: OrdersDep, events: EventsDep
) -> Order:
    return await _order_seen_by(order_id, user, orders, events, for_update=True)


VisibleOrder = Annotated[Order, Depends(_visible_order)]
"""The path's order (to read), if the caller bought it, organizes its event, or is an
admin; 404 otherwise."""
LockedOrder = Annotated[Order, Depends(_locked_order)]
"""The same, locked for a change (cancel, refund)."""


async def _visible_ticket(
    ticket_id: uuid.UUID, user: CurrentUser, tickets: TicketsDep, events: EventsDep
) -> Ticket:
    ticket = await tickets.get(ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    if ticket.holder_id == user.user_id or user.is_admin:
        return ticket
    event = await events.get(ticket.event_id)
    if event is None or not organizes(user, event):
        raise TicketNotFound(ticket_id)
    return ticket


VisibleTicket = Annotated[Ticket, Depends(_visible_ticket)]


async def _ticket_held_by(
    ticket_id: uuid.UUID, user: Principal, tickets: TicketRepository, *, for_update: bool
) -> Ticket:
    ticket = await tickets.get(ticket_id, for_update=for_update)
    if ticket is None or not (ticket.holder_id == user.user_id or user.is_admin):
        raise TicketNotFound(ticket_id)
    return ticket


async def _held_ticket(ticket_id: uuid.UUID, user: CurrentUser, tickets: TicketsDep) -> Ticket:
    return await _ticket_held_by(ticket_id, user, tickets, for_update=False)


async def _locked_held_ticket(
    ticket_id: uuid.UUID, user: CurrentUser, tickets: TicketsDep
) -> Ticket:
    return await _ticket_held_by(ticket_id, user, tickets, for_update=True)


HeldTicket = Annotated[Ticket, Depends(_held_ticket)]
"""The path's ticket (to read), if the caller holds it (or is an admin)."""
LockedHeldTicket = Annotated[Ticket, Depends(_locked_held_ticket)]
"""The same, locked for a change (transfer)."""


def _event_not_found(event_id: uuid.UUID) -> NotFound:
    return NotFound(f"There is no event {event_id} of yours.", code="event-not-found")


async def _managed_event(event_id: uuid.UUID, user: CurrentUser, events: EventsDep) -> BookingEvent:
    event = await events.get(event_id, for_update=True)
    if event is None or not manages(user, event):
        raise _event_not_found(event_id)
    return event


async def _managed_event_to_read(
    event_id: uuid.UUID, user: CurrentUser, events: EventsDep
) -> BookingEvent:
    event = await events.get(event_id)
    if event is None or not manages(user, event):
        raise _event_not_found(event_id)
    return event


ManagedEvent = Annotated[BookingEvent, Depends(_managed_event)]
"""The path's event, locked for a change, if the caller organizes it or is an admin."""
ReadManagedEvent = Annotated[BookingEvent, Depends(_managed_event_to_read)]
"""The same, unlocked, for the organizer's reads."""


async def _door_event(event_id: uuid.UUID, user: CurrentUser, events: EventsDep) -> BookingEvent:
    event = await events.get(event_id)
    if event is None:
        raise _event_not_found(event_id)
    if manages(user, event) or await events.is_staff(event_id, user.user_id):
        return event
    raise _event_not_found(event_id)


DoorEvent = Annotated[BookingEvent, Depends(_door_event)]
"""The path's event, if the caller organizes it, was named its door staff, or is an admin."""
