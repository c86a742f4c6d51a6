# SQL here is assembled from this module's constants and table names we generate; every
# value a caller supplies is a bound parameter.
# ruff: noqa: S608
"""The PostgreSQL engine: the index in the search service's own database (single node).

Full text is a weighted ``tsvector`` (name A, tags and category B, description C, venue
and city D) ranked with ``ts_rank``; typos are caught by pg_trgm word similarity on the
name; distance is haversine on ``lat``/``lon`` after a GiST bounding-box filter; facets
are one ``GROUPING SETS`` scan with ``FILTER`` aggregates; pages are keyset cursors on
``(sort value, event_id)``; highlights come from ``ts_headline`` on the page's rows only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from marquee_platform.db import Database
from marquee_search import pg_schema
from marquee_search.domain import (
    EARTH_RADIUS_KM,
    PRICE_BUCKETS,
    TERMS_FACET_SIZE,
    Availability,
    Bucket,
    EventDocument,
    FacetBucket,
    Facets,
    IndexEntry,
    SearchHit,
    SearchQuery,
    SearchResult,
    Sort,
    Suggestion,
    Tombstone,
    bounding_box,
    date_buckets,
    highlight_fuzzy,
    words,
)
from marquee_search.engines.base import Progress, RebuildReport

TABLE = pg_schema.TABLE
TEXT_CONFIG = "english"
MAX_QUERY_WORDS = 8
TYPO_STOP_WORDS = frozenset({"the", "and", "for", "with", "from", "at", "of", "in", "on"})

_DOCUMENT_COLUMNS = (
    "event_id, version, status, name, description, category, tags, image_url, starts_at, "
    "ends_at, timezone, venue_id, venue_name, city, country, lat, lon, price_min, price_max, "
    "currency, sale_starts_at, sale_ends_at, high_demand, organizer_id, popularity, updated_at"
)

_SEARCH_VECTOR = (
    f"setweight(to_tsvector('{TEXT_CONFIG}', :name), 'A')"
    f" || setweight(to_tsvector('{TEXT_CONFIG}', :tags_text), 'B')"
    f" || setweight(to_tsvector('{TEXT_CONFIG}', :description), 'C')"
    f" || setweight(to_tsvector('{TEXT_CONFIG}', :place_text), 'D')"
)

_UPDATED_COLUMNS = [
    column
    for column in pg_schema.COLUMNS
    if column not in ("event_id", "popularity")  # popularity is fed separately
]


def _upsert_sql(table: str) -> str:
    """Insert or replace a document, only if its version is newer than the stored one."""
    insert_columns = [column for column in pg_schema.COLUMNS if column != "popularity"]
    values = [
        "clock_timestamp()"
        if column == "indexed_at"
        else _SEARCH_VECTOR
        if column == "search_vector"
        else f":{column}"
        for column in insert_columns
    ]
    updates = ", ".join(f"{column} = excluded.{column}" for column in _UPDATED_COLUMNS)
    return (
        f"INSERT INTO {table} AS d ({', '.join(insert_columns)}) VALUES ({', '.join(values)}) "
        f"ON CONFLICT (event_id) DO UPDATE SET {updates} "
        "WHERE d.version < excluded.version RETURNING d.event_id"
    )


def _document_params(document: EventDocument) -> dict[str, Any]:
    place = " ".join(
        part for part in (document.venue_name, document.city, document.country) if part
    )
    return {
        "event_id": document.event_id,
        "version": document.version,
        "listed": True,
        "status": document.status,
        "availability": document.availability.value,
        "name": document.name,
        "description": document.description,
        "category": document.category,
        "tags": list(document.tags),
        "image_url": document.image_url,
        "starts_at": document.starts_at,
        "ends_at": document.ends_at,
        "timezone": document.timezone,
        "venue_id": document.venue_id,
        "venue_name": document.venue_name,
        "city": document.city,
        "city_key": document.city_key,
        "country": document.country,
        "lat": document.lat,
        "lon": document.lon,
        "price_min": document.price_min,
        "price_max": document.price_max,
        "currency": document.currency,
        "sale_starts_at": document.sale_starts_at,
        "sale_ends_at": document.sale_ends_at,
        "high_demand": document.high_demand,
        "organizer_id": document.organizer_id,
        "updated_at": document.updated_at,
        "tags_text": " ".join((*document.tags, document.category)),
        "place_text": place,
    }


def _tombstone_params(tombstone: Tombstone) -> dict[str, Any]:
    params: dict[str, Any] = dict.fromkeys(pg_schema.COLUMNS)
    params.update(
        event_id=tombstone.event_id,
        version=tombstone.version,
        listed=False,
        status=tombstone.status,
        name="",
        description="",
        tags_text="",
        place_text="",
    )
    return params


def _entry_params(entry: IndexEntry) -> dict[str, Any]:
    if isinstance(entry, Tombstone):
        return _tombstone_params(entry)
    return _document_params(entry)


def _document_from_row(row: Any) -> EventDocument:
    return EventDocument(
        event_id=row.event_id,
        version=row.version,
        status=row.status,
        name=row.name,
        description=row.description,
        category=row.category,
        tags=tuple(row.tags or ()),
        image_url=row.image_url,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        timezone=row.timezone,
        venue_id=row.venue_id,
        venue_name=row.venue_name,
        city=row.city,
        country=row.country,
        lat=row.lat,
        lon=row.lon,
        price_min=row.price_min,
        price_max=row.price_max,
        currency=row.currency,
        sale_starts_at=row.sale_starts_at,
        sale_ends_at=row.sale_ends_at,
        high_demand=row.high_demand,
        organizer_id=row.organizer_id,
        popularity=row.popularity,
        updated_at=row.updated_at,
    )


def _prefix_tsquery(text_query: str) -> str | None:
    """``w1:* | w2:*``: what highlights (and matches as you type) each typed word."""
    typed = [word for word in words(text_query)[:MAX_QUERY_WORDS] if word]
    return " | ".join(f"{word}:*" for word in typed) or None


def _typo_words(text_query: str) -> list[str]:
    return [
        word
        for word in words(text_query)[:MAX_QUERY_WORDS]
        if len(word) >= 3 and word.casefold() not in TYPO_STOP_WORDS
    ]


_HAVERSINE = (
    f"(2 * {EARTH_RADIUS_KM} * asin(least(1.0, sqrt("
    "power(sin(radians(d.lat - :near_lat) / 2), 2)"
    " + cos(radians(:near_lat)) * cos(radians(d.lat))"
    " * power(sin(radians(d.lon - :near_lon) / 2), 2)))))"
)

_SORT_VALUE = {
    Sort.DATE: "d.starts_at",
    Sort.PRICE: "d.price_min",
    Sort.POPULARITY: "d.popularity",
    Sort.DISTANCE: _HAVERSINE,
}
_DESCENDING = {Sort.RELEVANCE, Sort.POPULARITY}


class _Statement:
    """A search statement's FROM and WHERE clauses, built from a query."""

    def __init__(self, query: SearchQuery, *, fuzzy: bool = False) -> None:
        self.query = query
        self.params: dict[str, Any] = {}
        self.sources = [f"{TABLE} d"]
        self.conditions = ["d.listed"]
        self.score: str | None = None
        self._add_text(query, fuzzy=fuzzy)
        self._add_filters(query)

    def _add_text(self, query: SearchQuery, *, fuzzy: bool) -> None:
        if not query.text:
            return
        self.sources.append(f"websearch_to_tsquery('{TEXT_CONFIG}', :q) AS tsq(query)")
        self.params["q"] = query.text
        if not fuzzy:
            self.conditions.append("d.search_vector @@ tsq.query")
            self.score = "CAST(ts_rank(d.search_vector, tsq.query) AS double precision)"
            return
        typo_words = _typo_words(query.text) or words(query.text)[:MAX_QUERY_WORDS]
        for index, word in enumerate(typo_words):
            self.params[f"w{index}"] = word
        if typo_words:  # text without words (q=!) matches everything, as the remote engine
            typo = " AND ".join(f":w{index} <% d.name" for index in range(len(typo_words)))
            self.conditions.append(f"({typo})")
        self.score = "CAST(word_similarity(:q, d.name) AS double precision)"

    def _add_filters(self, query: SearchQuery) -> None:
        add = self.conditions.append
        if query.category:
            add("d.category = :category")
            self.params["category"] = query.category
        if query.city:
            add("d.city_key = :city")
            self.params["city"] = query.city
        if query.starts_from:
            add("d.starts_at >= :starts_from")
            self.params["starts_from"] = query.starts_from
        if query.starts_before:
            add("d.starts_at < :starts_before")
            self.params["starts_before"] = query.starts_before
        if query.price_min is not None:
            add("d.price_max >= :price_min")
            self.params["price_min"] = query.price_min
        if query.price_max is not None:
            add("d.price_min <= :price_max")
            self.params["price_max"] = query.price_max
        if query.only_available:
            add(f"d.availability = '{Availability.ON_SALE.value}'")
            add("(d.sale_ends_at IS NULL OR d.sale_ends_at > :now)")
            self.params["now"] = query.now
        if query.near is not None and query.radius_km is not None:
            box = bounding_box(query.near, query.radius_km)
            add("d.geo <@ box(point(:lon_min, :lat_min), point(:lon_max, :lat_max))")
            add(f"{_HAVERSINE} <= :radius_km")
            self.params.update(
                lat_min=box.lat_min,
                lat_max=box.lat_max,
                lon_min=box.lon_min,
                lon_max=box.lon_max,
                radius_km=query.radius_km,
            )
        if query.near is not None:
            self.params.update(near_lat=query.near.lat, near_lon=query.near.lon)

    @property
    def from_where(self) -> str:
        return f"FROM {', '.join(self.sources)} WHERE {' AND '.join(self.conditions)}"


def _effective_sort(query: SearchQuery) -> Sort:
    return Sort.DATE if query.sort is Sort.RELEVANCE and not query.text else query.sort


class PostgresSearchEngine:
    name = "postgresql"

    def __init__(self, database: Database, *, owns_database: bool = False) -> None:
        self.database = database
        self._owns_database = owns_database
        self._facet_cache: dict[str, tuple[float, tuple[int, Facets]]] = {}

    async def close(self) -> None:
        if self._owns_database:
            await self.database.dispose()

    async def refresh(self) -> None:
        """Nothing to do: a committed row is visible to the next query."""

    async def ping(self) -> None:
        async with self.database.read_engine.connect() as connection:
            await connection.execute(text(f"SELECT 1 FROM {TABLE} LIMIT 1"))

    # --- writes ---------------------------------------------------------------------

    async def apply(
        self, entries: Sequence[IndexEntry], *, session: AsyncSession | None = None
    ) -> list[bool]:
        if not entries:
            return []
        if session is not None:
            return await self._apply_in(session, TABLE, entries)
        async with self.database.transaction() as own_session:
            return await self._apply_in(own_session, TABLE, entries)

    async def _apply_in(
        self, session: AsyncSession | AsyncConnection, table: str, entries: Sequence[IndexEntry]
    ) -> list[bool]:
        statement = text(_upsert_sql(table))
        applied: list[bool] = []
        # One statement per entry: RETURNING tells which ones won the version check.
        for entry in entries:
            result = await session.execute(statement, _entry_params(entry))
            applied.append(result.first() is not None)
        return applied

    async def _apply_batch(
        self, connection: AsyncConnection, table: str, entries: Sequence[IndexEntry]
    ) -> None:
        """Many entries in one pipelined executemany (bulk loads; no per-row answer)."""
        if entries:
            await connection.execute(
                text(_upsert_sql(table).removesuffix(" RETURNING d.event_id")),
                [_entry_params(entry) for entry in entries],
            )

    async def load(self, entries: Sequence[IndexEntry]) -> None:
        """Bulk-apply entries to the live table (benchmarks, tooling), version-checked."""
        async with self.database.write_engine.begin() as connection:
            await self._apply_batch(connection, TABLE, entries)

    # --- reads ----------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchResult:
        sort = _effective_sort(query)
        async with self.database.read_engine.connect() as connection:
            # Typos: words are matched exactly (stemmed) first; only a search whose words
            # match nothing that way is matched by trigram similarity on the name. Cheaper
            # than always doing both, and the decision is the same for every page.
            fuzzy = bool(query.text) and not await self._matches_exactly(connection, query)
            statement = _Statement(query, fuzzy=fuzzy)
            page_sql, params = self._page_sql(statement, sort)
            rows = (await connection.execute(text(page_sql), params)).all()
            facets: Facets | None = None
            total: int | None = None
            if query.with_facets:
                total, facets = await self._cached_facets(connection, statement)
        hits = [self._hit(row, query, sort) for row in rows[: query.limit]]
        next_after = hits[-1].sort_key if len(rows) > query.limit and hits else None
        return SearchResult(hits=hits, next_after=next_after, total=total, facets=facets)

    async def _matches_exactly(self, connection: AsyncConnection, query: SearchQuery) -> bool:
        exists = await connection.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {TABLE} d WHERE d.listed AND d.search_vector @@ "
                f"websearch_to_tsquery('{TEXT_CONFIG}', :q))"
            ),
            {"q": query.text},
        )
        return bool(exists.scalar_one())

    async def _cached_facets(
        self, connection: AsyncConnection, statement: _Statement
    ) -> tuple[int, Facets]:
        """Facets, remembered for a few seconds when they counted many documents.

        Counting a broad result set (the unfiltered landing page: ~100k rows) costs a
        scan of all of it; the same broad counts asked again within
        ``FACET_CACHE_SECONDS`` come from memory. Narrow searches are always counted
        afresh (they are cheap), and hits are never cached.
        """
        key = _facet_key(statement)
        now = time.monotonic()
        cached = self._facet_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._facets(connection, statement)
        if found[0] >= FACET_CACHE_MIN_TOTAL:
            if len(self._facet_cache) >= FACET_CACHE_SIZE:
                self._facet_cache.clear()
            self._facet_cache[key] = (now + FACET_CACHE_SECONDS, found)
        return found

    def _page_sql(self, statement: _Statement, sort: Sort) -> tuple[str, dict[str, Any]]:
        query = statement.query
        params = dict(statement.params)
        sort_value = statement.score if sort is Sort.RELEVANCE else _SORT_VALUE[sort]
        assert sort_value is not None
        extra = []
        if statement.score is not None:
            extra.append(f"{statement.score} AS score")
        if query.near is not None:
            extra.append(f"{_HAVERSINE} AS distance_km")
        direction = "DESC" if sort in _DESCENDING else "ASC"
        keyset = ""
        if query.after is not None:
            params["after_value"], params["after_id"] = query.after
            if direction == "ASC":
                keyset = "AND (s.sort_value, s.event_id) > (:after_value, :after_id)"
            else:
                keyset = (
                    "AND (s.sort_value < :after_value"
                    " OR (s.sort_value = :after_value AND s.event_id > :after_id))"
                )
        inner = (
            f"SELECT {_DOCUMENT_COLUMNS}, {sort_value} AS sort_value"
            f"{''.join(', ' + column for column in extra)} {statement.from_where}"
        )
        params["limit"] = query.limit + 1
        order = f"s.sort_value {direction}, s.event_id"
        page = f"SELECT * FROM ({inner}) s WHERE true {keyset} ORDER BY {order} LIMIT :limit"
        highlight_query = _prefix_tsquery(query.text) if query.text else None
        if highlight_query is None:
            return page, params
        params["highlight_query"] = highlight_query
        return (
            "SELECT p.*,"
            f" ts_headline('{TEXT_CONFIG}', p.name, h.query,"
            " 'StartSel=<em>, StopSel=</em>, HighlightAll=true') AS name_highlight,"
            f" ts_headline('{TEXT_CONFIG}', p.description, h.query,"
            " 'StartSel=<em>, StopSel=</em>, MaxFragments=2, MaxWords=25, MinWords=8')"
            " AS description_highlight"
            f" FROM ({page}) p, to_tsquery('{TEXT_CONFIG}', :highlight_query) AS h(query)"
            f" ORDER BY p.sort_value {direction}, p.event_id",
            params,
        )

    def _hit(self, row: Any, query: SearchQuery, sort: Sort) -> SearchHit:
        document = _document_from_row(row)
        mapping = row._mapping
        highlights: dict[str, str] = {}
        if query.text:
            name_highlight = mapping.get("name_highlight")
            if name_highlight and "<em>" in name_highlight:
                highlights["name"] = name_highlight
            else:
                fuzzy = highlight_fuzzy(document.name, query.text)
                if fuzzy:
                    highlights["name"] = fuzzy
            description_highlight = mapping.get("description_highlight")
            if description_highlight and "<em>" in description_highlight:
                highlights["description"] = description_highlight
        sort_value = row.sort_value
        if sort in (Sort.RELEVANCE, Sort.DISTANCE, Sort.POPULARITY):
            sort_value = float(sort_value)
        return SearchHit(
            document=document,
            sort_key=(sort_value, document.event_id),
            score=mapping.get("score"),
            distance_km=mapping.get("distance_km"),
            highlights=highlights,
        )

    async def _facets(
        self, connection: AsyncConnection, statement: _Statement
    ) -> tuple[int, Facets]:
        params = dict(statement.params)
        buckets: list[tuple[str, Bucket, str]] = [
            *(("date", bucket, "d.starts_at") for bucket in date_buckets(statement.query.now)),
            *(("price", bucket, "d.price_min") for bucket in PRICE_BUCKETS),
        ]
        aggregates = []
        for index, (_, bucket, column) in enumerate(buckets):
            bounds = []
            if bucket.start is not None:
                bounds.append(f"{column} >= :bucket_start_{index}")
                params[f"bucket_start_{index}"] = bucket.start
            if bucket.end is not None:
                bounds.append(f"{column} < :bucket_end_{index}")
                params[f"bucket_end_{index}"] = bucket.end
            aggregates.append(f"count(*) FILTER (WHERE {' AND '.join(bounds)}) AS b{index}")
        sql = (
            f"SELECT GROUPING(d.category, d.city) AS grouping, d.category, d.city, "
            f"count(*) AS total, {', '.join(aggregates)} {statement.from_where} "
            "GROUP BY GROUPING SETS ((), (d.category), (d.city))"
        )
        rows = (await connection.execute(text(sql), params)).all()
        total = 0
        categories: list[FacetBucket] = []
        cities: list[FacetBucket] = []
        dates: list[FacetBucket] = []
        prices: list[FacetBucket] = []
        for row in rows:
            if row.grouping == 3:
                total = row.total
                for index, (facet, bucket, _) in enumerate(buckets):
                    target = dates if facet == "date" else prices
                    target.append(FacetBucket(bucket.key, row._mapping[f"b{index}"]))
            elif row.grouping == 1 and row.category is not None:
                categories.append(FacetBucket(row.category, row.total))
            elif row.grouping == 2 and row.city is not None:
                cities.append(FacetBucket(row.city, row.total))
        return total, Facets(category=_top(categories), city=_top(cities), date=dates, price=prices)

    async def suggest(self, prefix: str, *, limit: int) -> list[Suggestion]:
        typed = words(prefix)[:MAX_QUERY_WORDS]
        if not typed:
            return []
        # Every word but the last is complete; the last is being typed. Name (weight A) only.
        terms = [*(f"{word}:A" for word in typed[:-1]), f"{typed[-1]}:*A"]
        params: dict[str, Any] = {
            "prefix_query": " & ".join(terms),
            "typed": prefix,
            "starts_with": _like_prefix(" ".join(prefix.split()).lower()),
            "limit": limit * 5,
        }
        columns = f"SELECT event_id, name, city, starts_at, popularity FROM {TABLE} d"
        # 1. Names that start with what was typed: a range scan of the name_prefix index.
        name_starts = (
            f"{columns} WHERE d.listed AND lower(d.name) LIKE :starts_with"
            " ORDER BY lower(d.name), d.event_id LIMIT :limit"
        )
        # 2. Names with a word starting that way (any such rows: no sort of every match).
        word_starts = (
            f"{columns} WHERE d.listed AND "
            f"d.search_vector @@ to_tsquery('{TEXT_CONFIG}', :prefix_query) LIMIT :limit"
        )
        # 3. Nothing starts that way: perhaps a typo; trigram similarity on the name.
        similar = (
            f"{columns} WHERE d.listed AND d.name % :typed"
            " ORDER BY similarity(d.name, :typed) DESC, d.event_id LIMIT :limit"
        )
        rows: list[Any] = []
        async with self.database.read_engine.connect() as connection:
            for sql in (name_starts, word_starts, similar):
                found = (await connection.execute(text(sql), params)).all()
                known = {row.event_id for row in rows}
                extra = [row for row in found if row.event_id not in known]
                if sql is word_starts:
                    extra.sort(key=lambda row: (-row.popularity, row.starts_at, row.event_id))
                rows.extend(extra)
                if len({row.name.casefold() for row in rows}) >= limit or (
                    rows and sql is word_starts
                ):
                    break
        suggestions: list[Suggestion] = []
        seen: set[str] = set()
        for row in rows:
            key = row.name.casefold()
            if key in seen:
                continue
            seen.add(key)
            suggestions.append(
                Suggestion(
                    text=row.name, event_id=row.event_id, city=row.city, starts_at=row.starts_at
                )
            )
            if len(suggestions) == limit:
                break
        return suggestions

    # --- reindex --------------------------------------------------------------------

    async def rebuild(
        self, batches: AsyncIterator[Sequence[IndexEntry]], *, progress: Progress | None = None
    ) -> RebuildReport:
        """Load a new table, carry over the live one's newer rows, swap the names.

        The live table keeps serving queries and taking the consumer's writes while the
        new one loads. Then every live row whose version beats the new table's is carried
        over (writes made during the build, tombstones the source doesn't list); then,
        holding a lock that stops writers but not readers, the rows written since that
        pass are carried over too and the two tables swap names in one transaction.
        Queries that were waiting on the lock resolve the name again and read the new
        table, so none fails.
        """
        suffix = f"{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
        build = f"{TABLE}_build_{suffix}"
        retired = f"{TABLE}_old_{suffix}"
        engine = self.database.write_engine
        loaded = 0
        async with engine.connect() as connection:
            await connection.execute(text(pg_schema.create_table_v1(build)))
            await connection.commit()
            try:
                async for batch in batches:
                    await self._apply_batch(connection, build, batch)
                    await connection.commit()
                    loaded += len(batch)
                    if progress is not None:
                        outcome = progress(len(batch))
                        if outcome is not None:
                            await outcome
                for statement in pg_schema.create_indexes_v1(build):
                    await connection.execute(text(statement))
                await connection.execute(text(f"ANALYZE {build}"))
                await connection.commit()
                first_pass_started = await self._now(connection)
                carried = await self._carry_over(connection, build, since=None)
                await connection.commit()
                async with connection.begin():
                    await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
                    # EXCLUSIVE stops writers (the consumer), not readers.
                    await connection.execute(text(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE"))
                    carried += await self._carry_over(
                        connection, build, since=first_pass_started - timedelta(seconds=5)
                    )
                    await self._swap(connection, build, retired)
            except BaseException:
                await connection.rollback()
                await connection.execute(text(f"DROP TABLE IF EXISTS {build}"))
                await connection.commit()
                raise
            await connection.execute(text(f"DROP TABLE IF EXISTS {retired}"))
            await connection.commit()
        return RebuildReport(index=TABLE, loaded=loaded, carried_over=carried)

    async def _now(self, connection: AsyncConnection) -> datetime:
        now: datetime = (await connection.execute(text("SELECT clock_timestamp()"))).scalar_one()
        return now

    async def _carry_over(
        self, connection: AsyncConnection, build: str, *, since: datetime | None
    ) -> int:
        """Copy live rows into ``build`` where they are newer (the version check decides)."""
        columns = ", ".join(pg_schema.COLUMNS)
        updates = ", ".join(
            f"{column} = excluded.{column}" for column in (*_UPDATED_COLUMNS, "popularity")
        )
        where = "WHERE indexed_at >= :since" if since is not None else ""
        result = await connection.execute(
            text(
                f"INSERT INTO {build} AS d ({columns}) SELECT {columns} FROM {TABLE} {where} "
                f"ON CONFLICT (event_id) DO UPDATE SET {updates} "
                "WHERE d.version < excluded.version"
            ),
            {"since": since} if since is not None else {},
        )
        # Rows where the live table was newer (or absent from the source) replace the build's.
        return int(getattr(result, "rowcount", 0) or 0)

    async def _swap(self, connection: AsyncConnection, build: str, retired: str) -> None:
        await connection.execute(text(f"ALTER TABLE {TABLE} RENAME TO {retired}"))
        for live_name, retired_name in zip(
            pg_schema.index_names(TABLE), pg_schema.index_names(retired), strict=True
        ):
            await connection.execute(text(f"ALTER INDEX {live_name} RENAME TO {retired_name}"))
        await connection.execute(text(f"ALTER TABLE {build} RENAME TO {TABLE}"))
        for build_name, live_name in zip(
            pg_schema.index_names(build), pg_schema.index_names(TABLE), strict=True
        ):
            await connection.execute(text(f"ALTER INDEX {build_name} RENAME TO {live_name}"))

    async def count(self) -> int:
        async with self.database.read_engine.connect() as connection:
            result = await connection.execute(text(f"SELECT count(*) FROM {TABLE} WHERE listed"))
            return int(result.scalar_one())


FACET_CACHE_SECONDS = 10.0
FACET_CACHE_MIN_TOTAL = 5000
FACET_CACHE_SIZE = 1000


def _facet_key(statement: _Statement) -> str:
    """What decides facet counts: the conditions, their values, and 'now' to the minute
    (the date buckets move with it)."""
    query = statement.query
    params = {key: value for key, value in statement.params.items() if key != "now"}
    minute = query.now.replace(second=0, microsecond=0).isoformat()
    return repr((statement.from_where, sorted(params.items(), key=lambda item: item[0]), minute))


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def _top(buckets: list[FacetBucket]) -> list[FacetBucket]:
    return sorted(buckets, key=lambda bucket: (-bucket.count, bucket.key))[:TERMS_FACET_SIZE]
