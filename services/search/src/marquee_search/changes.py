"""From the events service's change stream to search's index entries: the one mapping.

``events.event-changed.v1`` (keyed by event id) carries a full, denormalized snapshot of an
event after every change, with a ``version`` that increases on each. Its schema is
``marquee_contracts.catalog.EventChanged``; :class:`EventChange` is search's reading of it
(the fields it indexes), validated from the message data, so a change to the contract is
adapted here and nowhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from marquee_contracts import REGISTRY, Topic, TopicRegistry
from marquee_search.domain import (
    LISTED_STATUSES,
    EventDocument,
    IndexEntry,
    Tombstone,
    millisecond_precision,
    normalize_key,
)

EVENT_CHANGED = "events.event-changed.v1"


class VenueSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    city: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class PriceRange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    min_minor: int = Field(ge=0, description="Cheapest ticket, minor units")
    max_minor: int = Field(ge=0, description="Dearest ticket, minor units")
    currency: str


class EventChange(BaseModel):
    """Search's view of ``marquee_contracts.catalog.EventChanged`` (the fields it indexes;
    the rest, such as ticket types, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    event_id: str
    version: int = Field(ge=0)
    status: str
    deleted: bool = False
    public: bool | None = None
    name: str = ""
    description: str = ""
    category: str = ""
    tags: list[str] = Field(default_factory=list)
    image_urls: list[str] = Field(default_factory=list)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    time_zone: str = "UTC"
    venue: VenueSnapshot | None = None
    price_range: PriceRange | None = None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    high_demand: bool = False
    organizer_id: str | None = None
    updated_at: datetime | None = None


HIDDEN_STATUSES = frozenset({"draft", "cancelled"})
"""Never listed, even though a cancelled event is still public on its own page."""


def is_listed(change: EventChange) -> bool:
    if change.deleted or change.status in HIDDEN_STATUSES or change.starts_at is None:
        return False
    # The contract's ``public`` flag is authoritative (a status this code doesn't know yet
    # is listed if the events service says it is public); older snapshots lack it.
    return change.public if change.public is not None else change.status in LISTED_STATUSES


def _time(moment: datetime | None) -> datetime | None:
    return millisecond_precision(moment) if moment else None


def to_index_entry(change: EventChange) -> IndexEntry:
    """The document to keep for this snapshot, or a tombstone if it must not be listed."""
    if not is_listed(change):
        status = "deleted" if change.deleted else change.status
        return Tombstone(event_id=change.event_id, version=change.version, status=status)
    assert change.starts_at is not None
    venue = change.venue
    price = change.price_range
    return EventDocument(
        event_id=change.event_id,
        version=change.version,
        status=change.status,
        name=change.name,
        description=change.description,
        category=normalize_key(change.category),
        tags=tuple(dict.fromkeys(tag.strip() for tag in change.tags if tag.strip())),
        image_url=change.image_urls[0] if change.image_urls else None,
        starts_at=millisecond_precision(change.starts_at),
        ends_at=_time(change.ends_at),
        timezone=change.time_zone,
        venue_id=venue.id if venue else None,
        venue_name=venue.name if venue else None,
        city=venue.city if venue else None,
        country=venue.country if venue else None,
        lat=venue.latitude if venue else None,
        lon=venue.longitude if venue else None,
        price_min=price.min_minor if price else 0,
        price_max=price.max_minor if price else 0,
        currency=price.currency if price else "",
        sale_starts_at=_time(change.sale_starts_at),
        sale_ends_at=_time(change.sale_ends_at),
        high_demand=change.high_demand,
        organizer_id=change.organizer_id,
        updated_at=_time(change.updated_at),
    )


def entry_from_message_data(data: BaseModel | dict[str, Any]) -> IndexEntry:
    """Map a parsed contract payload (whatever its class) or raw message data."""
    raw = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return to_index_entry(EventChange.model_validate(raw))


def change_registry() -> TopicRegistry:
    """The registry the indexer parses messages with: the contracts' one once
    ``events.event-changed.v1`` is registered there, else one holding search's reading."""
    if EVENT_CHANGED in REGISTRY:
        return REGISTRY
    registry = TopicRegistry()
    registry.register(
        Topic(
            EVENT_CHANGED,
            EventChange,
            owner="events",
            description="A full snapshot of an event after each change (search's reading).",
        )
    )
    return registry
