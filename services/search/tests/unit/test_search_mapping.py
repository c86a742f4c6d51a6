"""The contract → document mapping and the pure helpers (no infrastructure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from marquee_contracts.catalog import EventChanged, EventVenue, PriceRange
from marquee_search.changes import entry_from_message_data
from marquee_search.domain import (
    Availability,
    EventDocument,
    GeoPoint,
    Tombstone,
    bounding_box,
    haversine_km,
    highlight_fuzzy,
)

NOW = datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=UTC)


def contract_snapshot(**overrides: object) -> EventChanged:
    fields: dict[str, object] = {
        "event_id": uuid.UUID(int=7),
        "version": 4,
        "deleted": False,
        "public": True,
        "status": "on_sale",
        "organizer_id": "org-1",
        "name": "Fado Night",
        "description": "Songs of longing.",
        "category": "Concert",
        "tags": ["fado", " acoustic ", "fado"],
        "image_urls": ["https://img.example/a.jpg", "https://img.example/b.jpg"],
        "starts_at": NOW + timedelta(days=3),
        "ends_at": NOW + timedelta(days=3, hours=2),
        "time_zone": "Europe/Lisbon",
        "venue": EventVenue(
            id=uuid.UUID(int=9),
            name="Casa",
            address="Rua 1",
            city="Lisbon",
            country="PT",
            latitude=38.7,
            longitude=-9.1,
            time_zone="Europe/Lisbon",
        ),
        "price_range": PriceRange(min_minor=1500, max_minor=3000, currency="EUR"),
        "ticket_types": [],
        "sale_starts_at": None,
        "sale_ends_at": None,
        "high_demand": True,
        "max_tickets_per_order": 6,
        "created_at": NOW,
        "updated_at": NOW,
        "published_at": NOW,
    }
    fields.update(overrides)
    return EventChanged.model_validate(fields)


def test_a_public_snapshot_becomes_a_document() -> None:
    document = entry_from_message_data(contract_snapshot())
    assert isinstance(document, EventDocument)
    assert document.event_id == str(uuid.UUID(int=7))
    assert document.category == "concert"
    assert document.tags == ("fado", "acoustic")
    assert document.image_url == "https://img.example/a.jpg"
    assert (document.city, document.lat, document.lon) == ("Lisbon", 38.7, -9.1)
    assert (document.price_min, document.price_max, document.currency) == (1500, 3000, "EUR")
    assert document.starts_at.microsecond == 123000  # milliseconds: every engine agrees
    assert document.availability is Availability.ON_SALE
    assert document.timezone == "Europe/Lisbon"


def test_hidden_snapshots_become_tombstones() -> None:
    cancelled = entry_from_message_data(contract_snapshot(status="cancelled", version=9))
    assert cancelled == Tombstone(event_id=str(uuid.UUID(int=7)), version=9, status="cancelled")
    deleted = entry_from_message_data(contract_snapshot(deleted=True, status="draft"))
    assert isinstance(deleted, Tombstone)
    assert deleted.status == "deleted"
    private = entry_from_message_data(contract_snapshot(status="draft", public=False))
    assert isinstance(private, Tombstone)


def test_an_unknown_public_status_is_listed_but_not_on_sale() -> None:
    document = entry_from_message_data(contract_snapshot(status="postponed"))
    assert isinstance(document, EventDocument)
    assert document.availability is Availability.ANNOUNCED


def test_no_price_range_yet_means_zero() -> None:
    document = entry_from_message_data(contract_snapshot(price_range=None))
    assert isinstance(document, EventDocument)
    assert (document.price_min, document.price_max) == (0, 0)


def test_geo_helpers() -> None:
    paris, london = GeoPoint(48.8566, 2.3522), GeoPoint(51.5074, -0.1278)
    assert 340 < haversine_km(paris, london) < 345
    box = bounding_box(paris, 50)
    assert box.lat_min < 48.5 < box.lat_max
    assert box.lon_min < 2.0 < box.lon_max
    polar = bounding_box(GeoPoint(89.9, 0), 100)
    assert (polar.lon_min, polar.lon_max) == (-180.0, 180.0)


def test_fuzzy_highlight() -> None:
    assert (
        highlight_fuzzy("Midnight Jazz Night", "jaz nigt")
        == "Midnight <em>Jazz</em> <em>Night</em>"
    )
    assert highlight_fuzzy("Rock Anthems", "jazz") is None
