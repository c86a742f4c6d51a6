"""Commands: what a caller asks the catalog to do, in the domain's own values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from marquee_events.domain.events import EventDetails
from marquee_events.domain.lifecycle import EventStatus
from marquee_events.domain.seating import SeatingMap
from marquee_events.domain.venues import VenueDetails


@dataclass(frozen=True, slots=True)
class CreateVenue:
    details: VenueDetails
    seating: SeatingMap


@dataclass(frozen=True, slots=True)
class CreateEvent:
    venue_id: uuid.UUID
    details: EventDetails


@dataclass(frozen=True, slots=True)
class ChangeStatus:
    status: EventStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PostReview:
    rating: int
    comment: str = ""
