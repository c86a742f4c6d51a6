"""Response models of the search API (separate from the engines' domain objects)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from marquee_search.domain import FacetBucket, Facets, SearchHit, Suggestion


class VenueRead(BaseModel):
    id: str | None
    name: str | None
    city: str | None
    country: str | None
    lat: float | None
    lon: float | None


class PriceRead(BaseModel):
    min: int = Field(description="Cheapest ticket, minor units")
    max: int = Field(description="Dearest ticket, minor units")
    currency: str = Field(description="ISO 4217")


class EventHitRead(BaseModel):
    event_id: str
    name: str
    description: str
    category: str
    tags: list[str]
    image_url: str | None
    starts_at: datetime
    ends_at: datetime | None
    timezone: str = Field(description="The event's IANA time zone, for display")
    venue: VenueRead | None
    price: PriceRead
    status: str
    availability: str = Field(description="announced | on_sale | sold_out | ended")
    high_demand: bool
    popularity: float
    score: float | None = Field(description="Relevance (free-text searches only)")
    distance_km: float | None = Field(description="From `near` (when given)")
    highlights: dict[str, str] = Field(
        description="Matched fields with the matching words in <em>…</em> (free text only)"
    )

    @classmethod
    def from_hit(cls, hit: SearchHit) -> EventHitRead:
        document = hit.document
        venue = (
            VenueRead(
                id=document.venue_id,
                name=document.venue_name,
                city=document.city,
                country=document.country,
                lat=document.lat,
                lon=document.lon,
            )
            if document.venue_id or document.city
            else None
        )
        return cls(
            event_id=document.event_id,
            name=document.name,
            description=document.description,
            category=document.category,
            tags=list(document.tags),
            image_url=document.image_url,
            starts_at=document.starts_at,
            ends_at=document.ends_at,
            timezone=document.timezone,
            venue=venue,
            price=PriceRead(
                min=document.price_min, max=document.price_max, currency=document.currency
            ),
            status=document.status,
            availability=document.availability.value,
            high_demand=document.high_demand,
            popularity=document.popularity,
            score=hit.score,
            distance_km=round(hit.distance_km, 3) if hit.distance_km is not None else None,
            highlights=hit.highlights,
        )


class FacetBucketRead(BaseModel):
    key: str
    count: int


class FacetsRead(BaseModel):
    category: list[FacetBucketRead] = Field(description="Top 10 categories")
    city: list[FacetBucketRead] = Field(description="Top 10 cities")
    date: list[FacetBucketRead] = Field(
        description="past, this_week (next 7 days), this_month (7 to 30 days), later"
    )
    price: list[FacetBucketRead] = Field(
        description="By lowest price in minor units: free, under_20 (1 to 1999), 20_to_50, "
        "50_to_100, 100_and_more"
    )

    @classmethod
    def from_facets(cls, facets: Facets) -> FacetsRead:
        def convert(buckets: list[FacetBucket]) -> list[FacetBucketRead]:
            return [FacetBucketRead(key=bucket.key, count=bucket.count) for bucket in buckets]

        return cls(
            category=convert(facets.category),
            city=convert(facets.city),
            date=convert(facets.date),
            price=convert(facets.price),
        )


class SearchPage(BaseModel):
    items: list[EventHitRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same other parameters) for the next page; "
        "null on the last page."
    )
    total: int | None = Field(description="How many events match (with `facets=true` only)")
    facets: FacetsRead | None = Field(description="With `facets=true` only")


class SuggestionRead(BaseModel):
    text: str
    event_id: str
    city: str | None
    starts_at: datetime

    @classmethod
    def from_suggestion(cls, suggestion: Suggestion) -> SuggestionRead:
        return cls(
            text=suggestion.text,
            event_id=suggestion.event_id,
            city=suggestion.city,
            starts_at=suggestion.starts_at,
        )


class Suggestions(BaseModel):
    items: list[SuggestionRead]
