"""Publish → searchable, end to end through the gateway, on both search engines.

An organizer builds a venue, an event and its ticket types through the gateway; the events
service's outbox reaches Kafka through the CDC relay; the search indexer consumes it; the
public finds it through the gateway by text (with a typo), by filters and near a place.
An edit becomes searchable, a cancellation disappears, and a reindex while queries run
fails none of them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from marquee_events.main import SERVICE as EVENTS
from marquee_events.main import create_app as create_events_app
from marquee_events.settings import EventsSettings
from marquee_gateway.main import create_app as create_gateway_app
from marquee_gateway.settings import GatewaySettings
from marquee_platform.db import Database, to_libpq_dsn
from marquee_platform.relay import run_relay
from marquee_search.cli import Source, reindex_async
from marquee_search.consumers import create_runner
from marquee_search.engines import create_engine
from marquee_search.main import SERVICE as SEARCH
from marquee_search.main import create_app as create_search_app
from marquee_search.settings import SearchSettings
from marquee_testing.fixtures import DatabaseFactory, TokenIssuer, serve_in_thread
from marquee_testing.search import search_cluster_url  # noqa: F401 - the osmem fixture

SEARCHABLE_WITHIN = 1.0
"""Seconds from the organizer's response to the event being found (the target p99)."""


@dataclass
class Catalog:
    client: httpx.AsyncClient
    organizer: dict[str, str]
    word: str
    """A made-up word in the event's name: no other test's event matches it."""

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {**self.organizer, "Idempotency-Key": str(uuid.uuid4())}
        response = await self.client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    async def publish_event(self) -> dict[str, Any]:
        seats = [{"id": f"A-{number}"} for number in range(1, 9)]
        venue = await self.post(
            "/api/v1/events/venues",
            {
                "name": "Olympia",
                "address": "28 Boulevard des Capucines",
                "city": "Paris",
                "country": "FR",
                "location": {"latitude": 48.8702, "longitude": 2.3283},
                "time_zone": "Europe/Paris",
                "capacity": 108,
                "seating_map": {
                    "sections": [
                        {
                            "name": "Stalls",
                            "rows": [{"label": "A", "price_category": "standard", "seats": seats}],
                        }
                    ],
                    "general_admission": [{"name": "Floor", "capacity": 100}],
                },
            },
        )
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        event = await self.post(
            "/api/v1/events",
            {
                "venue_id": venue["id"],
                "name": f"{self.word} symphony night",
                "description": "An orchestra plays under the glass roof.",
                "category": "concert",
                "tags": ["classical", "orchestra"],
                "image_urls": ["https://images.example/symphony.jpg"],
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=3)).isoformat(),
                "sale_starts_at": datetime.now(UTC).isoformat(),
                "sale_ends_at": starts.isoformat(),
                "high_demand": False,
                "max_tickets_per_order": 6,
            },
        )
        path = f"/api/v1/events/{event['id']}"
        await self.post(
            f"{path}/ticket-types",
            {
                "name": "Stalls",
                "price_minor": 4_500,
                "currency": "EUR",
                "price_category": "standard",
                "max_per_order": 6,
            },
        )
        await self.post(
            f"{path}/ticket-types",
            {
                "name": "Floor",
                "price_minor": 3_000,
                "currency": "EUR",
                "general_admission_area": "Floor",
                "quantity": 100,
                "max_per_order": 6,
            },
        )
        return await self.post(f"{path}/publish")


async def search(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/search/events", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def found_within(
    client: httpx.AsyncClient,
    condition: Callable[[list[dict[str, Any]]], bool],
    *,
    timeout: float,
    **params: Any,
) -> float:
    """Seconds until a search with ``params`` satisfies ``condition`` (fails at timeout)."""
    started = time.perf_counter()
    while True:
        if condition(await search(client, **params)):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise AssertionError(f"search {params} did not match within {timeout} s")
        await asyncio.sleep(0.02)


def has(event_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda items: any(item["event_id"] == event_id for item in items)


def lacks(event_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda items: not has(event_id)(items)


@pytest.fixture(params=["postgres", "opensearch"])
async def gateway(
    request: pytest.FixtureRequest,
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
    token_issuer: TokenIssuer,
    unique_name: Callable[[str], str],
) -> AsyncIterator[tuple[str, SearchSettings]]:
    events_url = await make_database(EVENTS.migrations, prefix="e2e_events")
    search_url = await make_database(SEARCH.migrations, prefix="e2e_search")
    common: dict[str, Any] = {
        "redis_url": redis_url,
        "kafka_bootstrap": kafka_bootstrap,
        "jwks_url": token_issuer.jwks_url,
        "log_json": False,
    }
    engine_settings: dict[str, Any] = {}
    if request.param == "opensearch":
        engine_settings = {
            "search_url": request.getfixturevalue("search_cluster_url"),
            "search_client": "opensearch",
            "search_index": unique_name("events"),
            "search_refresh": "wait_for",
        }
    search_settings = SearchSettings(database_url=search_url, **engine_settings, **common)
    # A reindex from the events service's API runs with an admin's token.
    search_settings.internal_token = SecretStr(token_issuer.token("reindexer", ("admin",)))

    stop = asyncio.Event()
    relay = asyncio.create_task(
        run_relay(
            to_libpq_dsn(events_url),
            kafka_bootstrap,
            name=unique_name("e2e_events").replace("-", "_"),
            stop=stop,
        )
    )
    indexer_database = Database(search_url)
    indexer_engine = create_engine(search_settings, database=indexer_database)
    indexer = create_runner(
        engine=indexer_engine,
        database=indexer_database,
        bootstrap=kafka_bootstrap,
        group=unique_name("search"),
    )
    indexing = asyncio.create_task(indexer.run(stop))
    # A consumer joins its group once, at start; the test measures steady-state indexing.
    await asyncio.wait_for(indexer.ready.wait(), timeout=60)
    with (
        serve_in_thread(create_events_app(EventsSettings(database_url=events_url, **common))) as ev,
        serve_in_thread(create_search_app(search_settings)) as se,
        serve_in_thread(
            create_gateway_app(GatewaySettings(service_urls={"events": ev, "search": se}, **common))
        ) as gateway_url,
    ):
        search_settings.events_url = ev
        yield gateway_url, search_settings
    stop.set()
    await asyncio.wait_for(asyncio.gather(relay, indexing), timeout=30)
    await indexer_engine.close()
    await indexer_database.dispose()


async def test_published_event_is_found_edited_cancelled_and_survives_a_reindex(
    gateway: tuple[str, SearchSettings], token_issuer: TokenIssuer, kafka_bootstrap: str
) -> None:
    gateway_url, search_settings = gateway
    word = "zq" + uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=gateway_url, timeout=15, trust_env=False) as client:
        catalog = Catalog(client, token_issuer.headers("organizer-e2e", ("organizer",)), word)
        event = await catalog.publish_event()
        event_id = str(event["id"])

        misspelled = f"{word} symphny"  # a typo in "symphony"
        waited = await found_within(client, has(event_id), timeout=10, q=misspelled)
        print(f"publish → found with a typo through the gateway: {waited * 1000:.0f} ms")
        assert waited < SEARCHABLE_WITHIN, f"searchable after {waited:.2f} s"
        assert await found_within(client, has(event_id), timeout=2, q=word, category="concert")
        filtered = await search(client, q=word, city="Paris", price_max=5_000)
        assert has(event_id)(filtered)
        assert lacks(event_id)(await search(client, q=word, city="Lyon"))
        nearby = await search(client, q=word, near="48.8566,2.3522", radius_km=10)
        assert has(event_id)(nearby)
        assert nearby[0]["distance_km"] < 10
        assert lacks(event_id)(await search(client, q=word, near="45.7640,4.8357", radius_km=10))

        edited = await client.patch(
            f"/api/v1/events/{event_id}",
            json={"name": f"{word} candlelight quartet"},
            headers=catalog.organizer,
        )
        assert edited.status_code == 200, edited.text
        await found_within(client, has(event_id), timeout=SEARCHABLE_WITHIN * 5, q="candlelight")

        # A reindex swaps in a fresh index while the public keeps searching.
        failures: list[str] = []
        searches = 0
        # PostgreSQL rebuilds from the events service's API, OpenSearch from the topic.
        source = Source.HTTP if search_settings.search_url is None else Source.KAFKA
        reindexing = asyncio.create_task(
            reindex_async(search_settings, source=source, kafka_bootstrap=kafka_bootstrap)
        )
        while not reindexing.done():
            response = await client.get("/api/v1/search/events", params={"q": word})
            searches += 1
            if response.status_code != 200 or not has(event_id)(response.json()["items"]):
                failures.append(f"{response.status_code}: {response.text[:200]}")
        await reindexing
        assert searches > 0
        assert failures == [], f"{len(failures)} of {searches} searches failed during reindex"
        assert has(event_id)(await search(client, q="candlelight"))

        cancelled = await catalog.post(f"/api/v1/events/{event_id}/cancel", {"reason": "storm"})
        assert cancelled["status"] == "cancelled"
        await found_within(client, lacks(event_id), timeout=SEARCHABLE_WITHIN * 5, q=word)
