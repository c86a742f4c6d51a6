"""The search domain: indexed documents, tombstones, queries and results. Pure Python.

One document per event, denormalized from the events service's change stream. Every
document and tombstone carries the event's ``version``; an engine keeps whichever entry
has the highest version, so a repeated or late message never overwrites newer data and a
hidden (draft, cancelled, deleted) event cannot come back through a stale message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class Availability(StrEnum):
    """What a fan can do with an event now, derived from the event's status."""

    ANNOUNCED = "announced"  # published, tickets not on sale yet
    ON_SALE = "on_sale"
    SOLD_OUT = "sold_out"
    ENDED = "ended"  # completed


AVAILABILITY_BY_STATUS: dict[str, Availability] = {
    "published": Availability.ANNOUNCED,
    "on_sale": Availability.ON_SALE,
    "sold_out": Availability.SOLD_OUT,
    "completed": Availability.ENDED,
}
"""Statuses that are listed in search results; any other status (draft, cancelled) or a
deleted event is kept only as a tombstone."""

LISTED_STATUSES = frozenset(AVAILABILITY_BY_STATUS)


class Sort(StrEnum):
    RELEVANCE = "relevance"
    DATE = "date"
    PRICE = "price"
    DISTANCE = "distance"
    POPULARITY = "popularity"


def millisecond_precision(moment: datetime) -> datetime:
    """UTC, truncated to milliseconds: what every engine can store and compare exactly."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class EventDocument:
    """A listed event as search sees it (one per event, the highest version wins)."""

    event_id: str
    version: int
    status: str
    name: str
    description: str
    category: str
    tags: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime | None
    timezone: str
    venue_id: str | None
    venue_name: str | None
    city: str | None
    country: str | None
    lat: float | None
    lon: float | None
    price_min: int
    price_max: int
    currency: str
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    high_demand: bool
    organizer_id: str | None
    image_url: str | None = None
    updated_at: datetime | None = None
    popularity: float = 0.0
    """Placeholder for a popularity signal (sales velocity, views); 0 until one feeds it."""

    @property
    def availability(self) -> Availability:
        # A status newer than this code (listed because the event is public): not on sale.
        return AVAILABILITY_BY_STATUS.get(self.status, Availability.ANNOUNCED)

    @property
    def city_key(self) -> str | None:
        return normalize_key(self.city) if self.city else None

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An event that must not be listed (draft, cancelled or deleted) at ``version``."""

    event_id: str
    version: int
    status: str


IndexEntry = EventDocument | Tombstone


def normalize_key(value: str) -> str:
    """How category and city values are compared: case- and surrounding-space-insensitive."""
    return " ".join(value.split()).casefold()


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float


EARTH_RADIUS_KM = 6371.0088


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    d_lat = lat2 - lat1
    d_lon = math.radians(b.lon - a.lon)
    h = math.sin(d_lat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(d_lon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class BoundingBox:
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


def bounding_box(center: GeoPoint, radius_km: float) -> BoundingBox:
    """A box containing the circle, for an index to narrow down before the exact distance.

    Near a pole or across the antimeridian the box spans every longitude.
    """
    d_lat = math.degrees(radius_km / EARTH_RADIUS_KM)
    lat_min, lat_max = center.lat - d_lat, center.lat + d_lat
    cos_lat = math.cos(math.radians(center.lat))
    if lat_min <= -90 or lat_max >= 90 or cos_lat < 1e-6:
        return BoundingBox(max(lat_min, -90.0), min(lat_max, 90.0), -180.0, 180.0)
    d_lon = math.degrees(radius_km / (EARTH_RADIUS_KM * cos_lat))
    lon_min, lon_max = center.lon - d_lon, center.lon + d_lon
    if lon_min < -180 or lon_max > 180:
        return BoundingBox(lat_min, lat_max, -180.0, 180.0)
    return BoundingBox(lat_min, lat_max, lon_min, lon_max)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A validated search request; engines translate it, they never re-validate it."""

    now: datetime
    text: str | None = None
    category: str | None = None
    city: str | None = None
    near: GeoPoint | None = None
    radius_km: float | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    price_min: int | None = None
    price_max: int | None = None
    only_available: bool = False
    sort: Sort = Sort.RELEVANCE
    with_facets: bool = False
    limit: int = 20
    after: tuple[Any, ...] | None = None
    """The previous page's last sort key (see :func:`sort_key_types`), without the sort name."""


def sort_key_types(sort: Sort) -> tuple[type, ...]:
    """The Python types of a sort key: the sort value(s) then the event id (a tiebreaker)."""
    return {
        Sort.RELEVANCE: (float, str),
        Sort.DATE: (datetime, str),
        Sort.PRICE: (int, str),
        Sort.DISTANCE: (float, str),
        Sort.POPULARITY: (float, str),
    }[sort]


@dataclass(frozen=True, slots=True)
class SearchHit:
    document: EventDocument
    sort_key: tuple[Any, ...]
    score: float | None = None
    distance_km: float | None = None
    highlights: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FacetBucket:
    key: str
    count: int


@dataclass(frozen=True, slots=True)
class Facets:
    category: list[FacetBucket]
    city: list[FacetBucket]
    date: list[FacetBucket]
    price: list[FacetBucket]


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[SearchHit]
    next_after: tuple[Any, ...] | None
    total: int | None = None
    facets: Facets | None = None


@dataclass(frozen=True, slots=True)
class Suggestion:
    text: str
    event_id: str
    city: str | None
    starts_at: datetime


TERMS_FACET_SIZE = 10


@dataclass(frozen=True, slots=True)
class Bucket:
    """A half-open range ``[start, end)``; None is unbounded."""

    key: str
    start: Any
    end: Any


def date_buckets(now: datetime) -> list[Bucket]:
    """Start-date facet buckets relative to the request time (rolling, time-zone free)."""
    return [
        Bucket("past", None, now),
        Bucket("this_week", now, now + timedelta(days=7)),
        Bucket("this_month", now + timedelta(days=7), now + timedelta(days=30)),
        Bucket("later", now + timedelta(days=30), None),
    ]


PRICE_BUCKETS: list[Bucket] = [
    Bucket("free", 0, 1),
    Bucket("under_20", 1, 2000),
    Bucket("20_to_50", 2000, 5000),
    Bucket("50_to_100", 5000, 10000),
    Bucket("100_and_more", 10000, None),
]
"""Lowest-price facet buckets in minor units (whatever the currency)."""


_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def _similar(a: str, b: str) -> bool:
    """Close enough to count as a typo: one edit per four characters (like fuzziness AUTO)."""
    a, b = a.casefold(), b.casefold()
    if a == b or (len(a) >= 3 and b.startswith(a)):
        return True
    allowed = 0 if len(a) < 3 else 1 if len(a) < 6 else 2
    if abs(len(a) - len(b)) > allowed:
        return False
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1] <= allowed


def highlight_fuzzy(text: str, query: str) -> str | None:
    """``text`` with the words that match a query word (allowing typos) wrapped in <em>.

    Used where an engine matched by similarity and its own highlighter cannot say where.
    """
    query_words = [word for word in words(query) if len(word) >= 2]
    if not query_words:
        return None
    found = False
    parts: list[str] = []
    position = 0
    for match in _WORD.finditer(text):
        parts.append(text[position : match.start()])
        word = match.group()
        if any(_similar(query_word, word) for query_word in query_words):
            parts.append(f"<em>{word}</em>")
            found = True
        else:
            parts.append(word)
        position = match.end()
    parts.append(text[position:])
    return "".join(parts) if found else None
