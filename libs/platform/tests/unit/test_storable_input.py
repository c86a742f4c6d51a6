"""Values PostgreSQL cannot store are a 422 naming the field, on every service's routes."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from marquee_platform.app import create_service_app
from marquee_platform.settings import ServiceSettings

TOO_BIG = 99_999_999_999_999_999_999


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example"


class Thing(BaseModel):
    name: str
    count: int = 0
    tags: list[str] = []
    details: dict[str, Any] = {}


def example_app() -> FastAPI:
    things = APIRouter(prefix="/things")

    @things.post("")
    async def create(thing: Thing) -> Thing:
        return thing

    @things.get("/{thing_id}")
    async def read(
        thing_id: str,
        limit: Annotated[int | None, Query()] = None,
        sizes: Annotated[list[int], Query()] = [],  # noqa: B006
        q: str | None = None,
    ) -> dict[str, Any]:
        return {"thing_id": thing_id, "limit": limit, "sizes": sizes, "q": q}

    @things.get("/numbered/{number}")
    async def numbered(number: int) -> dict[str, int]:
        return {"number": number}

    return create_service_app(
        ExampleSettings(log_json=False),
        title="example",
        description="test",
        routers=[things],
        uses_database=False,
        uses_kafka=False,
    )


async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=example_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        return await client.request(method, path, **kwargs)


def fields(response: httpx.Response) -> list[str | None]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "a\x00b"}, ["name"]),
        ({"name": "ok", "tags": ["fine", "bad\x00"]}, ["tags.1"]),
        ({"name": "ok", "details": {"deep": [{"x": "\x00"}]}}, ["details.deep.0.x"]),
        ({"name": "ok", "details": {"key\x00": 1}}, ["details.key\x00"]),
        ({"name": "ok", "count": TOO_BIG}, ["count"]),
        ({"name": "ok", "count": -TOO_BIG}, ["count"]),
        ({"name": "ok", "details": {"n": TOO_BIG}}, ["details.n"]),
        ({"name": "\x00", "count": TOO_BIG}, ["name", "count"]),
    ],
)
async def test_json_bodies_with_values_postgresql_cannot_store_are_refused(
    body: dict[str, Any], expected: list[str]
) -> None:
    response = await call("POST", "/things", json=body)
    assert fields(response) == expected
    assert response.json()["type"].endswith("/invalid-request")


async def test_the_largest_integers_and_ordinary_text_pass() -> None:
    body = {"name": "Olympia", "count": 2**63 - 1, "details": {"n": -(2**63), "ok": True}}
    response = await call("POST", "/things", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 2**63 - 1


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/things/a%00b", {}, ["thing_id"]),
        ("/things/x", {"q": "jazz\x00"}, ["q"]),
        ("/things/x", {"limit": str(TOO_BIG)}, ["limit"]),
        ("/things/x", {"sizes": ["1", str(TOO_BIG)]}, ["sizes"]),
        ("/things/numbered/99999999999999999999", {}, ["number"]),
    ],
)
async def test_parameters_with_values_postgresql_cannot_store_are_refused(
    path: str, params: dict[str, Any], expected: list[str]
) -> None:
    assert fields(await call("GET", path, params=params)) == expected


async def test_a_text_parameter_may_hold_any_digits() -> None:
    response = await call("GET", "/things/99999999999999999999", params={"q": str(TOO_BIG)})
    assert response.status_code == 200, response.text
    assert response.json()["q"] == str(TOO_BIG)


async def test_platform_routes_are_checked_too() -> None:
    assert (await call("GET", "/healthz")).status_code == 200
    assert fields(await call("GET", "/healthz", params={"x": "\x00"})) == ["x"]
