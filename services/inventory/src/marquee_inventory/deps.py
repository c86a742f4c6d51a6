"""``Annotated`` dependencies of the inventory API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from marquee_inventory.handlers import SeatMaps
from marquee_inventory.models import InventoryEvent
from marquee_inventory.repository import EventRepository
from marquee_inventory.store import HoldStore
from marquee_platform.errors import NotFound
from marquee_platform.http import WriteSessionDep
from marquee_platform.security import CurrentUser


def _store(request: Request) -> HoldStore:
    store: HoldStore = request.app.state.hold_store
    return store


def _seat_maps(request: Request) -> SeatMaps:
    seat_maps: SeatMaps = request.app.state.seat_maps
    return seat_maps


def _events(session: WriteSessionDep) -> EventRepository:
    return EventRepository(session)


HoldStoreDep = Annotated[HoldStore, Depends(_store)]
SeatMapsDep = Annotated[SeatMaps, Depends(_seat_maps)]
EventsDep = Annotated[EventRepository, Depends(_events)]


async def _managed_event(
    event_id: uuid.UUID, user: CurrentUser, events: EventsDep
) -> InventoryEvent:
    """The event from the path, if the caller organizes it or is an admin; 404 otherwise
    (another organizer's event is not found, not forbidden: ids are not confirmed)."""
    event = await events.get(event_id, for_update=True)
    if event is None or not (user.is_admin or event.organizer_id == user.user_id):
        raise NotFound(f"There is no event {event_id} of yours.", code="event-not-found")
    return event


ManagedEvent = Annotated[InventoryEvent, Depends(_managed_event)]
"""The path's event, loaded for update, managed by the caller (its organizer or an admin)."""
