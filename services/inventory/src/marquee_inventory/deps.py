"""``Annotated`` dependencies of the inventory API.

Each is ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, which on
the hold path cost more than the work itself.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request

from marquee_inventory.admission import AdmissionVerifier
from marquee_inventory.handlers import SeatMaps
from marquee_inventory.models import InventoryEvent
from marquee_inventory.repository import EventRepository
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.errors import NotFound
from marquee_platform.http import WriteSessionDep
from marquee_platform.security import CurrentUser, Role


async def _store(request: Request) -> HoldStore:
    store: HoldStore = request.app.state.hold_store
    return store


async def _seat_maps(request: Request) -> SeatMaps:
    seat_maps: SeatMaps = request.app.state.seat_maps
    return seat_maps


async def _events(session: WriteSessionDep) -> EventRepository:
    return EventRepository(session)


async def _producer(request: Request) -> Any:
    return request.app.state.log_producer


async def _admission_verifier(request: Request) -> AdmissionVerifier:
    verifier: AdmissionVerifier = request.app.state.admission_verifier
    return verifier


async def _settings(request: Request) -> InventorySettings:
    settings: InventorySettings = request.app.state.settings
    return settings


SettingsDep = Annotated[InventorySettings, Depends(_settings)]
HoldStoreDep = Annotated[HoldStore, Depends(_store)]
ProducerDep = Annotated[Any, Depends(_producer)]
"""The service's Kafka producer (hold logs, queued hold requests)."""
SeatMapsDep = Annotated[SeatMaps, Depends(_seat_maps)]
EventsDep = Annotated[EventRepository, Depends(_events)]
AdmissionVerifierDep = Annotated[AdmissionVerifier, Depends(_admission_verifier)]
"""Checks the waiting room's admission tokens (keys from its JWKS)."""


async def _managed_event(
    event_id: uuid.UUID, user: CurrentUser, events: EventsDep
) -> InventoryEvent:
    """The event from the path, if the caller organizes it or is an admin; 404 otherwise
    (another organizer's event is not found, not forbidden: ids are not confirmed).
    Organizing takes the organizer role as well as the id: one whose role was revoked
    manages nothing, as in the events service."""
    event = await events.get(event_id, for_update=True)
    organizer = user.has_role(Role.ORGANIZER)
    if event is None or not (user.is_admin or (organizer and event.organizer_id == user.user_id)):
        raise NotFound(f"There is no event {event_id} of yours.", code="event-not-found")
    return event


ManagedEvent = Annotated[InventoryEvent, Depends(_managed_event)]
"""The path's event, loaded for update, managed by the caller (its organizer or an admin)."""
