"""The PostgreSQL engine's documents table, version 1: one row per event.

Migration 0002 creates it with these statements, and a reindex builds its replacement
with the same ones under another name before swapping the names. Frozen like a migration:
a change is a ``v2`` here plus a new migration (and a reindex builds the new shape).

Why these indexes (100k events, p99 < 50 ms on 2 cores, see docs/services/search.md):

* every index is partial on ``listed``: tombstones (hidden events) are never searched;
* GIN on ``search_vector`` answers full text; GIN trigram on ``name`` answers typos and
  suggestions;
* GiST on ``geo`` (a built-in ``point``: no extension needed) answers the bounding box
  that narrows a radius search before the exact haversine distance;
* B-trees on ``(starts_at, event_id)``, ``(category, starts_at, event_id)``,
  ``(city_key, starts_at, event_id)``, ``(price_min, event_id)`` and
  ``(popularity DESC, event_id)`` give the sorted, keyset-paginated listings without
  sorting the whole match set.
"""

from __future__ import annotations

TABLE = "search_documents"

COLUMNS = (
    "event_id",
    "version",
    "listed",
    "status",
    "availability",
    "name",
    "description",
    "category",
    "tags",
    "image_url",
    "starts_at",
    "ends_at",
    "timezone",
    "venue_id",
    "venue_name",
    "city",
    "city_key",
    "country",
    "lat",
    "lon",
    "price_min",
    "price_max",
    "currency",
    "sale_starts_at",
    "sale_ends_at",
    "high_demand",
    "organizer_id",
    "popularity",
    "updated_at",
    "indexed_at",
    "search_vector",
)


def create_table_v1(table: str) -> str:
    return f"""
CREATE TABLE {table} (
    event_id text NOT NULL,
    version bigint NOT NULL,
    listed boolean NOT NULL,
    status text NOT NULL,
    availability text,
    name text,
    description text,
    category text,
    tags text[],
    image_url text,
    starts_at timestamptz,
    ends_at timestamptz,
    timezone text,
    venue_id text,
    venue_name text,
    city text,
    city_key text,
    country text,
    lat double precision,
    lon double precision,
    geo point GENERATED ALWAYS AS (point(lon, lat)) STORED,
    price_min bigint,
    price_max bigint,
    currency text,
    sale_starts_at timestamptz,
    sale_ends_at timestamptz,
    high_demand boolean,
    organizer_id text,
    popularity double precision NOT NULL DEFAULT 0,
    updated_at timestamptz,
    indexed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    search_vector tsvector,
    CONSTRAINT {table}_pkey PRIMARY KEY (event_id)
)"""


INDEXES_V1: dict[str, str] = {
    "text_idx": "USING gin (search_vector) WHERE listed",
    "name_trgm_idx": "USING gin (name gin_trgm_ops) WHERE listed",
    "geo_idx": "USING gist (geo) WHERE listed AND geo IS NOT NULL",
    "starts_idx": "(starts_at, event_id) WHERE listed",
    "category_starts_idx": "(category, starts_at, event_id) WHERE listed",
    "city_starts_idx": "(city_key, starts_at, event_id) WHERE listed",
    "price_idx": "(price_min, event_id) WHERE listed",
    "popularity_idx": "(popularity DESC, event_id) WHERE listed",
    "name_prefix_idx": "(lower(name) text_pattern_ops) WHERE listed",
    "indexed_at_idx": "(indexed_at)",
}
"""Index name suffix → definition; the full name is ``<table>_<suffix>``."""


def create_indexes_v1(table: str) -> list[str]:
    return [
        f"CREATE INDEX {table}_{suffix} ON {table} {definition}"
        for suffix, definition in INDEXES_V1.items()
    ]


def index_names(table: str) -> list[str]:
    return [f"{table}_pkey", *(f"{table}_{suffix}" for suffix in INDEXES_V1)]


TRGM_WORD_THRESHOLD = 0.5
"""pg_trgm's word similarity threshold for ``<%`` (default 0.6 misses 'nigt' → 'Night')."""


def upgrade_statements_v1() -> list[str]:
    """Migration 0002: the extension, the table, its indexes, the trigram threshold."""
    return [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        create_table_v1(TABLE),
        *create_indexes_v1(TABLE),
        # Database defaults, so every pooled connection has them without a round trip.
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET pg_trgm.word_similarity_threshold"
        f" = {TRGM_WORD_THRESHOLD}', current_database()); END $$",
        # asyncpg prepares every statement; after five runs PostgreSQL may switch to a
        # generic plan that can't see the search words or the box, and trigram or geo
        # searches then scan the table (1 s instead of 5 ms). Always plan for the values.
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET plan_cache_mode"
        " = force_custom_plan', current_database()); END $$",
    ]


def downgrade_statements_v1() -> list[str]:
    return [
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET "
        "pg_trgm.word_similarity_threshold', current_database()); END $$",
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET plan_cache_mode',"
        " current_database()); END $$",
        f"DROP TABLE IF EXISTS {TABLE}",
    ]
