"""Benchmark of the PostgreSQL search engine at 100,000 events.

    uv run python bench/search_bench.py [--events 100000] [--queries 4000] [--clients 8]
                                        [--kafka-bootstrap HOST:PORT]   (make bench-search)

It creates its own migrated database on the local PostgreSQL (MARQUEE_POSTGRES_URL, else
127.0.0.1:5432) and measures

* indexing: documents/s through the engine's version-checked bulk upsert;
* queries: p50/p99 of a realistic mix (free text with and without typos, filters, geo,
  facets, every sort, suggestions) from ``--clients`` concurrent clients;
* CDC lag: commit→searchable. Change events go to a Kafka topic (a tansu broker started
  here unless --kafka-bootstrap is given); the search ConsumerRunner applies them while
  this process polls the search until each change shows. The clock starts when the
  broker acknowledged the message (what the outbox relay's commit is).

Everything it started (tansu) is stopped by PID; the database is dropped at the end.
Bounded: a few minutes on a 2-core machine with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url

from marquee_contracts import REGISTRY
from marquee_contracts.catalog import EventChanged, EventVenue, PriceRange
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer, publish
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_search.changes import EVENT_CHANGED, entry_from_message_data
from marquee_search.consumers import create_runner
from marquee_search.domain import GeoPoint, IndexEntry, SearchQuery, Sort
from marquee_search.engines.postgres import PostgresSearchEngine
from marquee_search.main import SERVICE
from marquee_testing.localinfra import Broker, start_tansu

console = Console()

CITIES: dict[str, tuple[str, float, float]] = {
    "Paris": ("FR", 48.8566, 2.3522),
    "Lyon": ("FR", 45.7640, 4.8357),
    "Marseille": ("FR", 43.2965, 5.3698),
    "London": ("GB", 51.5074, -0.1278),
    "Manchester": ("GB", 53.4808, -2.2426),
    "Glasgow": ("GB", 55.8642, -4.2518),
    "Berlin": ("DE", 52.5200, 13.4050),
    "Hamburg": ("DE", 53.5511, 9.9937),
    "Munich": ("DE", 48.1351, 11.5820),
    "Cologne": ("DE", 50.9375, 6.9603),
    "Madrid": ("ES", 40.4168, -3.7038),
    "Barcelona": ("ES", 41.3874, 2.1686),
    "Valencia": ("ES", 39.4699, -0.3763),
    "Lisbon": ("PT", 38.7223, -9.1393),
    "Porto": ("PT", 41.1579, -8.6291),
    "Rome": ("IT", 41.9028, 12.4964),
    "Milan": ("IT", 45.4642, 9.1900),
    "Naples": ("IT", 40.8518, 14.2681),
    "Amsterdam": ("NL", 52.3676, 4.9041),
    "Rotterdam": ("NL", 51.9244, 4.4777),
    "Brussels": ("BE", 50.8503, 4.3517),
    "Antwerp": ("BE", 51.2194, 4.4025),
    "Vienna": ("AT", 48.2082, 16.3738),
    "Zurich": ("CH", 47.3769, 8.5417),
    "Geneva": ("CH", 46.2044, 6.1432),
    "Copenhagen": ("DK", 55.6761, 12.5683),
    "Stockholm": ("SE", 59.3293, 18.0686),
    "Oslo": ("NO", 59.9139, 10.7522),
    "Helsinki": ("FI", 60.1699, 24.9384),
    "Dublin": ("IE", 53.3498, -6.2603),
    "Prague": ("CZ", 50.0755, 14.4378),
    "Warsaw": ("PL", 52.2297, 21.0122),
    "Krakow": ("PL", 50.0647, 19.9450),
    "Budapest": ("HU", 47.4979, 19.0402),
    "Athens": ("GR", 37.9838, 23.7275),
    "Edinburgh": ("GB", 55.9533, -3.1883),
    "Bristol": ("GB", 51.4545, -2.5879),
    "Toulouse": ("FR", 43.6047, 1.4442),
    "Seville": ("ES", 37.3891, -5.9845),
    "Florence": ("IT", 43.7696, 11.2558),
}
CATEGORIES = [
    "concert",
    "festival",
    "theatre",
    "comedy",
    "dance",
    "classical",
    "sports",
    "family",
    "conference",
    "exhibition",
    "film",
    "other",
]
ADJECTIVES = [
    "Midnight",
    "Summer",
    "Winter",
    "Electric",
    "Golden",
    "Silent",
    "Wild",
    "Neon",
    "Velvet",
    "Urban",
    "Royal",
    "Secret",
    "Grand",
    "Little",
    "Crimson",
    "Cosmic",
    "Acoustic",
    "Open-Air",
    "Late",
    "Spring",
    "Northern",
    "Southern",
    "Blue",
    "Iron",
]
NOUNS = [
    "Jazz",
    "Rock",
    "Opera",
    "Symphony",
    "Comedy",
    "Ballet",
    "Techno",
    "Blues",
    "Poetry",
    "Circus",
    "Cinema",
    "Derby",
    "Marathon",
    "Quartet",
    "Gala",
    "Cabaret",
    "Choir",
    "Hip-Hop",
    "Folk",
    "Tango",
    "Salsa",
    "Magic",
    "Puppet",
    "Drone",
    "Reggae",
    "Soul",
]
FORMATS = [
    "Night",
    "Festival",
    "Sessions",
    "Live",
    "Showcase",
    "Weekend",
    "Tour",
    "Party",
    "Evening",
    "Matinee",
    "Marathon",
    "Jam",
    "Experience",
    "Revue",
    "Series",
]
_DESCRIPTION_TEXT = (
    "an unforgettable evening of music dance laughter with special guests local "
    "artists world famous headliners food trucks family friendly outdoor stage "
    "seated standing limited tickets early birds workshop lights sound vinyl "
    "orchestra strings brass drums poetry improv film premiere "
)
DESCRIPTION_WORDS = _DESCRIPTION_TEXT.split()
TAGS = [
    "outdoor",
    "indoor",
    "family",
    "18+",
    "accessible",
    "seated",
    "standing",
    "vip",
    "free-drinks",
    "workshop",
    "premiere",
    "charity",
    "late-night",
    "all-ages",
]
STATUSES = (
    ["on_sale"] * 70
    + ["published"] * 12
    + ["sold_out"] * 8
    + ["completed"] * 5
    + ["cancelled"] * 3
    + ["draft"] * 2
)


def event_snapshot(
    rng: random.Random,
    now: datetime,
    *,
    event_id: uuid.UUID | None = None,
    version: int = 1,
    name: str | None = None,
) -> EventChanged:
    city = rng.choice(list(CITIES))
    country, lat, lon = CITIES[city]
    starts_at = now + timedelta(minutes=rng.randrange(-30 * 24 * 60, 365 * 24 * 60))
    price_min = rng.choice([0, 500, 1000, 1500, 2000, 2500, 3500, 4500, 6000, 8000, 12000])
    status = rng.choice(STATUSES)
    return EventChanged(
        event_id=event_id or uuid.UUID(int=rng.getrandbits(128)),
        version=version,
        deleted=False,
        public=status != "draft",
        status=status,
        organizer_id=f"organizer-{rng.randrange(2000)}",
        name=name or f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(FORMATS)}",
        description=" ".join(rng.choices(DESCRIPTION_WORDS, k=rng.randrange(12, 40))),
        category=rng.choice(CATEGORIES),
        tags=rng.sample(TAGS, k=rng.randrange(1, 4)),
        image_urls=[],
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=rng.choice([2, 3, 4, 48])),
        time_zone="Europe/Paris",
        venue=EventVenue(
            id=uuid.UUID(int=rng.getrandbits(128)),
            name=f"{city} {rng.choice(['Arena', 'Hall', 'Club', 'Theatre', 'Park'])}",
            address="1 Main Street",
            city=city,
            country=country,
            latitude=lat + rng.uniform(-0.08, 0.08),
            longitude=lon + rng.uniform(-0.08, 0.08),
            time_zone="Europe/Paris",
        ),
        price_range=PriceRange(
            min_minor=price_min,
            max_minor=price_min + rng.choice([0, 1000, 3000, 8000]),
            currency="EUR",
        ),
        ticket_types=[],
        sale_starts_at=now - timedelta(days=rng.randrange(1, 60)),
        sale_ends_at=None,
        high_demand=rng.random() < 0.05,
        max_tickets_per_order=6,
        created_at=now,
        updated_at=now,
        published_at=now,
    )


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    position = rng.randrange(1, len(word) - 1)
    return word[:position] + word[position + 1 :]  # drop one letter


def query_mix(
    rng: random.Random, now: datetime
) -> list[tuple[str, Callable[[PostgresSearchEngine], Awaitable[Any]]]]:
    """Weighted realistic queries: what a listing page, a search box and a map would send."""

    def city() -> str:
        return rng.choice(list(CITIES))

    def month_window() -> tuple[datetime, datetime]:
        start = now + timedelta(days=rng.randrange(0, 300))
        return start, start + timedelta(days=30)

    def make(kind: str) -> tuple[str, Callable[[PostgresSearchEngine], Awaitable[Any]]]:
        if kind == "text":
            words = f"{rng.choice(NOUNS)} {rng.choice(FORMATS)}"
            q = SearchQuery(now=now, text=words, with_facets=True)
        elif kind == "text+typo":
            words = f"{typo(rng.choice(ADJECTIVES), rng)} {typo(rng.choice(NOUNS), rng)}"
            q = SearchQuery(now=now, text=words)
        elif kind == "text+city+facets":
            q = SearchQuery(now=now, text=rng.choice(NOUNS), city=city().lower(), with_facets=True)
        elif kind == "filters+facets":
            start, end = month_window()
            q = SearchQuery(
                now=now,
                category=rng.choice(CATEGORIES),
                city=city().lower(),
                starts_from=start,
                starts_before=end,
                with_facets=True,
            )
        elif kind == "geo+distance":
            _, lat, lon = CITIES[city()]
            q = SearchQuery(
                now=now, near=GeoPoint(lat, lon), radius_km=25, sort=Sort.DISTANCE, with_facets=True
            )
        elif kind == "price+available":
            q = SearchQuery(
                now=now,
                price_max=rng.choice([1000, 2500, 5000]),
                only_available=True,
                sort=Sort.PRICE,
                starts_from=now,
            )
        elif kind == "landing+facets":
            q = SearchQuery(now=now, starts_from=now, with_facets=True, sort=Sort.DATE)
        elif kind == "category+popularity":
            q = SearchQuery(now=now, category=rng.choice(CATEGORIES), sort=Sort.POPULARITY)
        else:
            prefix = rng.choice(ADJECTIVES + NOUNS)[: rng.randrange(3, 6)]
            return kind, lambda engine: engine.suggest(prefix, limit=8)
        return kind, lambda engine: engine.search(q)

    weights = {
        "text": 20,
        "text+typo": 10,
        "text+city+facets": 10,
        "filters+facets": 15,
        "geo+distance": 10,
        "price+available": 10,
        "landing+facets": 5,
        "category+popularity": 5,
        "suggest": 15,
    }
    kinds = [kind for kind, weight in weights.items() for _ in range(weight)]
    return [make(rng.choice(kinds)) for _ in range(10_000)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def seed(engine: PostgresSearchEngine, count: int, now: datetime) -> float:
    rng = random.Random(42)  # noqa: S311 - data generation
    batch_size = 1000
    started = time.perf_counter()
    with Progress(
        *Progress.get_default_columns()[:-1],
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("indexing events", total=count)
        for _ in range(0, count, batch_size):
            entries: list[IndexEntry] = [
                entry_from_message_data(event_snapshot(rng, now)) for _ in range(batch_size)
            ]
            await engine.load(entries)
            progress.advance(task, len(entries))
    elapsed = time.perf_counter() - started
    async with engine.database.write_engine.begin() as connection:
        await connection.execute(text("ANALYZE search_documents"))
    return count / elapsed


async def run_queries(
    engine: PostgresSearchEngine, total: int, clients: int, now: datetime
) -> dict[str, list[float]]:
    rng = random.Random(7)  # noqa: S311
    mix = query_mix(rng, now)[:total]
    # Warm the caches (shared buffers, plans) before measuring.
    for _, run in mix[: min(200, total)]:
        await run(engine)
    latencies: dict[str, list[float]] = defaultdict(list)
    queue = list(mix)

    async def client() -> None:
        while queue:
            kind, run = queue.pop()
            started = time.perf_counter()
            await run(engine)
            latencies[kind].append((time.perf_counter() - started) * 1000)

    with Progress(
        BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("queries", total=len(mix))

        async def report() -> None:
            while queue:
                progress.update(task, completed=len(mix) - len(queue))
                await asyncio.sleep(0.2)

        reporter = asyncio.create_task(report())
        await asyncio.gather(*(client() for _ in range(clients)))
        await reporter
    return latencies


async def measure_cdc_lag(
    engine: PostgresSearchEngine, database: Database, bootstrap: str, changes: int, now: datetime
) -> list[float]:
    topic = f"events.event-changed-bench-{uuid.uuid4().hex[:8]}.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 6, 1)])
    finally:
        await admin.close()
    runner = create_runner(
        engine=engine,
        database=database,
        bootstrap=bootstrap,
        group=f"search-bench-{uuid.uuid4().hex[:8]}",
        topic=topic,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    producer = create_producer(bootstrap)
    await producer.start()
    rng = random.Random(99)  # noqa: S311
    lags: list[float] = []
    try:
        # Warm-up: the consumer group must have joined before the clock means anything.
        warm = f"warmup{uuid.uuid4().hex[:8]}"
        await send(producer, topic, event_snapshot(rng, now, name=f"Warm {warm}"))
        await wait_searchable(engine, warm, now, timeout=60)
        with Progress(
            BarColumn(), MofNCompleteColumn(), console=console, transient=True
        ) as progress:
            task = progress.add_task("changes", total=changes)
            for _ in range(changes):
                token = f"lag{uuid.uuid4().hex[:10]}"
                snapshot = event_snapshot(rng, now, name=f"Renamed {token} Night")
                snapshot = snapshot.model_copy(update={"status": "on_sale", "public": True})
                await send(producer, topic, snapshot)
                acked = time.perf_counter()
                await wait_searchable(engine, token, now, timeout=30)
                lags.append((time.perf_counter() - acked) * 1000)
                progress.advance(task)
    finally:
        stop.set()
        await running
        await producer.stop()
    return lags


async def send(producer: Any, topic: str, snapshot: EventChanged) -> None:
    event = REGISTRY.event(
        EVENT_CHANGED, snapshot, source="/marquee/events", subject=str(snapshot.event_id)
    )
    await publish(producer, topic, event, key=str(snapshot.event_id))


async def wait_searchable(
    engine: PostgresSearchEngine, token: str, now: datetime, *, timeout: float
) -> None:
    deadline = time.perf_counter() + timeout
    query = SearchQuery(now=now, text=token, limit=1)
    while time.perf_counter() < deadline:
        if (await engine.search(query)).hits:
            return
        await asyncio.sleep(0.002)
    raise TimeoutError(f"{token} never became searchable")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--kafka-bootstrap", default=None)
    args = parser.parse_args()

    server = os.environ.get("MARQUEE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = make_url(server).set(
        drivername="postgresql+asyncpg", database=f"bench_search_{uuid.uuid4().hex[:8]}"
    )
    database_url = url.render_as_string(hide_password=False)
    broker: Broker | None = None
    await ensure_database(database_url)
    try:
        assert SERVICE.migrations is not None
        await upgrade_async(database_url, SERVICE.migrations)
        database = Database(database_url, pool_size=args.clients)
        engine = PostgresSearchEngine(database)
        now = datetime.now(UTC)
        rate = await seed(engine, args.events, now)
        listed = await engine.count()
        console.print(f"indexed {args.events:,} events ({listed:,} listed) at {rate:,.0f} docs/s")

        started = time.perf_counter()
        latencies = await run_queries(engine, args.queries, args.clients, now)
        elapsed = time.perf_counter() - started
        every = [value for values in latencies.values() for value in values]
        table = Table(
            title=f"{len(every):,} queries, {args.clients} concurrent clients, "
            f"{len(every) / elapsed:,.0f} queries/s"
        )
        for column in ("query", "count", "p50 ms", "p99 ms", "max ms"):
            table.add_column(column, justify="right" if column != "query" else "left")
        for kind in sorted(latencies):
            values = latencies[kind]
            table.add_row(
                kind,
                str(len(values)),
                f"{statistics.median(values):.1f}",
                f"{percentile(values, 0.99):.1f}",
                f"{max(values):.1f}",
            )
        table.add_row(
            "[bold]all[/bold]",
            str(len(every)),
            f"{statistics.median(every):.1f}",
            f"{percentile(every, 0.99):.1f}",
            f"{max(every):.1f}",
        )
        console.print(table)

        bootstrap = args.kafka_bootstrap
        if bootstrap is None:
            broker = start_tansu(log_dir=Path(tempfile.mkdtemp(prefix="search-bench-")))
            bootstrap = broker.bootstrap
        lags = await measure_cdc_lag(engine, database, bootstrap, args.changes, now)
        console.print(
            f"CDC lag (broker ack → searchable) over {len(lags)} changes: "
            f"p50 {statistics.median(lags):.1f} ms, p99 {percentile(lags, 0.99):.1f} ms, "
            f"max {max(lags):.1f} ms"
        )
        await database.dispose()
    finally:
        if broker is not None:
            broker.stop()
        await drop_database(database_url)
    print(
        f"RESULT p50_ms={statistics.median(every):.1f} p99_ms={percentile(every, 0.99):.1f} "
        f"cdc_p99_ms={percentile(lags, 0.99):.1f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
