"""The HTTP API over the PostgreSQL engine: results, cursors, suggestions and 422s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from marquee_platform.db import Database
from marquee_search.engines.postgres import PostgresSearchEngine
from marquee_search.main import SERVICE, create_app
from marquee_search.settings import SearchSettings
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.search import entry

SOON = datetime.now(UTC) + timedelta(days=3)


@pytest.fixture
async def client(make_database: DatabaseFactory) -> AsyncIterator[httpx.AsyncClient]:
    assert SERVICE.migrations is not None
    url = await make_database(SERVICE.migrations, prefix="search")
    loader = PostgresSearchEngine(Database(url), owns_database=True)
    await loader.apply(
        [
            entry(f"e{n}", name=f"Summer Jazz Festival {n}", starts_at=SOON + timedelta(days=n))
            for n in range(5)
        ]
        + [entry("rock", name="Garage Rock Night", city="London", starts_at=SOON)]
    )
    await loader.close()
    app = create_app(SearchSettings(database_url=url, log_json=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://search") as client:
            yield client


async def test_search_pages_with_cursors_and_facets(client: httpx.AsyncClient) -> None:
    first = await client.get(
        "/api/v1/search/events", params={"q": "jazz festivl", "limit": 3, "facets": "true"}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["total"] == 5
    assert [bucket["key"] for bucket in body["facets"]["city"]] == ["Paris"]
    assert body["items"][0]["highlights"]["name"].count("<em>") >= 1
    assert body["items"][0]["venue"]["city"] == "Paris"
    second = await client.get(
        "/api/v1/search/events",
        params={"q": "jazz festivl", "limit": 3, "cursor": body["next_cursor"]},
    )
    names = [item["name"] for item in body["items"] + second.json()["items"]]
    assert len(names) == len(set(names)) == 5
    assert second.json()["next_cursor"] is None


async def test_suggest(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/search/suggest", params={"q": "garag"})
    assert response.status_code == 200
    assert [item["text"] for item in response.json()["items"]] == ["Garage Rock Night"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"near": "48.8,2.3"}, "radius_km"),
        ({"radius_km": "10"}, "near"),
        ({"near": "95,2.3", "radius_km": "10"}, "near"),
        ({"near": "paris", "radius_km": "10"}, "near"),
        ({"near": "48.8,2.3", "radius_km": "-1"}, "radius_km"),
        ({"date_from": "2026-12-10", "date_to": "2026-12-01"}, "date_to"),
        ({"date_from": "next tuesday"}, "date_from"),
        ({"sort": "distance"}, "sort"),
        ({"sort": "loudness"}, "sort"),
        ({"price_min": "5000", "price_max": "1000"}, "price_max"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "1000"}, "limit"),
    ],
)
async def test_bad_parameters_are_a_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    response = await client.get("/api/v1/search/events", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert parameter in [error["field"] for error in response.json()["errors"]]


async def test_a_cursor_from_another_sort_is_refused(client: httpx.AsyncClient) -> None:
    page = (await client.get("/api/v1/search/events", params={"limit": 2})).json()
    response = await client.get(
        "/api/v1/search/events", params={"limit": 2, "sort": "price", "cursor": page["next_cursor"]}
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["cursor"]


async def test_suggest_needs_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/search/suggest", params={"q": "  "})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "q"


@pytest.mark.parametrize("q", ["!", "🎸", "<->", "\\", "%", " ?! ", "'", "&|"])
async def test_a_query_without_words_searches_like_no_query(
    client: httpx.AsyncClient, q: str
) -> None:
    without_text = await client.get("/api/v1/search/events", params={"facets": "true"})
    response = await client.get("/api/v1/search/events", params={"q": q, "facets": "true"})
    assert response.status_code == 200, response.text
    assert response.json() == without_text.json()


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"q": "jazz\x00"}, "q"),
        ({"city": "Par\x00is"}, "city"),
        ({"price_min": "99999999999999999999"}, "price_min"),
        ({"price_max": "99999999999999999999"}, "price_max"),
    ],
)
async def test_values_postgresql_cannot_take_are_a_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    response = await client.get("/api/v1/search/events", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in response.json()["errors"]] == [parameter]
