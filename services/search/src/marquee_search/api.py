"""The search API: anyone may call it (no token needed); it only shows listed events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from marquee_platform.errors import InvalidInput
from marquee_platform.http import router
from marquee_search.domain import Sort
from marquee_search.engines import SearchEngine
from marquee_search.params import build_query, encode_search_cursor
from marquee_search.schemas import EventHitRead, FacetsRead, SearchPage, SuggestionRead, Suggestions

search = router(prefix="/api/v1/search", tags=["search"])


def engine_of(request: Request) -> SearchEngine:
    engine: SearchEngine = request.app.state.search_engine
    return engine


Engine = Annotated[SearchEngine, Depends(engine_of)]

_PUBLIC = "Public: anyone may call it, with or without a token."


@search.get("/events", summary="Search events", description=_PUBLIC)
async def search_events(
    engine: Engine,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Free text; typos in names are tolerated"),
    ] = None,
    category: Annotated[str | None, Query(max_length=100, description="A category")] = None,
    city: Annotated[
        str | None, Query(max_length=100, description="A city (case-insensitive)")
    ] = None,
    near: Annotated[
        str | None, Query(description="lat,lon of a centre, e.g. 48.8566,2.3522; needs radius_km")
    ] = None,
    radius_km: Annotated[
        float | None, Query(description="Distance from `near` in km; needs near")
    ] = None,
    date_from: Annotated[
        str | None, Query(description="Starts on or after: 2026-12-01 or 2026-12-01T20:00Z")
    ] = None,
    date_to: Annotated[
        str | None,
        Query(description="Starts before the end of this day (or before this date-time)"),
    ] = None,
    price_min: Annotated[
        int | None, Query(description="Some ticket costs at least this (minor units)")
    ] = None,
    price_max: Annotated[
        int | None, Query(description="Some ticket costs at most this (minor units)")
    ] = None,
    only_available: Annotated[
        bool, Query(description="Only events whose tickets are on sale now")
    ] = False,
    sort: Annotated[
        Sort | None,
        Query(
            description="relevance (default with q), date (default without), price, "
            "distance (needs near), popularity"
        ),
    ] = None,
    facets: Annotated[
        bool, Query(description="Also return counts by category, city, date and price")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1 to 100)")] = 20,
    cursor: Annotated[
        str | None, Query(description="The previous page's next_cursor; omit for the first page")
    ] = None,
) -> SearchPage:
    """Full-text, filtered, faceted search over published events, one page at a time.

    **Public**: anyone may call it. Draft, cancelled and deleted events never appear.
    Bad parameters are a 422 problem whose `errors` name each parameter.
    """
    query = build_query(
        now=datetime.now(UTC),
        q=q,
        category=category,
        city=city,
        near=near,
        radius_km=radius_km,
        date_from=date_from,
        date_to=date_to,
        price_min=price_min,
        price_max=price_max,
        only_available=only_available,
        sort=sort,
        facets=facets,
        limit=limit,
        cursor=cursor,
    )
    result = await engine.search(query)
    return SearchPage(
        items=[EventHitRead.from_hit(hit) for hit in result.hits],
        next_cursor=encode_search_cursor(query.sort, result.next_after)
        if result.next_after is not None
        else None,
        total=result.total,
        facets=FacetsRead.from_facets(result.facets) if result.facets else None,
    )


@search.get("/suggest", summary="Suggest events as you type", description=_PUBLIC)
async def suggest(
    engine: Engine,
    q: Annotated[str, Query(max_length=100, description="What has been typed so far")],
    limit: Annotated[int, Query(ge=1, le=20, description="At most this many (1 to 20)")] = 8,
) -> Suggestions:
    """Event names matching what has been typed (the last word may be partial).

    **Public**: anyone may call it.
    """
    if not q.strip():
        raise InvalidInput(
            "q must contain at least one letter or digit.",
            errors=[
                {"location": "query q", "field": "q", "message": "is empty", "kind": "missing"}
            ],
        )
    found = await engine.suggest(q.strip(), limit=limit)
    return Suggestions(items=[SuggestionRead.from_suggestion(item) for item in found])
