"""Keyset pagination against real PostgreSQL: complete, duplicate-free and stable walks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, DateTime, Identity, Index, String, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marquee_platform.app import create_service_app
from marquee_platform.db import Database
from marquee_platform.errors import InvalidInput
from marquee_platform.http import ReadSessionDep, router
from marquee_platform.pagination import CursorParams, CursorParamsDep, Page, encode_cursor, paginate
from marquee_platform.settings import ServiceSettings
from marquee_testing.fixtures import DatabaseFactory

START = datetime(2025, 1, 1, tzinfo=UTC)
ROWS = 250


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(50))
    __table_args__ = (Index("items_created_at_id", "created_at", "id"),)


ORDER = (Item.created_at, Item.id)


@pytest.fixture
async def database(make_database: DatabaseFactory) -> AsyncIterator[Database]:
    database = Database(await make_database())
    async with database.write_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    # Ten rows share each timestamp, so only the id tie-breaker keeps the order total.
    async with database.transaction() as session:
        await session.execute(
            insert(Item),
            [
                {"created_at": START + timedelta(minutes=number // 10), "name": f"item-{number}"}
                for number in range(ROWS)
            ],
        )
    try:
        yield database
    finally:
        await database.dispose()


async def walk(
    database: Database,
    *,
    descending: bool = False,
    limit: int = 20,
    statement: Any = None,
    between_pages: Any = None,
) -> tuple[list[Any], int]:
    """All items page by page; returns them and the number of pages."""
    seen: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        async with database.reading() as session:
            page = await paginate(
                session,
                statement if statement is not None else select(Item),
                order_by=ORDER,
                params=CursorParams(limit=limit, cursor=cursor),
                descending=descending,
            )
        pages += 1
        assert len(page.items) <= limit
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen, pages
        assert len(page.items) == limit, "only the last page may be short"
        cursor = page.next_cursor
        if between_pages is not None:
            await between_pages(pages)


def keys(items: list[Item]) -> list[tuple[datetime, int]]:
    return [(item.created_at, item.id) for item in items]


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_walking_all_pages_gives_every_row_once_in_order(
    database: Database, descending: bool
) -> None:
    items, pages = await walk(database, descending=descending)
    assert pages == 13  # 12 full pages of 20 and one of 10
    assert len(items) == ROWS
    assert len({item.id for item in items}) == ROWS
    assert keys(items) == sorted(keys(items), reverse=descending)


async def test_a_page_that_ends_exactly_at_the_last_row_has_no_next_cursor(
    database: Database,
) -> None:
    items, pages = await walk(database, limit=50)
    assert (len(items), pages) == (ROWS, 5)


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_rows_inserted_at_the_front_while_walking_do_not_shift_the_walk(
    database: Database, descending: bool
) -> None:
    async def insert_at_the_front(page_number: int) -> None:
        # "Front" is where the walk started: newest rows for a descending walk.
        when = START + (timedelta(days=1) if descending else -timedelta(days=1))
        async with database.transaction() as session:
            await session.execute(
                insert(Item),
                [{"created_at": when, "name": f"late-{page_number}-{n}"} for n in range(3)],
            )

    items, _ = await walk(database, descending=descending, between_pages=insert_at_the_front)
    assert len(items) == ROWS
    assert {item.name for item in items} == {f"item-{number}" for number in range(ROWS)}
    assert keys(items) == sorted(keys(items), reverse=descending)


async def test_selected_columns_give_rows_and_filters_still_apply(database: Database) -> None:
    statement = select(Item.id, Item.created_at, Item.name).where(Item.name.like("item-1%"))
    rows, _ = await walk(database, statement=statement, limit=7)
    expected = {f"item-{n}" for n in range(ROWS) if str(n).startswith("1")}
    assert [row.name for row in rows] == sorted(expected, key=lambda name: int(name[5:]))


async def test_a_cursor_from_another_listing_is_invalid_input(database: Database) -> None:
    async with database.reading() as session:
        for cursor in (encode_cursor([1]), encode_cursor(["a", "b"]), encode_cursor([1, 2])):
            with pytest.raises(InvalidInput, match="cursor") as caught:
                await paginate(
                    session, select(Item), order_by=ORDER, params=CursorParams(cursor=cursor)
                )
            assert caught.value.extensions["errors"][0]["field"] == "cursor"


async def test_a_malformed_cursor_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        CursorParams(cursor="definitely-not-a-cursor")


# ---- through a service endpoint ---------------------------------------------------------


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str


class ListingSettings(ServiceSettings):
    service_name: ClassVar[str] = "listing"


def listing_app(database_url: str) -> FastAPI:
    items = router(prefix="/api/v1/items")

    @items.get("")
    async def list_items(session: ReadSessionDep, params: CursorParamsDep) -> Page[ItemRead]:
        page = await paginate(session, select(Item), order_by=ORDER, params=params, descending=True)
        return page.map(ItemRead.model_validate)

    return create_service_app(
        ListingSettings(database_url=database_url, log_json=False),
        title="listing",
        description="test",
        routers=[items],
        uses_kafka=False,
    )


async def test_a_client_pages_through_an_endpoint_with_next_cursor(database: Database) -> None:
    app = listing_app(database.write_engine.url.render_as_string(hide_password=False))
    names: list[str] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://listing") as client:
            query: dict[str, Any] = {"limit": 100}
            while True:
                response = await client.get("/api/v1/items", params=query)
                assert response.status_code == 200
                body = response.json()
                names.extend(item["name"] for item in body["items"])
                if body["next_cursor"] is None:
                    break
                query["cursor"] = body["next_cursor"]
            bad = await client.get("/api/v1/items", params={"cursor": "%%%"})
    assert names == [f"item-{number}" for number in reversed(range(ROWS))]
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"
