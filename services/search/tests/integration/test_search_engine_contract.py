"""One contract, two engines: every test runs on PostgreSQL and on OpenSearch (osmem)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from marquee_search.domain import GeoPoint, IndexEntry, SearchQuery, SearchResult, Sort
from marquee_search.engines import SearchEngine
from marquee_testing.search import NOW, entry


def query(**fields: Any) -> SearchQuery:
    return SearchQuery(now=NOW, **fields)


def ids(result: SearchResult) -> list[str]:
    return [hit.document.event_id for hit in result.hits]


async def load(engine: SearchEngine, entries: Sequence[IndexEntry]) -> None:
    assert all(await engine.apply(entries))
    await engine.refresh()


async def test_text_search_tolerates_a_typo_and_highlights_the_match(
    engine: SearchEngine,
) -> None:
    await load(
        engine,
        [
            entry("jazz", name="Midnight Jazz Night", description="Saxophones until dawn."),
            entry("rock", name="Stadium Rock Anthems", description="Guitars, loud."),
            entry("opera", name="Gala Opera Evening", description="A night of jazz standards."),
        ],
    )
    exact = await engine.search(query(text="jazz"))
    assert ids(exact)[0] == "jazz"  # the name outranks the description
    assert set(ids(exact)) == {"jazz", "opera"}
    assert "<em>Jazz</em>" in exact.hits[0].highlights["name"]

    typo = await engine.search(query(text="jaz nigt"))
    assert ids(typo)[0] == "jazz"
    assert "rock" not in ids(typo)
    assert "<em>" in typo.hits[0].highlights["name"]

    assert ids(await engine.search(query(text="stadum"))) == ["rock"]
    assert ids(await engine.search(query(text="zzzqqq"))) == []


async def test_a_text_without_words_matches_like_no_text(engine: SearchEngine) -> None:
    await load(engine, [entry("jazz", name="Midnight Jazz Night"), entry("rock", name="Rock")])
    for text in ("!", "🎸", "<->", "\\", "%"):
        result = await engine.search(query(text=text, with_facets=True))
        assert set(ids(result)) == {"jazz", "rock"}, text
        assert result.total == 2, text


async def test_filters_category_city_date_price_and_availability(engine: SearchEngine) -> None:
    await load(
        engine,
        [
            entry("paris-music", city="Paris", category="Concert", price_min=1000, price_max=3000),
            entry("paris-theatre", city="Paris", category="theatre", price_min=8000),
            entry("lyon-music", city="Lyon", starts_at=NOW + timedelta(days=40)),
            entry("london-free", city="London", price_min=0, price_max=0),
            entry("berlin-soon", city="Berlin", status="published"),
            entry("paris-sold-out", city="Paris", status="sold_out"),
            entry(
                "paris-sale-over",
                city="Paris",
                sale_ends_at=(NOW - timedelta(days=1)).isoformat(),
            ),
        ],
    )
    assert set(ids(await engine.search(query(category="theatre")))) == {"paris-theatre"}
    assert "paris-music" in ids(await engine.search(query(category="concert")))
    paris = set(ids(await engine.search(query(city="paris"))))
    assert paris == {"paris-music", "paris-theatre", "paris-sold-out", "paris-sale-over"}
    later = await engine.search(query(starts_from=NOW + timedelta(days=30)))
    assert ids(later) == ["lyon-music"]
    before = await engine.search(query(starts_before=NOW + timedelta(days=30)))
    assert "lyon-music" not in ids(before)
    assert len(ids(before)) == 6
    # An event matches a price range when some of its tickets fall inside it.
    cheap = set(ids(await engine.search(query(price_max=1500))))
    assert cheap == {"paris-music", "london-free"}
    dear = set(ids(await engine.search(query(price_min=7000))))
    assert dear == {"paris-theatre"}
    available = set(ids(await engine.search(query(only_available=True, limit=50))))
    assert available == {"paris-music", "paris-theatre", "lyon-music", "london-free"}


async def test_geo_radius_and_distance_sort(engine: SearchEngine) -> None:
    await load(
        engine,
        [entry(f"in-{city.lower()}", city=city) for city in ("Paris", "Lyon", "London", "Berlin")],
    )
    paris = GeoPoint(48.85, 2.35)
    near = await engine.search(query(near=paris, radius_km=50))
    assert ids(near) == ["in-paris"]
    assert near.hits[0].distance_km is not None
    assert near.hits[0].distance_km < 5
    wide = await engine.search(query(near=paris, radius_km=600, sort=Sort.DISTANCE))
    assert ids(wide) == ["in-paris", "in-london", "in-lyon"]  # 344 km, 392 km
    distances = [hit.distance_km for hit in wide.hits]
    assert distances == sorted(distances)  # type: ignore[type-var]


async def test_facets_count_the_whole_result_set(engine: SearchEngine) -> None:
    await load(
        engine,
        [
            entry("a", category="concert", city="Paris", price_min=0, price_max=0),
            entry("b", category="concert", city="Paris", price_min=1500),
            entry("c", category="concert", city="Lyon", starts_at=NOW + timedelta(days=3)),
            entry("d", category="comedy", city="Lyon", starts_at=NOW + timedelta(days=90)),
            entry("e", category="sport", city="London", price_min=12000),
        ],
    )
    result = await engine.search(query(with_facets=True, limit=2))
    assert result.total == 5
    assert len(result.hits) == 2
    assert result.facets is not None
    facets = result.facets
    assert [(b.key, b.count) for b in facets.category] == [
        ("concert", 3),
        ("comedy", 1),
        ("sport", 1),
    ]
    assert [(b.key, b.count) for b in facets.city] == [("Lyon", 2), ("Paris", 2), ("London", 1)]
    assert {b.key: b.count for b in facets.date} == {
        "past": 0,
        "this_week": 1,
        "this_month": 3,
        "later": 1,
    }
    assert {b.key: b.count for b in facets.price} == {
        "free": 1,
        "under_20": 1,
        "20_to_50": 2,
        "50_to_100": 0,
        "100_and_more": 1,
    }
    music = await engine.search(query(with_facets=True, category="concert"))
    assert music.total == 3
    assert music.facets is not None
    assert [(b.key, b.count) for b in music.facets.category] == [("concert", 3)]


async def test_sorts(engine: SearchEngine) -> None:
    await load(
        engine,
        [
            entry("late-cheap", starts_at=NOW + timedelta(days=20), price_min=500),
            entry("soon-dear", starts_at=NOW + timedelta(days=2), price_min=9000),
            entry("mid-mid", starts_at=NOW + timedelta(days=9), price_min=3000),
        ],
    )
    by_date = await engine.search(query(sort=Sort.DATE))
    assert ids(by_date) == ["soon-dear", "mid-mid", "late-cheap"]
    by_price = await engine.search(query(sort=Sort.PRICE))
    assert ids(by_price) == ["late-cheap", "mid-mid", "soon-dear"]
    # Popularity is a placeholder (0 everywhere): ties fall back to the event id.
    by_popularity = await engine.search(query(sort=Sort.POPULARITY))
    assert ids(by_popularity) == ["late-cheap", "mid-mid", "soon-dear"]
    # Without free text "relevance" has nothing to rank by: soonest first.
    assert ids(await engine.search(query(sort=Sort.RELEVANCE))) == ids(by_date)


@pytest.mark.parametrize("sort", [Sort.RELEVANCE, Sort.DATE, Sort.PRICE, Sort.DISTANCE])
async def test_cursor_pages_cover_everything_once(
    engine: SearchEngine, sort: Sort, request: pytest.FixtureRequest
) -> None:
    if sort is Sort.RELEVANCE and engine.name != "postgresql":
        # Real OpenSearch/Elasticsearch scores are float32 end to end, so search_after
        # [score, id] resumes exactly; osmem-server ranks with float64 scores but reports
        # them rounded to float32, so no hit ever equals the score we send back.
        request.applymarker(
            pytest.mark.xfail(reason="osmem-server: search_after on _score", strict=True)
        )
    cities = ["Paris", "Lyon", "London"]
    await load(
        engine,
        [
            entry(
                f"e{n:02d}",
                name=f"Jazz Festival {'Night' if n % 2 else 'Day'} {n}",
                city=cities[n % 3],
                # Repeated sort values: the event id must break the ties.
                starts_at=NOW + timedelta(days=n % 4 + 1),
                price_min=1000 * (n % 3),
            )
            for n in range(23)
        ],
    )
    base: dict[str, Any] = {"sort": sort, "limit": 5}
    if sort is Sort.RELEVANCE:
        base["text"] = "jazz night"
    if sort is Sort.DISTANCE:
        base.update(near=GeoPoint(48.85, 2.35), radius_km=1000)
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await engine.search(query(**base, after=after))
        seen.extend(ids(page))
        after = page.next_after
        if after is None:
            break
    everything = ids(await engine.search(query(**{**base, "limit": 100})))
    assert len(seen) == len(set(seen)), "a document appeared on two pages"
    assert seen == everything
    expected = 11 if sort is Sort.RELEVANCE else 23  # odd numbers are "Night"
    assert len(seen) == expected


async def test_late_or_repeated_message_never_overwrites_newer_data(
    engine: SearchEngine,
) -> None:
    assert await engine.apply([entry("e1", version=3, name="Version Three")]) == [True]
    assert await engine.apply([entry("e1", version=2, name="Version Two")]) == [False]
    assert await engine.apply([entry("e1", version=3, name="Version Three again")]) == [False]
    await engine.refresh()
    [hit] = (await engine.search(query())).hits
    assert hit.document.name == "Version Three"
    assert hit.document.version == 3
    assert await engine.apply([entry("e1", version=4, name="Version Four")]) == [True]
    await engine.refresh()
    [hit] = (await engine.search(query())).hits
    assert hit.document.name == "Version Four"


@pytest.mark.parametrize(
    "hiding",
    [{"status": "cancelled"}, {"status": "draft"}, {"deleted": True}],
    ids=["cancelled", "draft", "deleted"],
)
async def test_hidden_events_leave_and_a_stale_message_cannot_bring_them_back(
    engine: SearchEngine, hiding: dict[str, Any]
) -> None:
    await load(engine, [entry("e1", version=1, name="Harbour Lights"), entry("e2", version=1)])
    assert set(ids(await engine.search(query()))) == {"e1", "e2"}
    await load(engine, [entry("e1", version=2, name="Harbour Lights", **hiding)])
    assert ids(await engine.search(query())) == ["e2"]
    assert ids(await engine.search(query(text="harbour"))) == []
    assert await engine.apply([entry("e1", version=1, name="Harbour Lights")]) == [False]
    await engine.refresh()
    assert ids(await engine.search(query())) == ["e2"]
    assert [s.event_id for s in await engine.suggest("harb", limit=5)] == []
    # A newer published version brings it back legitimately.
    await load(engine, [entry("e1", version=3, name="Harbour Lights")])
    assert set(ids(await engine.search(query()))) == {"e1", "e2"}


async def test_a_draft_never_enters(engine: SearchEngine) -> None:
    await load(engine, [entry("draft", status="draft"), entry("shown")])
    assert ids(await engine.search(query())) == ["shown"]
    result = await engine.search(query(with_facets=True))
    assert result.total == 1


async def test_suggest_completes_names_as_you_type(engine: SearchEngine) -> None:
    await load(
        engine,
        [
            entry("a", name="Jazz on the Lake"),
            entry("b", name="Jazz on the Lake", starts_at=NOW + timedelta(days=30)),
            entry("c", name="Jazzy Brunch"),
            entry("d", name="Rock the Docks"),
        ],
    )
    texts = [s.text for s in await engine.suggest("jaz", limit=5)]
    assert set(texts) == {"Jazz on the Lake", "Jazzy Brunch"}  # one entry per name
    assert [s.text for s in await engine.suggest("jazz on the la", limit=5)] == ["Jazz on the Lake"]
    assert [s.text for s in await engine.suggest("rock", limit=5)] == ["Rock the Docks"]
    assert await engine.suggest("qqqq", limit=5) == []


async def test_reindex_swaps_in_a_fresh_index_while_queries_keep_working(
    engine: SearchEngine,
) -> None:
    count = 300
    await load(engine, [entry(f"e{n:03d}", name=f"Show {n}") for n in range(count)])
    # The source is one version behind on e000 (changed while the source was read) and
    # doesn't know the cancellation of e001: the rebuild must keep both newer entries.
    source_entries = [entry(f"e{n:03d}", name=f"Show {n}") for n in range(count)]
    source_entries.append(entry("e300", name="Show 300"))
    await load(
        engine,
        [entry("e000", version=2, name="Renamed"), entry("e001", version=2, status="cancelled")],
    )
    expected_total = count  # 300 - cancelled e001 + new e300

    stop = asyncio.Event()
    totals: list[int] = []
    failures: list[BaseException] = []

    async def keep_querying() -> None:
        while not stop.is_set():
            try:
                result = await engine.search(query(with_facets=True, limit=5))
            except Exception as error:  # the test fails if any query fails
                failures.append(error)
                return
            assert result.total is not None
            totals.append(result.total)
            await asyncio.sleep(0)

    async def slow_source() -> AsyncIterator[Sequence[IndexEntry]]:
        for start in range(0, len(source_entries), 50):
            yield source_entries[start : start + 50]
            # The live index takes a write mid-build: it must survive the swap.
            if start == 100:
                await engine.apply([entry("e002", version=5, name="Changed during build")])

    queriers = [asyncio.create_task(keep_querying()) for _ in range(4)]
    try:
        report = await engine.rebuild(slow_source())
        await engine.refresh()
        after_swap = len(totals)
        # Keep querying a little after the swap, until each querier has had a turn.
        while len(totals) < after_swap + 8 and not failures:
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*queriers)
    assert not failures, failures
    assert report.loaded == len(source_entries)
    # Before the swap the live index has 299 listed (e001 hidden), after it 300 (+e300).
    assert set(totals) <= {count - 1, expected_total}
    assert totals[-1] == expected_total
    documents = {
        hit.document.event_id: hit.document
        for hit in (await engine.search(query(limit=100, text="renamed changed"))).hits
    }
    assert set(ids(await engine.search(query(text="renamed")))) == {"e000"}
    assert ids(await engine.search(query(text="changed during build"))) == ["e002"]
    del documents
    all_ids: list[str] = []
    after = None
    while True:
        page = await engine.search(query(limit=100, after=after))
        all_ids.extend(ids(page))
        after = page.next_after
        if after is None:
            break
    assert "e001" not in all_ids
    assert "e300" in all_ids
    assert len(all_ids) == expected_total
