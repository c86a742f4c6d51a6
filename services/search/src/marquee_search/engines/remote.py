"""The OpenSearch / Elasticsearch engine: one adapter, the same request bodies, two clients.

Everything that decides results (mappings, queries, aggregations, sorts, highlights) is
built once by the pure functions below; :class:`OpenSearchClient` and
:class:`ElasticsearchClient` only differ in how their libraries take those bodies.
Searches and writes go through an alias (``search_index``, default ``marquee-events``)
so a reindex builds a new index and swaps the alias atomically.

Every write is ``version_type=external`` with the event's version: the cluster itself
refuses (409) an entry whose version is not newer than the stored one, which we treat as
"already have something newer". Hidden events are kept as tombstone documents
(``listed: false``, filtered out of every query) rather than deleted, because a deleted
document's version is forgotten after ``index.gc_deletes`` (60 s) and a late message could
then bring it back.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_platform.errors import Unavailable
from marquee_search.domain import (
    PRICE_BUCKETS,
    TERMS_FACET_SIZE,
    Availability,
    EventDocument,
    FacetBucket,
    Facets,
    GeoPoint,
    IndexEntry,
    SearchHit,
    SearchQuery,
    SearchResult,
    Sort,
    Suggestion,
    Tombstone,
    date_buckets,
    haversine_km,
    highlight_fuzzy,
    words,
)
from marquee_search.engines.base import Progress, RebuildReport

logger = logging.getLogger(__name__)

MAX_QUERY_WORDS = 8
CARRY_OVER_MARGIN = timedelta(seconds=60)
"""Writers stamp ``indexed_at`` with their own clocks; the second carry-over pass looks
this far back so a skewed clock can't hide a write (re-copying is harmless)."""

TEXT_FIELDS = ["name^4", "tags^2", "category^2", "description", "venue_name", "city"]


# --- bodies (the same for both clients) ---------------------------------------------------


def index_body() -> dict[str, Any]:
    return {
        "settings": {"number_of_shards": 1},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "event_id": {"type": "keyword"},
                "version": {"type": "long"},
                "listed": {"type": "boolean"},
                "status": {"type": "keyword"},
                "availability": {"type": "keyword"},
                "name": {
                    "type": "text",
                    "analyzer": "english",
                    "fields": {"suggest": {"type": "search_as_you_type"}},
                },
                "description": {"type": "text", "analyzer": "english"},
                "category": {"type": "keyword"},
                "tags": {"type": "text", "analyzer": "english"},
                "image_url": {"type": "keyword", "index": False},
                "starts_at": {"type": "date"},
                "ends_at": {"type": "date"},
                "timezone": {"type": "keyword"},
                "venue_id": {"type": "keyword"},
                "venue_name": {"type": "text"},
                "city": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "city_key": {"type": "keyword"},
                "country": {"type": "keyword"},
                "location": {"type": "geo_point"},
                "lat": {"type": "double", "index": False},
                "lon": {"type": "double", "index": False},
                "price_min": {"type": "long"},
                "price_max": {"type": "long"},
                "currency": {"type": "keyword"},
                "sale_starts_at": {"type": "date"},
                "sale_ends_at": {"type": "date"},
                "high_demand": {"type": "boolean"},
                "organizer_id": {"type": "keyword"},
                "popularity": {"type": "double"},
                "updated_at": {"type": "date"},
                "indexed_at": {"type": "date"},
            },
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds") if moment else None


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def document_source(entry: IndexEntry, *, indexed_at: datetime) -> dict[str, Any]:
    if isinstance(entry, Tombstone):
        return {
            "event_id": entry.event_id,
            "version": entry.version,
            "listed": False,
            "status": entry.status,
            "indexed_at": _iso(indexed_at),
        }
    source: dict[str, Any] = {
        "event_id": entry.event_id,
        "version": entry.version,
        "listed": True,
        "status": entry.status,
        "availability": entry.availability.value,
        "name": entry.name,
        "description": entry.description,
        "category": entry.category,
        "tags": list(entry.tags),
        "image_url": entry.image_url,
        "starts_at": _iso(entry.starts_at),
        "ends_at": _iso(entry.ends_at),
        "timezone": entry.timezone,
        "venue_id": entry.venue_id,
        "venue_name": entry.venue_name,
        "city": entry.city,
        "city_key": entry.city_key,
        "country": entry.country,
        "lat": entry.lat,
        "lon": entry.lon,
        "price_min": entry.price_min,
        "price_max": entry.price_max,
        "currency": entry.currency,
        "sale_starts_at": _iso(entry.sale_starts_at),
        "sale_ends_at": _iso(entry.sale_ends_at),
        "high_demand": entry.high_demand,
        "organizer_id": entry.organizer_id,
        "popularity": entry.popularity,
        "updated_at": _iso(entry.updated_at),
        "indexed_at": _iso(indexed_at),
    }
    if entry.has_location:
        source["location"] = {"lat": entry.lat, "lon": entry.lon}
    return {key: value for key, value in source.items() if value is not None}


def document_from_source(source: dict[str, Any]) -> EventDocument:
    starts_at = _parse_time(source["starts_at"])
    assert starts_at is not None
    return EventDocument(
        event_id=source["event_id"],
        version=source["version"],
        status=source["status"],
        name=source.get("name", ""),
        description=source.get("description", ""),
        category=source.get("category", ""),
        tags=tuple(source.get("tags", ())),
        image_url=source.get("image_url"),
        starts_at=starts_at,
        ends_at=_parse_time(source.get("ends_at")),
        timezone=source.get("timezone", "UTC"),
        venue_id=source.get("venue_id"),
        venue_name=source.get("venue_name"),
        city=source.get("city"),
        country=source.get("country"),
        lat=source.get("lat"),
        lon=source.get("lon"),
        price_min=source.get("price_min", 0),
        price_max=source.get("price_max", 0),
        currency=source.get("currency", ""),
        sale_starts_at=_parse_time(source.get("sale_starts_at")),
        sale_ends_at=_parse_time(source.get("sale_ends_at")),
        high_demand=source.get("high_demand", False),
        organizer_id=source.get("organizer_id"),
        popularity=float(source.get("popularity", 0.0)),
        updated_at=_parse_time(source.get("updated_at")),
    )


def _effective_sort(query: SearchQuery) -> Sort:
    return Sort.DATE if query.sort is Sort.RELEVANCE and not query.text else query.sort


def _sort_clause(query: SearchQuery, sort: Sort) -> list[Any]:
    tiebreak = {"event_id": "asc"}
    if sort is Sort.RELEVANCE:
        return [{"_score": "desc"}, tiebreak]
    if sort is Sort.DATE:
        return [{"starts_at": "asc"}, tiebreak]
    if sort is Sort.PRICE:
        return [{"price_min": "asc"}, tiebreak]
    if sort is Sort.POPULARITY:
        return [{"popularity": "desc"}, tiebreak]
    assert query.near is not None
    return [
        {
            "_geo_distance": {
                "location": {"lat": query.near.lat, "lon": query.near.lon},
                "order": "asc",
                "unit": "km",
                "distance_type": "arc",
            }
        },
        tiebreak,
    ]


def _filters(query: SearchQuery) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [{"term": {"listed": True}}]
    if query.category:
        filters.append({"term": {"category": query.category}})
    if query.city:
        filters.append({"term": {"city_key": query.city}})
    starts: dict[str, Any] = {}
    if query.starts_from:
        starts["gte"] = _iso(query.starts_from)
    if query.starts_before:
        starts["lt"] = _iso(query.starts_before)
    if starts:
        filters.append({"range": {"starts_at": starts}})
    if query.price_min is not None:
        filters.append({"range": {"price_max": {"gte": query.price_min}}})
    if query.price_max is not None:
        filters.append({"range": {"price_min": {"lte": query.price_max}}})
    if query.only_available:
        filters.append({"term": {"availability": Availability.ON_SALE.value}})
        filters.append(
            {
                "bool": {
                    "should": [
                        {"bool": {"must_not": {"exists": {"field": "sale_ends_at"}}}},
                        {"range": {"sale_ends_at": {"gt": _iso(query.now)}}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    if query.near is not None and query.radius_km is not None:
        filters.append(
            {
                "geo_distance": {
                    "distance": f"{query.radius_km}km",
                    "location": {"lat": query.near.lat, "lon": query.near.lon},
                }
            }
        )
    return filters


def _aggregations(query: SearchQuery) -> dict[str, Any]:
    def bounds(start: Any, end: Any, convert: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if start is not None:
            found["from"] = convert(start)
        if end is not None:
            found["to"] = convert(end)
        return found

    return {
        "category": {"terms": {"field": "category", "size": TERMS_FACET_SIZE}},
        "city": {"terms": {"field": "city.raw", "size": TERMS_FACET_SIZE}},
        "date": {
            "date_range": {
                "field": "starts_at",
                "ranges": [
                    {"key": bucket.key, **bounds(bucket.start, bucket.end, _iso)}
                    for bucket in date_buckets(query.now)
                ],
            }
        },
        "price": {
            "range": {
                "field": "price_min",
                "ranges": [
                    {"key": bucket.key, **bounds(bucket.start, bucket.end, int)}
                    for bucket in PRICE_BUCKETS
                ],
            }
        },
    }


def search_body(query: SearchQuery) -> dict[str, Any]:
    """The request body for ``query``: bool filters, one fuzzy multi_match per word (each
    word must match some field, allowing typos), sort + search_after, aggregations."""
    sort = _effective_sort(query)
    boolean: dict[str, Any] = {"filter": _filters(query)}
    if query.text:
        typed = words(query.text)[:MAX_QUERY_WORDS]
        boolean["must"] = [
            {
                "multi_match": {
                    "query": word,
                    "fields": TEXT_FIELDS,
                    "fuzziness": "AUTO",
                    "zero_terms_query": "all",
                }
            }
            for word in typed
        ] or [{"match_all": {}}]
    body: dict[str, Any] = {
        "size": query.limit + 1,
        "query": {"bool": boolean},
        "sort": _sort_clause(query, sort),
        "track_total_hits": query.with_facets,
    }
    if query.after is not None:
        value, event_id = query.after
        body["search_after"] = [
            _millis(value) if isinstance(value, datetime) else value,
            event_id,
        ]
    if query.text:
        body["highlight"] = {
            "pre_tags": ["<em>"],
            "post_tags": ["</em>"],
            "fields": {
                "name": {"number_of_fragments": 0},
                "description": {"fragment_size": 120, "number_of_fragments": 2},
            },
        }
    if query.with_facets:
        body["aggs"] = _aggregations(query)
    return body


def suggest_body(prefix: str, *, size: int) -> dict[str, Any]:
    return {
        "size": size,
        "_source": ["event_id", "name", "city", "starts_at"],
        "query": {
            "bool": {
                "filter": [{"term": {"listed": True}}],
                "must": [
                    {
                        "multi_match": {
                            "query": prefix,
                            "type": "bool_prefix",
                            "operator": "and",
                            "fields": [
                                "name.suggest",
                                "name.suggest._2gram",
                                "name.suggest._3gram",
                            ],
                        }
                    }
                ],
            }
        },
        "sort": [{"_score": "desc"}, {"popularity": "desc"}, {"event_id": "asc"}],
    }


# --- the two clients ------------------------------------------------------------------


class VersionConflict(Exception):
    """The stored document's version is the same or newer (HTTP 409)."""


class MissingIndex(Exception):
    """The index or alias does not exist (HTTP 404)."""


Refresh = Literal["false", "wait_for", "true"]


class SearchClient(Protocol):
    """What the adapter needs from a client; bodies are passed through unchanged."""

    async def info(self) -> dict[str, Any]: ...
    async def index(
        self, index: str, *, id: str, source: dict[str, Any], version: int, refresh: Refresh
    ) -> None: ...
    async def bulk(self, operations: list[dict[str, Any]], *, refresh: Refresh) -> Any: ...
    async def search(self, index: str, body: dict[str, Any]) -> Any: ...
    async def create_index(self, index: str, body: dict[str, Any]) -> None: ...
    async def delete_index(self, index: str) -> None: ...
    async def refresh(self, index: str) -> None: ...
    async def alias_indices(self, alias: str) -> list[str]: ...
    async def update_aliases(self, actions: list[dict[str, Any]]) -> None: ...
    async def close(self) -> None: ...


class OpenSearchClient:
    def __init__(self, url: str) -> None:
        from opensearchpy import AsyncOpenSearch
        from opensearchpy.exceptions import ConflictError, NotFoundError

        self._client = AsyncOpenSearch(hosts=[url], timeout=30)
        self._conflict = ConflictError
        self._not_found = NotFoundError

    async def info(self) -> dict[str, Any]:
        return dict(await self._client.info())

    async def index(
        self, index: str, *, id: str, source: dict[str, Any], version: int, refresh: Refresh
    ) -> None:
        try:
            await self._client.index(
                index=index,
                id=id,
                body=source,
                version=version,
                version_type="external",
                refresh=refresh,
            )
        except self._conflict as error:
            raise VersionConflict(str(error)) from None

    async def bulk(self, operations: list[dict[str, Any]], *, refresh: Refresh) -> Any:
        return await self._client.bulk(body=operations, refresh=refresh)

    async def search(self, index: str, body: dict[str, Any]) -> Any:
        return await self._client.search(index=index, body=body)

    async def create_index(self, index: str, body: dict[str, Any]) -> None:
        await self._client.indices.create(index=index, body=body)

    async def delete_index(self, index: str) -> None:
        await self._client.indices.delete(index=index)

    async def refresh(self, index: str) -> None:
        await self._client.indices.refresh(index=index)

    async def alias_indices(self, alias: str) -> list[str]:
        try:
            return sorted(await self._client.indices.get_alias(name=alias))
        except self._not_found:
            return []

    async def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        await self._client.indices.update_aliases(body={"actions": actions})

    async def close(self) -> None:
        await self._client.close()


class ElasticsearchClient:
    def __init__(self, url: str) -> None:
        from elasticsearch import AsyncElasticsearch, ConflictError, NotFoundError

        self._client = AsyncElasticsearch(hosts=[url], request_timeout=30)
        self._conflict = ConflictError
        self._not_found = NotFoundError

    async def info(self) -> dict[str, Any]:
        return dict((await self._client.info()).body)

    async def index(
        self, index: str, *, id: str, source: dict[str, Any], version: int, refresh: Refresh
    ) -> None:
        try:
            await self._client.index(
                index=index,
                id=id,
                document=source,
                version=version,
                version_type="external",
                refresh=refresh,
            )
        except self._conflict as error:
            raise VersionConflict(str(error)) from None

    async def bulk(self, operations: list[dict[str, Any]], *, refresh: Refresh) -> Any:
        return (await self._client.bulk(operations=operations, refresh=refresh)).body

    async def search(self, index: str, body: dict[str, Any]) -> Any:
        return (await self._client.search(index=index, body=body)).body

    async def create_index(self, index: str, body: dict[str, Any]) -> None:
        await self._client.indices.create(
            index=index, settings=body["settings"], mappings=body["mappings"]
        )

    async def delete_index(self, index: str) -> None:
        await self._client.indices.delete(index=index)

    async def refresh(self, index: str) -> None:
        await self._client.indices.refresh(index=index)

    async def alias_indices(self, alias: str) -> list[str]:
        try:
            return sorted((await self._client.indices.get_alias(name=alias)).body)
        except self._not_found:
            return []

    async def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        await self._client.indices.update_aliases(actions=actions)

    async def close(self) -> None:
        await self._client.close()


async def detect_client(url: str) -> Literal["opensearch", "elasticsearch"]:
    """Ask the cluster what it is (``GET /``: OpenSearch says so in version.distribution)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url.rstrip("/") + "/")
        response.raise_for_status()
        version = response.json().get("version", {})
    return "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"


# --- the engine -------------------------------------------------------------------------


class RemoteSearchEngine:
    """The search engine over an OpenSearch or Elasticsearch cluster, via an alias."""

    name = "opensearch/elasticsearch"

    def __init__(self, client: SearchClient, *, alias: str, refresh: Refresh = "false") -> None:
        self.client = client
        self.alias = alias
        self._refresh: Refresh = refresh
        self._ready = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        alias: str,
        client: Literal["auto", "opensearch", "elasticsearch"] = "auto",
        refresh: Refresh = "false",
    ) -> RemoteSearchEngine:
        return cls(_LazyClient(url, client), alias=alias, refresh=refresh)

    async def close(self) -> None:
        await self.client.close()

    async def ensure_index(self) -> None:
        """Create a first index behind the alias if there is none (first start)."""
        if self._ready:
            return
        if not await self.client.alias_indices(self.alias):
            name = self._new_index_name()
            await self.client.create_index(name, index_body())
            await self.client.update_aliases([{"add": {"index": name, "alias": self.alias}}])
        self._ready = True

    def _new_index_name(self) -> str:
        return f"{self.alias}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"

    async def refresh(self) -> None:
        await self.client.refresh(self.alias)

    async def ping(self) -> None:
        await self.client.info()

    # --- writes -----------------------------------------------------------------------

    async def apply(
        self, entries: Sequence[IndexEntry], *, session: AsyncSession | None = None
    ) -> list[bool]:
        await self.ensure_index()
        applied: list[bool] = []
        for entry in entries:
            try:
                await self.client.index(
                    self.alias,
                    id=entry.event_id,
                    source=document_source(entry, indexed_at=datetime.now(UTC)),
                    version=entry.version,
                    refresh=self._refresh,
                )
            except VersionConflict:
                applied.append(False)  # a newer or equal version is stored: nothing to do
            else:
                applied.append(True)
        return applied

    async def _bulk(self, index: str, sources: Sequence[dict[str, Any]]) -> int:
        """Index ``sources`` with external versions; returns how many were applied."""
        if not sources:
            return 0
        operations: list[dict[str, Any]] = []
        for source in sources:
            operations.append(
                {
                    "index": {
                        "_index": index,
                        "_id": source["event_id"],
                        "version": source["version"],
                        "version_type": "external",
                    }
                }
            )
            operations.append(source)
        response = await self.client.bulk(operations, refresh=self._refresh)
        applied = 0
        for item in response.get("items", []):
            outcome = next(iter(item.values()))
            status = outcome.get("status", 500)
            if status < 300:
                applied += 1
            elif status != 409:
                raise RuntimeError(f"bulk indexing failed: {outcome.get('error')}")
        return applied

    async def load(self, entries: Sequence[IndexEntry]) -> None:
        await self.ensure_index()
        now = datetime.now(UTC)
        await self._bulk(self.alias, [document_source(entry, indexed_at=now) for entry in entries])

    # --- reads ------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchResult:
        await self.ensure_index()
        sort = _effective_sort(query)
        response = await self._search(search_body(query))
        raw_hits = response["hits"]["hits"]
        hits = [self._hit(raw, query, sort) for raw in raw_hits[: query.limit]]
        next_after = hits[-1].sort_key if len(raw_hits) > query.limit and hits else None
        total = None
        facets = None
        if query.with_facets:
            total = int(response["hits"]["total"]["value"])
            facets = _facets_from(response.get("aggregations", {}))
        return SearchResult(hits=hits, next_after=next_after, total=total, facets=facets)

    async def _search(self, body: dict[str, Any]) -> Any:
        try:
            return await self.client.search(self.alias, body)
        except (httpx.HTTPError, OSError) as error:
            raise Unavailable("The search cluster did not answer; retry shortly.") from error

    def _hit(self, raw: dict[str, Any], query: SearchQuery, sort: Sort) -> SearchHit:
        document = document_from_source(raw["_source"])
        sort_values = raw["sort"]
        value: Any = sort_values[0]
        if sort is Sort.DATE:
            value = _parse_time(value)
        elif sort is Sort.PRICE:
            value = int(value)
        else:
            value = float(value)
        distance = None
        if query.near is not None and document.lat is not None and document.lon is not None:
            distance = (
                float(sort_values[0])
                if sort is Sort.DISTANCE
                else haversine_km(query.near, GeoPoint(document.lat, document.lon))
            )
        highlights: dict[str, str] = {}
        found = raw.get("highlight", {})
        if found.get("name"):
            highlights["name"] = found["name"][0]
        elif query.text:
            fuzzy = highlight_fuzzy(document.name, query.text)
            if fuzzy:
                highlights["name"] = fuzzy
        if found.get("description"):
            highlights["description"] = " … ".join(found["description"])
        return SearchHit(
            document=document,
            sort_key=(value, document.event_id),
            score=raw.get("_score") if query.text else None,
            distance_km=distance,
            highlights=highlights,
        )

    async def suggest(self, prefix: str, *, limit: int) -> list[Suggestion]:
        await self.ensure_index()
        if not words(prefix):
            return []
        response = await self._search(suggest_body(prefix, size=limit * 3))
        suggestions: list[Suggestion] = []
        seen: set[str] = set()
        for raw in response["hits"]["hits"]:
            source = raw["_source"]
            key = source["name"].casefold()
            if key in seen:
                continue
            seen.add(key)
            starts_at = _parse_time(source["starts_at"])
            assert starts_at is not None
            suggestions.append(
                Suggestion(
                    text=source["name"],
                    event_id=source["event_id"],
                    city=source.get("city"),
                    starts_at=starts_at,
                )
            )
            if len(suggestions) == limit:
                break
        return suggestions

    # --- reindex ----------------------------------------------------------------------

    async def rebuild(
        self, batches: AsyncIterator[Sequence[IndexEntry]], *, progress: Progress | None = None
    ) -> RebuildReport:
        """Build a new index, carry over the live one's newer entries, swap the alias.

        Queries read the alias, which points at the complete old index until one atomic
        alias update points it at the complete new one. Writes made during the build land
        in the old index and are carried over twice: once before the swap (everything,
        version-checked) and once after it (what was written since the first pass).
        """
        await self.ensure_index()
        live = await self.client.alias_indices(self.alias)
        build = self._new_index_name()
        await self.client.create_index(build, index_body())
        loaded = 0
        try:
            started = datetime.now(UTC)
            async for batch in batches:
                await self._bulk(
                    build, [document_source(entry, indexed_at=started) for entry in batch]
                )
                loaded += len(batch)
                if progress is not None:
                    outcome = progress(len(batch))
                    if outcome is not None:
                        await outcome
            first_pass = datetime.now(UTC)
            carried = await self._carry_over(live, build, since=None)
            await self.client.refresh(build)
            actions: list[dict[str, Any]] = [
                {"remove": {"index": index, "alias": self.alias}} for index in live
            ]
            actions.append({"add": {"index": build, "alias": self.alias}})
            await self.client.update_aliases(actions)
        except BaseException:
            await self.client.delete_index(build)
            raise
        carried += await self._carry_over(live, build, since=first_pass - CARRY_OVER_MARGIN)
        await self.client.refresh(build)
        for index in live:
            await self.client.delete_index(index)
        return RebuildReport(index=build, loaded=loaded, carried_over=carried)

    async def _carry_over(self, sources: list[str], target: str, *, since: datetime | None) -> int:
        carried = 0
        for source_index in sources:
            await self.client.refresh(source_index)
            query: dict[str, Any] = (
                {"range": {"indexed_at": {"gte": _iso(since)}}}
                if since is not None
                else {"match_all": {}}
            )
            after: list[Any] | None = None
            while True:
                body: dict[str, Any] = {
                    "size": 1000,
                    "query": query,
                    "sort": [{"event_id": "asc"}],
                }
                if after is not None:
                    body["search_after"] = after
                hits = (await self.client.search(source_index, body))["hits"]["hits"]
                if not hits:
                    break
                carried += await self._bulk(target, [hit["_source"] for hit in hits])
                after = hits[-1]["sort"]
        return carried

    async def count(self) -> int:
        await self.ensure_index()
        response = await self._search(
            {"size": 0, "query": {"term": {"listed": True}}, "track_total_hits": True}
        )
        return int(response["hits"]["total"]["value"])


def _facets_from(aggregations: dict[str, Any]) -> Facets:
    def terms(name: str) -> list[FacetBucket]:
        buckets = aggregations.get(name, {}).get("buckets", [])
        return [FacetBucket(str(bucket["key"]), int(bucket["doc_count"])) for bucket in buckets]

    def ranges(name: str) -> list[FacetBucket]:
        buckets = aggregations.get(name, {}).get("buckets", [])
        if isinstance(buckets, dict):
            buckets = [{"key": key, **value} for key, value in buckets.items()]
        return [FacetBucket(str(bucket["key"]), int(bucket["doc_count"])) for bucket in buckets]

    by_key = {bucket.key: bucket for bucket in ranges("price")}
    price = [by_key.get(bucket.key, FacetBucket(bucket.key, 0)) for bucket in PRICE_BUCKETS]
    return Facets(category=terms("category"), city=terms("city"), date=ranges("date"), price=price)


class _LazyClient:
    """Chooses and builds the client on first use (``auto`` asks the cluster)."""

    def __init__(self, url: str, kind: Literal["auto", "opensearch", "elasticsearch"]) -> None:
        self._url = url
        self._kind = kind
        self._client: SearchClient | None = None

    async def _get(self) -> SearchClient:
        if self._client is None:
            kind = self._kind if self._kind != "auto" else await detect_client(self._url)
            self._client = (
                OpenSearchClient(self._url)
                if kind == "opensearch"
                else ElasticsearchClient(self._url)
            )
        return self._client

    async def info(self) -> dict[str, Any]:
        return await (await self._get()).info()

    async def index(
        self, index: str, *, id: str, source: dict[str, Any], version: int, refresh: Refresh
    ) -> None:
        await (await self._get()).index(
            index, id=id, source=source, version=version, refresh=refresh
        )

    async def bulk(self, operations: list[dict[str, Any]], *, refresh: Refresh) -> Any:
        return await (await self._get()).bulk(operations, refresh=refresh)

    async def search(self, index: str, body: dict[str, Any]) -> Any:
        return await (await self._get()).search(index, body)

    async def create_index(self, index: str, body: dict[str, Any]) -> None:
        await (await self._get()).create_index(index, body)

    async def delete_index(self, index: str) -> None:
        await (await self._get()).delete_index(index)

    async def refresh(self, index: str) -> None:
        await (await self._get()).refresh(index)

    async def alias_indices(self, alias: str) -> list[str]:
        return await (await self._get()).alias_indices(alias)

    async def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        await (await self._get()).update_aliases(actions)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
