"""Query-string validation: each bad parameter is named in the 422."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from marquee_platform.errors import InvalidInput
from marquee_search.domain import Sort
from marquee_search.params import build_query, encode_search_cursor

NOW = datetime(2026, 11, 22, tzinfo=UTC)

DEFAULTS: dict[str, Any] = {
    "q": None,
    "category": None,
    "city": None,
    "near": None,
    "radius_km": None,
    "date_from": None,
    "date_to": None,
    "price_min": None,
    "price_max": None,
    "only_available": False,
    "sort": None,
    "facets": False,
    "limit": 20,
    "cursor": None,
}


def build(**params: Any) -> Any:
    return build_query(now=NOW, **{**DEFAULTS, **params})


def fields_of(error: InvalidInput) -> list[str]:
    return [item["field"] for item in error.extensions["errors"]]


def test_defaults_sort_by_relevance_with_text_and_by_date_without() -> None:
    assert build(q="jazz").sort is Sort.RELEVANCE
    assert build().sort is Sort.DATE
    assert build(sort=Sort.RELEVANCE).sort is Sort.DATE


def test_dates_are_whole_days_and_ranges_must_be_ordered() -> None:
    query = build(date_from="2026-12-01", date_to="2026-12-01")
    assert query.starts_from == datetime(2026, 12, 1, tzinfo=UTC)
    assert query.starts_before == datetime(2026, 12, 2, tzinfo=UTC)
    with pytest.raises(InvalidInput) as caught:
        build(date_from="2026-12-02", date_to="2026-12-01")
    assert fields_of(caught.value) == ["date_to"]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        build(near="91,0", sort=Sort.DISTANCE, price_min=-1)
    assert set(fields_of(caught.value)) == {"near", "radius_km", "price_min"}


def test_cursor_round_trip_and_mismatch() -> None:
    cursor = encode_search_cursor(Sort.PRICE, (1500, "e1"))
    assert build(sort=Sort.PRICE, cursor=cursor).after == (1500, "e1")
    with pytest.raises(InvalidInput) as caught:
        build(sort=Sort.DATE, cursor=cursor)
    assert fields_of(caught.value) == ["cursor"]


def test_city_and_category_are_normalized() -> None:
    query = build(city="  New   York ", category="Concert")
    assert (query.city, query.category) == ("new york", "concert")
