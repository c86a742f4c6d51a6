"""Turning query-string parameters into a :class:`SearchQuery`, or a 422 naming each bad one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marquee_platform.errors import InvalidInput
from marquee_platform.pagination import decode_cursor, encode_cursor
from marquee_search.domain import (
    GeoPoint,
    SearchQuery,
    Sort,
    normalize_key,
    sort_key_types,
    words,
)

MAX_RADIUS_KM = 20_000.0


@dataclass
class _Problems:
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, parameter: str, message: str, kind: str = "value_error") -> None:
        self.errors.append(
            {"location": f"query {parameter}", "field": parameter, "message": message, "kind": kind}
        )

    def raise_if_any(self) -> None:
        if self.errors:
            summary = "; ".join(f"{error['field']}: {error['message']}" for error in self.errors)
            raise InvalidInput(f"Fix these parameters and retry: {summary}", errors=self.errors)


def parse_near(value: str, problems: _Problems) -> GeoPoint | None:
    parts = value.split(",")
    if len(parts) != 2:
        problems.add("near", "must be 'lat,lon', e.g. near=48.8566,2.3522")
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        problems.add("near", "latitude and longitude must be numbers, e.g. near=48.8566,2.3522")
        return None
    ok = True
    if not -90 <= lat <= 90:
        problems.add("near", f"latitude {lat} is out of range (-90 to 90)")
        ok = False
    if not -180 <= lon <= 180:
        problems.add("near", f"longitude {lon} is out of range (-180 to 180)")
        ok = False
    return GeoPoint(lat, lon) if ok else None


def parse_moment(parameter: str, value: str, problems: _Problems, *, end: bool) -> datetime | None:
    """A date (``2026-12-01``: the whole day, UTC) or a date-time with an offset or Z."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time(0), tzinfo=UTC)
            # date_to is inclusive of its day: the range ends at the next midnight.
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.add(parameter, "must be a date (2026-12-01) or a date-time (2026-12-01T20:00Z)")
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def decode_search_cursor(cursor: str, sort: Sort, problems: _Problems) -> tuple[Any, ...] | None:
    values = decode_cursor(cursor)  # InvalidInput naming `cursor` if it is not ours at all
    expected = sort_key_types(sort)
    if (
        len(values) != len(expected) + 1
        or values[0] != sort.value
        or not all(
            isinstance(value, kind) or (kind is float and isinstance(value, int))
            for value, kind in zip(values[1:], expected, strict=True)
        )
    ):
        problems.add(
            "cursor",
            "was made for another sort or search; drop it to start from the first page",
            "invalid-cursor",
        )
        return None
    return tuple(
        float(v) if kind is float else v for v, kind in zip(values[1:], expected, strict=True)
    )


def encode_search_cursor(sort: Sort, sort_key: tuple[Any, ...]) -> str:
    return encode_cursor([sort.value, *sort_key])


def build_query(
    *,
    now: datetime,
    q: str | None,
    category: str | None,
    city: str | None,
    near: str | None,
    radius_km: float | None,
    date_from: str | None,
    date_to: str | None,
    price_min: int | None,
    price_max: int | None,
    only_available: bool,
    sort: Sort | None,
    facets: bool,
    limit: int,
    cursor: str | None,
) -> SearchQuery:
    problems = _Problems()
    # Nothing to match on (q=!, q=🎸): searched like no q at all, soonest first.
    text = q.strip() if q and words(q) else None
    point = parse_near(near, problems) if near is not None else None
    if near is not None and radius_km is None:
        problems.add("radius_km", "is required with near (how far from it, in km)", "missing")
    if radius_km is not None:
        if near is None:
            problems.add("near", "is required with radius_km (lat,lon of the centre)", "missing")
        if not 0 < radius_km <= MAX_RADIUS_KM:
            problems.add("radius_km", f"must be more than 0 and at most {MAX_RADIUS_KM:.0f}")
    starts_from = parse_moment("date_from", date_from, problems, end=False) if date_from else None
    starts_before = parse_moment("date_to", date_to, problems, end=True) if date_to else None
    if starts_from and starts_before and starts_before <= starts_from:
        problems.add("date_to", "must not be before date_from")
    if price_min is not None and price_min < 0:
        problems.add("price_min", "must be 0 or more (minor units)")
    if price_max is not None and price_max < 0:
        problems.add("price_max", "must be 0 or more (minor units)")
    if price_min is not None and price_max is not None and price_max < price_min:
        problems.add("price_max", "must not be less than price_min")
    chosen = sort or (Sort.RELEVANCE if text else Sort.DATE)
    if chosen is Sort.DISTANCE and near is None:
        problems.add("sort", "sort=distance needs near=lat,lon (and radius_km)")
    if chosen is Sort.RELEVANCE and not text:
        chosen = Sort.DATE  # nothing to be relevant to: soonest first
    after = decode_search_cursor(cursor, chosen, problems) if cursor else None
    problems.raise_if_any()
    return SearchQuery(
        now=now,
        text=text,
        category=normalize_key(category) if category and category.strip() else None,
        city=normalize_key(city) if city and city.strip() else None,
        near=point,
        radius_km=radius_km,
        starts_from=starts_from,
        starts_before=starts_before,
        price_min=price_min,
        price_max=price_max,
        only_available=only_available,
        sort=chosen,
        with_facets=facets,
        limit=limit,
        after=after,
    )
