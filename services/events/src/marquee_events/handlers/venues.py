"""Venues: creating one with its seating map, and changing it while events use it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from marquee_contracts.catalog import VENUE_CHANGED
from marquee_events.domain import (
    LIVE_STATUSES,
    Actor,
    CreateVenue,
    EventStatus,
    ExpectedVersion,
    SeatingMap,
    SeatingSummary,
    VenueDetails,
    authorize_management,
    check_seating_replaceable,
    check_version,
    seating_map_from_document,
    seating_map_to_document,
    validate_seating_map,
    validate_venue_details,
)
from marquee_events.handlers.shared import apply, changed_fields, record_event_change
from marquee_events.messages import venue_changed_message, venue_details_of
from marquee_events.models import Venue
from marquee_events.repository import EventRepository, VenueRepository
from marquee_platform.clock import Clock
from marquee_platform.outbox import Outbox

_VENUE_DETAIL_FIELDS = frozenset(field.name for field in fields(VenueDetails))
_SNAPSHOT_VENUE_FIELDS = frozenset(
    {"name", "address", "city", "country", "latitude", "longitude", "time_zone"}
)
"""The venue's fields copied into every event snapshot: a change re-sends its events."""


def _seating_columns(seating: SeatingMap, summary: SeatingSummary) -> dict[str, Any]:
    return {
        "seating_map": seating_map_to_document(seating),
        "seated_seats": summary.seated_seats,
        "price_categories": list(summary.price_categories),
        "general_admission": [
            {"name": name, "capacity": capacity}
            for name, capacity in summary.general_admission.items()
        ],
    }


async def create_venue(
    command: CreateVenue,
    *,
    actor: Actor,
    venues: VenueRepository,
    outbox: Outbox,
    clock: Clock,
) -> Venue:
    authorize_management(actor, owner_id=None, action="create a venue")
    details = validate_venue_details(command.details)
    summary = validate_seating_map(command.seating, capacity=details.capacity)
    now = clock()
    venue = Venue(
        id=uuid.uuid4(),
        owner_id=actor.user_id,
        version=1,
        created_at=now,
        updated_at=now,
        **{name: getattr(details, name) for name in _VENUE_DETAIL_FIELDS},
        **_seating_columns(command.seating, summary),
    )
    await venues.add(venue)
    await outbox.add(VENUE_CHANGED.name, venue_changed_message(venue), key=venue.id)
    return venue


async def venue_to_manage(
    venue_id: uuid.UUID,
    *,
    actor: Actor,
    expected: ExpectedVersion | None,
    venues: VenueRepository,
) -> Venue:
    """The venue, locked for a change by its organizer or an admin: 404 if there is none,
    403 for anyone else, 412/409 if it is no longer at the ``expected`` version."""
    venue = await venues.get_for_update(venue_id)
    authorize_management(actor, owner_id=venue.owner_id, action=f"edit venue '{venue.name}'")
    check_version(venue.version, expected, what=f"venue '{venue.name}'")
    return venue


async def update_venue(
    venue: Venue,
    changes: Mapping[str, Any],
    *,
    expected: ExpectedVersion | None,
    events: EventRepository,
    outbox: Outbox,
    clock: Clock,
) -> Venue:
    """Change a venue (from :func:`venue_to_manage`): its details and/or seating map.

    ``expected`` is a version asked for besides the one the venue was loaded at (the
    body's ``expected_version``). The seating map (and so the capacity, which must match
    it) is frozen while one of the venue's events is live. A change to what event
    snapshots show of the venue (name, place, time zone) re-sends every one of its events
    with a new version.
    """
    check_version(venue.version, expected, what=f"venue '{venue.name}'")
    current = venue_details_of(venue)
    details = validate_venue_details(
        replace(current, **{name: changes[name] for name in _VENUE_DETAIL_FIELDS & changes.keys()})
    )
    new_seating: SeatingMap | None = changes.get("seating_map")
    seating_columns: dict[str, Any] = {}
    if new_seating is not None or details.capacity != current.capacity:
        seating = new_seating or seating_map_from_document(venue.seating_map)
        summary = validate_seating_map(seating, capacity=details.capacity)
        seating_columns = _seating_columns(seating, summary)
        if seating_columns["seating_map"] == venue.seating_map:
            seating_columns = {}
    changed = changed_fields(current, details, _VENUE_DETAIL_FIELDS)
    if not changed and not seating_columns:
        return venue  # nothing to do: no new version, nothing sent

    events_at_venue = await events.lock_events_at_venue(venue.id)
    if seating_columns or "capacity" in changed:
        check_seating_replaceable(
            [event.name for event in events_at_venue if EventStatus(event.status) in LIVE_STATUSES]
        )
    now = clock()
    apply(venue, {name: getattr(details, name) for name in changed})
    apply(venue, seating_columns)
    venue.version += 1
    venue.updated_at = now
    await outbox.add(VENUE_CHANGED.name, venue_changed_message(venue), key=venue.id)
    if changed & _SNAPSHOT_VENUE_FIELDS:
        for event in events_at_venue:
            await record_event_change(
                event,
                venue=venue,
                ticket_types=await events.ticket_types(event.id),
                outbox=outbox,
                now=now,
            )
    return venue
