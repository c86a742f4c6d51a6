"""Test support for the search service: an osmem-server (OpenSearch API) for the session,
both engines as fixtures, and small factories of event snapshots.

Loaded by services/search/tests/conftest.py; shipped in the package (like
``marquee_testing.fixtures``) so tests and the benchmark can import the factories.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from marquee_platform.db import Database
from marquee_search.changes import EventChange, to_index_entry
from marquee_search.domain import IndexEntry
from marquee_search.engines.base import SearchEngine
from marquee_search.engines.postgres import PostgresSearchEngine
from marquee_search.engines.remote import RemoteSearchEngine
from marquee_search.main import SERVICE
from marquee_testing.fixtures import DatabaseFactory
from marquee_testing.localinfra import free_port, stop_process

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
"""The fixed 'now' of every contract test (queries pass it explicitly)."""

CITIES = {
    "Paris": ("FR", 48.8566, 2.3522),
    "Lyon": ("FR", 45.7640, 4.8357),
    "London": ("GB", 51.5074, -0.1278),
    "Berlin": ("DE", 52.5200, 13.4050),
}


def change(event_id: str, *, version: int = 1, **overrides: Any) -> EventChange:
    """A snapshot shaped like ``events.event-changed.v1``'s data, with sensible defaults
    (``public`` left out: the status decides, as for a snapshot without the flag)."""
    city = overrides.pop("city", "Paris")
    country, lat, lon = CITIES.get(city, ("FR", 48.8566, 2.3522))
    starts_at = overrides.pop("starts_at", NOW + timedelta(days=10))
    price_min = overrides.pop("price_min", 2500)
    price_max = overrides.pop("price_max", max(price_min, 6000))
    data: dict[str, Any] = {
        "event_id": event_id,
        "version": version,
        "deleted": False,
        "public": None,
        "status": "on_sale",
        "organizer_id": "organizer-1",
        "name": f"Event {event_id}",
        "description": "An evening to remember.",
        "category": "concert",
        "tags": ["live"],
        "image_urls": [f"https://img.example/{event_id}.jpg"],
        "starts_at": starts_at.isoformat(),
        "ends_at": (starts_at + timedelta(hours=3)).isoformat(),
        "time_zone": "Europe/Paris",
        "venue": {
            "id": f"venue-{city.lower()}",
            "name": f"{city} Arena",
            "address": "1 Main Street",
            "city": city,
            "country": country,
            "latitude": lat,
            "longitude": lon,
            "time_zone": "Europe/Paris",
        },
        "price_range": {"min_minor": price_min, "max_minor": price_max, "currency": "EUR"},
        "sale_starts_at": (NOW - timedelta(days=30)).isoformat(),
        "sale_ends_at": None,
        "high_demand": False,
        "updated_at": NOW.isoformat(),
    }
    data.update(overrides)
    return EventChange.model_validate(data)


def entry(event_id: str, *, version: int = 1, **overrides: Any) -> IndexEntry:
    return to_index_entry(change(event_id, version=version, **overrides))


OSMEM_BINARY_ENV = "OSMEM_SERVER_BIN"


@pytest.fixture(scope="session")
def search_cluster_url() -> Iterator[str]:
    """osmem-server (in-memory, OpenSearch API) on 127.0.0.1, stopped by its PID."""
    from osmem_server import resolve_binary

    port = free_port()
    process = subprocess.Popen(
        [
            resolve_binary(os.environ.get(OSMEM_BINARY_ENV)),
            "--addr",
            f"127.0.0.1:{port}",
            "--no-ja",
            "--no-stdin-watch",
            "--parent-pid",
            str(os.getpid()),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ready: dict[str, Any] = {}

    def read_ready_line() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and "url" in message:
                ready.update(message)
                return

    reader = threading.Thread(target=read_ready_line, daemon=True)
    reader.start()
    reader.join(30)
    try:
        if not ready:
            raise RuntimeError("osmem-server did not report ready within 30 s")
        yield str(ready["url"])
    finally:
        stop_process(process)


@pytest.fixture
async def postgres_engine(make_database: DatabaseFactory) -> AsyncIterator[PostgresSearchEngine]:
    assert SERVICE.migrations is not None
    url = await make_database(SERVICE.migrations, prefix="search")
    engine = PostgresSearchEngine(Database(url), owns_database=True)
    yield engine
    await engine.close()


@pytest.fixture
async def opensearch_engine(search_cluster_url: str) -> AsyncIterator[RemoteSearchEngine]:
    import uuid

    alias = f"events-{uuid.uuid4().hex[:10]}"
    engine = RemoteSearchEngine.from_url(
        search_cluster_url, alias=alias, client="opensearch", refresh="wait_for"
    )
    yield engine
    for index in await engine.client.alias_indices(alias):
        await engine.client.delete_index(index)
    await engine.close()


@pytest.fixture(params=["postgres", "opensearch"])
def engine(request: pytest.FixtureRequest) -> SearchEngine:
    """Each contract test runs once per engine."""
    found: SearchEngine = request.getfixturevalue(f"{request.param}_engine")
    return found
