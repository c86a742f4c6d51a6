"""An exception nothing handles ends as the service's own 500 problem, over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from marquee_platform.app import create_service_app
from marquee_platform.settings import ServiceSettings
from marquee_testing.fixtures import serve_in_thread


class BuggySettings(ServiceSettings):
    service_name: ClassVar[str] = "buggy"


def buggy_app(ports: list[int]) -> FastAPI:
    """``ports`` collects the client port of each request: which connection it came on."""
    routes = APIRouter()

    @routes.get("/boom")
    async def boom(request: Request) -> None:
        assert request.client is not None
        ports.append(request.client.port)
        raise RuntimeError("a bug, password=hunter2")

    @routes.get("/fine")
    async def fine(request: Request) -> dict[str, str]:
        assert request.client is not None
        ports.append(request.client.port)
        return {"status": "fine"}

    return create_service_app(
        BuggySettings(log_json=False),
        title="buggy",
        description="test",
        routers=[routes],
        uses_database=False,
        uses_kafka=False,
    )


@pytest.fixture(scope="module")
def ports() -> list[int]:
    return []


@pytest.fixture(scope="module")
def base_url(ports: list[int]) -> Iterator[str]:
    with serve_in_thread(buggy_app(ports)) as url:
        yield url


async def test_an_unexpected_error_is_a_500_problem_and_the_connection_stays_open(
    base_url: str, ports: list[int]
) -> None:
    ports.clear()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
        failed = await client.get("/boom", headers={"X-Request-Id": "bug-report-1"})
        after = await client.get("/fine")
        again = await client.get("/boom")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    body = failed.json()
    assert body["type"].endswith("/internal-error")
    assert body["request_id"] == "bug-report-1"
    assert failed.headers["x-request-id"] == "bug-report-1"
    assert "hunter2" not in failed.text
    assert after.status_code == 200
    assert again.status_code == 500
    assert again.json()["request_id"] == again.headers["x-request-id"]
    assert len(ports) == 3
    assert len(set(ports)) == 1, f"the server dropped the keep-alive connection: {ports}"
