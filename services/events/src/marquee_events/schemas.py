"""Request and response bodies of the events API (separate from the tables).

Request models check types and refuse unknown fields; the domain checks meaning and
names the bad part in its own words. List-length bounds here only stop absurd payloads
before they are parsed into millions of objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from marquee_events.domain import (
    EventCategory,
    EventStatus,
    GeneralAdmissionArea,
    Row,
    Seat,
    SeatingMap,
    Section,
    TicketTypeSpec,
    VenueDetails,
    seating_map_from_document,
)
from marquee_events.messages import EventAggregate, event_changed_message
from marquee_events.models import Review, TicketType, Venue
from marquee_events.repository import ReviewSummary


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("can't be null; leave the field out to keep its value")
    return value


def _set_fields(model: BaseModel, exclude: Sequence[str] = ()) -> dict[str, Any]:
    return {
        name: getattr(model, name)
        for name in model.model_fields_set
        if name not in exclude and name != "expected_version"
    }


# ---- seating maps -------------------------------------------------------------------------


class SeatBody(_Request):
    id: str = Field(max_length=200, examples=["A-12"])
    price_category: str | None = Field(
        default=None, max_length=200, description="Null: the row's price_category"
    )


class RowBody(_Request):
    label: str = Field(max_length=200, examples=["A"])
    price_category: str | None = Field(
        default=None, max_length=200, description="Default for its seats that name none"
    )
    seats: list[SeatBody] = Field(max_length=5_000)


class SectionBody(_Request):
    name: str = Field(max_length=500, examples=["Stalls"])
    rows: list[RowBody] = Field(max_length=5_000)


class GeneralAdmissionAreaBody(_Request):
    name: str = Field(max_length=500, examples=["Standing"])
    capacity: int


class SeatingMapBody(_Request):
    sections: list[SectionBody] = Field(default_factory=list, max_length=1_000)
    general_admission: list[GeneralAdmissionAreaBody] = Field(
        default_factory=list, max_length=1_000
    )

    def to_domain(self) -> SeatingMap:
        return SeatingMap(
            sections=tuple(
                Section(
                    name=section.name,
                    rows=tuple(
                        Row(
                            label=row.label,
                            price_category=row.price_category,
                            seats=tuple(
                                Seat(id=seat.id, price_category=seat.price_category)
                                for seat in row.seats
                            ),
                        )
                        for row in section.rows
                    ),
                )
                for section in self.sections
            ),
            general_admission=tuple(
                GeneralAdmissionArea(name=area.name, capacity=area.capacity)
                for area in self.general_admission
            ),
        )

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> SeatingMapBody:
        seating = seating_map_from_document(document)
        return cls(
            sections=[
                SectionBody(
                    name=section.name,
                    rows=[
                        RowBody(
                            label=row.label,
                            price_category=row.price_category,
                            seats=[
                                SeatBody(id=seat.id, price_category=seat.price_category)
                                for seat in row.seats
                            ],
                        )
                        for row in section.rows
                    ],
                )
                for section in seating.sections
            ],
            general_admission=[
                GeneralAdmissionAreaBody(name=area.name, capacity=area.capacity)
                for area in seating.general_admission
            ],
        )


# ---- venues -------------------------------------------------------------------------------


class Location(BaseModel):
    latitude: float = Field(description="WGS 84 degrees, -90 to 90", examples=[48.8566])
    longitude: float = Field(description="WGS 84 degrees, -180 to 180", examples=[2.3522])


class VenueCreate(_Request):
    name: str = Field(max_length=1_000, examples=["Olympia"])
    address: str = Field(max_length=1_000, examples=["28 Boulevard des Capucines"])
    city: str = Field(max_length=1_000, examples=["Paris"])
    country: str = Field(max_length=10, description="ISO 3166-1 alpha-2", examples=["FR"])
    location: Location
    time_zone: str = Field(max_length=200, description="IANA name", examples=["Europe/Paris"])
    capacity: int = Field(description="Must equal the seats plus general-admission places")
    seating_map: SeatingMapBody

    def details(self) -> VenueDetails:
        return VenueDetails(
            name=self.name,
            address=self.address,
            city=self.city,
            country=self.country,
            latitude=self.location.latitude,
            longitude=self.location.longitude,
            time_zone=self.time_zone,
            capacity=self.capacity,
        )


class VenueUpdate(_Request):
    """Only the fields sent change. A new capacity needs a seating map that matches it."""

    name: str | None = Field(default=None, max_length=1_000)
    address: str | None = Field(default=None, max_length=1_000)
    city: str | None = Field(default=None, max_length=1_000)
    country: str | None = Field(default=None, max_length=10)
    location: Location | None = Field(default=None)
    time_zone: str | None = Field(default=None, max_length=200)
    capacity: int | None = Field(default=None)
    seating_map: SeatingMapBody | None = Field(default=None)
    expected_version: int | None = Field(
        default=None, description="Refuse (409) unless the venue is still at this version"
    )

    _not_null = field_validator(
        "name",
        "address",
        "city",
        "country",
        "location",
        "time_zone",
        "capacity",
        "seating_map",
        mode="before",
    )(_refuse_null)

    def changes(self) -> dict[str, Any]:
        changes = _set_fields(self, exclude=("location", "seating_map"))
        if self.location is not None:
            changes["latitude"] = self.location.latitude
            changes["longitude"] = self.location.longitude
        if self.seating_map is not None:
            changes["seating_map"] = self.seating_map.to_domain()
        return changes


class GeneralAdmissionRead(BaseModel):
    name: str
    capacity: int


class VenueSummaryRead(BaseModel):
    id: uuid.UUID
    owner_id: str
    name: str
    address: str
    city: str
    country: str
    location: Location
    time_zone: str
    capacity: int
    seated_seats: int
    general_admission: list[GeneralAdmissionRead]
    price_categories: list[str]
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, venue: Venue) -> VenueSummaryRead:
        return cls(**_venue_fields(venue))


class VenueRead(VenueSummaryRead):
    seating_map: SeatingMapBody

    @classmethod
    def of(cls, venue: Venue) -> VenueRead:
        return cls(
            **_venue_fields(venue), seating_map=SeatingMapBody.from_document(venue.seating_map)
        )


def _venue_fields(venue: Venue) -> dict[str, Any]:
    return {
        "id": venue.id,
        "owner_id": venue.owner_id,
        "name": venue.name,
        "address": venue.address,
        "city": venue.city,
        "country": venue.country,
        "location": Location(latitude=venue.latitude, longitude=venue.longitude),
        "time_zone": venue.time_zone,
        "capacity": venue.capacity,
        "seated_seats": venue.seated_seats,
        "general_admission": [GeneralAdmissionRead(**area) for area in venue.general_admission],
        "price_categories": list(venue.price_categories),
        "version": venue.version,
        "created_at": venue.created_at,
        "updated_at": venue.updated_at,
    }


# ---- ticket types -------------------------------------------------------------------------


class TicketTypeCreate(_Request):
    """Either ``price_category`` (seats of that category) or ``general_admission_area``
    with a ``quantity`` of places."""

    name: str = Field(max_length=1_000, examples=["Front stalls"])
    price_minor: int = Field(description="In minor units (cents)", examples=[4500])
    currency: str = Field(max_length=10, description="ISO 4217", examples=["EUR"])
    price_category: str | None = Field(default=None, max_length=200)
    general_admission_area: str | None = Field(default=None, max_length=500)
    quantity: int | None = None
    sale_starts_at: AwareDatetime | None = Field(
        default=None, description="Null: when the event's sale opens"
    )
    sale_ends_at: AwareDatetime | None = Field(
        default=None, description="Null: when the event's sale closes"
    )
    min_per_order: int = 1
    max_per_order: int = 10

    def to_spec(self) -> TicketTypeSpec:
        return TicketTypeSpec(**self.model_dump())


class TicketTypeUpdate(_Request):
    name: str | None = Field(default=None, max_length=1_000)
    price_minor: int | None = Field(default=None)
    currency: str | None = Field(default=None, max_length=10)
    price_category: str | None = Field(default=None, max_length=200)
    general_admission_area: str | None = Field(default=None, max_length=500)
    quantity: int | None = None
    sale_starts_at: AwareDatetime | None = None
    sale_ends_at: AwareDatetime | None = None
    min_per_order: int | None = Field(default=None)
    max_per_order: int | None = Field(default=None)

    _not_null = field_validator(
        "name", "price_minor", "currency", "min_per_order", "max_per_order", mode="before"
    )(_refuse_null)

    def changes(self) -> dict[str, Any]:
        return _set_fields(self)


class TicketTypeRead(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    name: str
    kind: str = Field(description="'seated' or 'general_admission'")
    price_minor: int
    currency: str
    price_category: str | None
    general_admission_area: str | None
    quantity: int | None
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    min_per_order: int
    max_per_order: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, ticket_type: TicketType) -> TicketTypeRead:
        return cls(
            id=ticket_type.id,
            event_id=ticket_type.event_id,
            name=ticket_type.name,
            kind="seated" if ticket_type.general_admission_area is None else "general_admission",
            price_minor=ticket_type.price_minor,
            currency=ticket_type.currency,
            price_category=ticket_type.price_category,
            general_admission_area=ticket_type.general_admission_area,
            quantity=ticket_type.quantity,
            sale_starts_at=ticket_type.sale_starts_at,
            sale_ends_at=ticket_type.sale_ends_at,
            min_per_order=ticket_type.min_per_order,
            max_per_order=ticket_type.max_per_order,
            created_at=ticket_type.created_at,
            updated_at=ticket_type.updated_at,
        )


# ---- events -------------------------------------------------------------------------------


class EventCreate(_Request):
    venue_id: uuid.UUID = Field(description="One of your venues")
    name: str = Field(max_length=1_000, examples=["Rock night"])
    description: str = Field(default="", max_length=100_000)
    category: EventCategory = EventCategory.OTHER
    tags: list[str] = Field(default_factory=list, max_length=100)
    image_urls: list[str] = Field(default_factory=list, max_length=100)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    sale_starts_at: AwareDatetime | None = Field(default=None, description="Needed to publish")
    sale_ends_at: AwareDatetime | None = Field(default=None, description="Needed to publish")
    high_demand: bool = Field(default=False, description="On-sale goes through the waiting room")
    max_tickets_per_order: int = 10


class EventUpdate(_Request):
    """Only the fields sent change (``null`` clears a sale time)."""

    venue_id: uuid.UUID | None = Field(default=None, description="Only while the event is a draft")
    name: str | None = Field(default=None, max_length=1_000)
    description: str | None = Field(default=None, max_length=100_000)
    category: EventCategory | None = Field(default=None)
    tags: list[str] | None = Field(default=None, max_length=100)
    image_urls: list[str] | None = Field(default=None, max_length=100)
    starts_at: AwareDatetime | None = Field(default=None)
    ends_at: AwareDatetime | None = Field(default=None)
    sale_starts_at: AwareDatetime | None = None
    sale_ends_at: AwareDatetime | None = None
    high_demand: bool | None = Field(default=None)
    max_tickets_per_order: int | None = Field(default=None)
    expected_version: int | None = Field(
        default=None, description="Refuse (409) unless the event is still at this version"
    )

    _not_null = field_validator(
        "venue_id",
        "name",
        "description",
        "category",
        "tags",
        "image_urls",
        "starts_at",
        "ends_at",
        "high_demand",
        "max_tickets_per_order",
        mode="before",
    )(_refuse_null)

    def changes(self) -> dict[str, Any]:
        changes = _set_fields(self)
        for name in ("tags", "image_urls"):
            if name in changes:
                changes[name] = tuple(changes[name])
        if "category" in changes:
            changes["category"] = changes["category"].value
        return changes


class StatusChange(_Request):
    status: EventStatus
    reason: str | None = Field(
        default=None, max_length=10_000, description="Why, when cancelling (shown to buyers)"
    )


class Cancellation(_Request):
    reason: str | None = Field(default=None, max_length=10_000)


class EventVenueRead(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    city: str
    country: str
    location: Location
    time_zone: str
    capacity: int


class PriceRangeRead(BaseModel):
    min_minor: int
    max_minor: int
    currency: str


class ReviewSummaryRead(BaseModel):
    count: int
    average_rating: float | None


class EventSummaryRead(BaseModel):
    id: uuid.UUID
    organizer_id: str
    status: EventStatus
    version: int
    name: str
    category: str
    tags: list[str]
    image_urls: list[str]
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    venue: EventVenueRead
    high_demand: bool
    created_at: datetime
    updated_at: datetime


class EventRead(EventSummaryRead):
    description: str
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    max_tickets_per_order: int
    price_range: PriceRangeRead | None
    ticket_types: list[TicketTypeRead]
    cancellation_reason: str | None
    published_at: datetime | None
    reviews: ReviewSummaryRead | None = None
    allowed_statuses: list[EventStatus] | None = Field(
        default=None,
        description="What its status may change to now (only shown to who manages it)",
    )


def _event_fields(aggregate: EventAggregate) -> dict[str, Any]:
    event, venue = aggregate.event, aggregate.venue
    return {
        "id": event.id,
        "organizer_id": event.organizer_id,
        "status": EventStatus(event.status),
        "version": event.version,
        "name": event.name,
        "category": event.category,
        "tags": list(event.tags),
        "image_urls": list(event.image_urls),
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "time_zone": venue.time_zone,
        "venue": EventVenueRead(
            id=venue.id,
            name=venue.name,
            address=venue.address,
            city=venue.city,
            country=venue.country,
            location=Location(latitude=venue.latitude, longitude=venue.longitude),
            time_zone=venue.time_zone,
            capacity=venue.capacity,
        ),
        "high_demand": event.high_demand,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
    }


def event_summary(aggregate: EventAggregate) -> EventSummaryRead:
    return EventSummaryRead(**_event_fields(aggregate))


def event_read(
    aggregate: EventAggregate,
    *,
    reviews: ReviewSummary | None = None,
    allowed_statuses: Sequence[EventStatus] | None = None,
) -> EventRead:
    event = aggregate.event
    snapshot = event_changed_message(event, aggregate.venue, aggregate.ticket_types)
    return EventRead(
        **_event_fields(aggregate),
        description=event.description,
        sale_starts_at=event.sale_starts_at,
        sale_ends_at=event.sale_ends_at,
        max_tickets_per_order=event.max_tickets_per_order,
        price_range=(
            PriceRangeRead(**snapshot.price_range.model_dump()) if snapshot.price_range else None
        ),
        ticket_types=[TicketTypeRead.of(ticket_type) for ticket_type in aggregate.ticket_types],
        cancellation_reason=event.cancellation_reason,
        published_at=event.published_at,
        reviews=(
            ReviewSummaryRead(count=reviews.count, average_rating=reviews.average_rating)
            if reviews is not None
            else None
        ),
        allowed_statuses=list(allowed_statuses) if allowed_statuses is not None else None,
    )


# ---- reviews ------------------------------------------------------------------------------


class ReviewCreate(_Request):
    rating: int = Field(description="1 to 5", examples=[4])
    comment: str = Field(default="", max_length=100_000)


class ReplyCreate(_Request):
    reply: str = Field(max_length=100_000)


class ReplyRead(BaseModel):
    text: str
    replied_by: str
    replied_at: datetime


class ReviewRead(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    author_id: str
    rating: int
    comment: str
    created_at: datetime
    reply: ReplyRead | None

    @classmethod
    def of(cls, review: Review) -> ReviewRead:
        reply = None
        if review.reply is not None:
            assert review.replied_by is not None
            assert review.replied_at is not None
            reply = ReplyRead(
                text=review.reply, replied_by=review.replied_by, replied_at=review.replied_at
            )
        return cls(
            id=review.id,
            event_id=review.event_id,
            author_id=review.author_id,
            rating=review.rating,
            comment=review.comment,
            created_at=review.created_at,
            reply=reply,
        )
