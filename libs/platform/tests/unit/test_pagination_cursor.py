"""Cursors and page parameters: encoding, validation, and the 422 a client sees."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from marquee_platform.errors import InvalidInput
from marquee_platform.pagination import (
    CursorParams,
    CursorParamsDep,
    Page,
    decode_cursor,
    encode_cursor,
)
from marquee_platform.problems import install_problem_handlers


def test_a_cursor_round_trips_the_sort_values_with_their_types() -> None:
    values = (
        datetime(2025, 5, 17, 19, 30, 0, 123456, tzinfo=UTC),
        datetime(2025, 5, 17, 21, 0, tzinfo=timezone(timedelta(hours=2))),
        date(2025, 5, 17),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Decimal("12.50"),
        42,
        0.5,
        "Madison Square Garden",
        True,
    )
    cursor = encode_cursor(values)
    assert decode_cursor(cursor) == values
    assert [type(value) for value in decode_cursor(cursor)] == [type(value) for value in values]
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_null_sort_values_are_refused_when_making_a_cursor() -> None:
    with pytest.raises(ValueError, match="NOT NULL"):
        encode_cursor([None, 1])


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!not base64!!!",
        b64(b"\xff\xfe not utf-8"),
        b64(b"not json"),
        b64(b"{}"),
        b64(b"[]"),
        b64(b'[["zz", 1]]'),
        b64(b'[["dt", "yesterday"]]'),
        b64(b'[["i", "seven"]]'),
        b64(b'[["i", true]]'),
        b64(b'[["n", "twelve"]]'),
        "A" * 3000,
    ],
)
def test_a_malformed_cursor_is_invalid_input_naming_the_cursor(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        CursorParams(cursor=cursor)
    assert caught.value.code == "invalid-cursor"
    assert caught.value.extensions["errors"][0]["field"] == "cursor"


def test_params_default_and_bounds() -> None:
    assert CursorParams() == CursorParams(limit=20, cursor=None)
    assert CursorParams(cursor="").after is None, "an empty cursor means the first page"
    assert CursorParams(limit=5, cursor=encode_cursor([1, "x"])).after == (1, "x")
    for bad_limit in (0, 101):
        with pytest.raises(InvalidInput, match="limit"):
            CursorParams(limit=bad_limit)


def test_a_page_maps_its_items_and_keeps_its_cursor() -> None:
    page = Page(items=[1, 2], next_cursor="abc").map(str)
    assert page.items == ["1", "2"]
    assert page.next_cursor == "abc"


def listing_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things")
    async def things(params: CursorParamsDep) -> dict[str, Any]:
        return {"limit": params.limit, "after": params.after}

    return app


async def get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=listing_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_the_dependency_reads_limit_and_cursor() -> None:
    assert (await get("/things")).json() == {"limit": 20, "after": None}
    cursor = encode_cursor([7, "b"])
    assert (await get(f"/things?limit=3&cursor={cursor}")).json() == {"limit": 3, "after": [7, "b"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [("cursor=garbage!", "cursor"), ("limit=0", "limit"), ("limit=101", "limit")],
)
async def test_bad_parameters_are_a_422_problem_naming_them(query: str, field: str) -> None:
    response = await get(f"/things?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
