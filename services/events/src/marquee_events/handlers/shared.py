"""What several handler modules use: copying values onto rows, and the snapshot that follows
every change to an event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from marquee_contracts.catalog import EVENT_CHANGED
from marquee_events.messages import event_changed_message
from marquee_events.models import Event, TicketType, Venue
from marquee_platform.outbox import Outbox


def apply(target: Any, values: Mapping[str, Any]) -> None:
    """Set ``values`` on a row (tuples become the lists its array columns hold)."""
    for name, value in values.items():
        setattr(target, name, list(value) if isinstance(value, tuple) else value)


def changed_fields(old: Any, new: Any, names: Iterable[str]) -> set[str]:
    return {name for name in names if getattr(old, name) != getattr(new, name)}


async def record_event_change(
    event: Event,
    *,
    venue: Venue,
    ticket_types: Sequence[TicketType],
    outbox: Outbox,
    now: datetime,
) -> None:
    """Bump the event's version and queue its new snapshot: after *every* change."""
    event.version += 1
    event.updated_at = now
    await outbox.add(
        EVENT_CHANGED.name, event_changed_message(event, venue, ticket_types), key=event.id
    )
