"""The gateway in front of a real upstream service over real HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from marquee_gateway.main import create_app
from marquee_gateway.settings import GatewaySettings
from marquee_testing.fixtures import serve_in_thread
from marquee_testing.localinfra import free_port

from .upstreams import ClosesReusedConnections


def upstream_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/api/v1/echo/{path:path}", methods=["GET", "POST"])
    async def echo(request: Request, path: str) -> dict[str, object]:
        body = await request.body()
        return {
            "path": path,
            "query": dict(request.query_params),
            "body_length": len(body),
            "request_id": request.headers.get("x-request-id"),
            "traceparent": request.headers.get("traceparent"),
            "forwarded_for": request.headers.get("x-forwarded-for"),
        }

    @app.get("/api/v1/echo-slow/wait")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(5)
        return {"status": "late"}

    @app.get("/api/v1/echo-stream/ticks")
    async def ticks() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for tick in range(3):
                yield f"data: {tick}\n\n".encode()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_in_thread(upstream_app()) as url:
        yield url


@pytest.fixture
def flaky_upstream() -> Iterator[ClosesReusedConnections]:
    upstream = ClosesReusedConnections()
    yield upstream
    upstream.close()


@pytest.fixture
def gateway(
    upstream_url: str,
    flaky_upstream: ClosesReusedConnections,
    redis_url: str,
    kafka_bootstrap: str,
) -> Iterator[str]:
    settings = GatewaySettings(
        service_urls={
            "echo": upstream_url,
            "echo-slow": upstream_url,
            "echo-stream": upstream_url,
            "flaky": flaky_upstream.url,
            "down": f"http://127.0.0.1:{free_port()}",
        },
        upstream_timeout_seconds=0.5,
        max_body_bytes=1000,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        log_json=False,
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


async def test_routes_to_the_service_with_query_request_id_and_trace_context(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get(
            "/api/v1/echo/orders/42", params={"a": "1"}, headers={"x-request-id": "req-abc"}
        )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["path"] == "orders/42"
    assert echoed["query"] == {"a": "1"}
    assert echoed["request_id"] == "req-abc"
    assert response.headers["x-request-id"] == "req-abc"
    assert echoed["traceparent"]
    assert echoed["traceparent"].startswith("00-")
    assert echoed["forwarded_for"] == "127.0.0.1"


async def test_streams_request_bodies_and_event_streams(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        posted = await client.post("/api/v1/echo/upload", content=b"x" * 900)
        streamed = await client.get("/api/v1/echo-stream/ticks")
    assert posted.json()["body_length"] == 900
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_refuses_bodies_over_the_limit_with_413(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        declared = await client.post("/api/v1/echo/upload", content=b"x" * 5000)

        async def undeclared_length() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"y" * 400

        chunked = await client.post("/api/v1/echo/upload", content=undeclared_length())
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert "limit" in response.json()["detail"]


async def test_upstream_failures_become_problems(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        slow = await client.get("/api/v1/echo-slow/wait")
        down = await client.get("/api/v1/down/anything")
        unknown = await client.get("/api/v1/nonexistent/anything")
    assert slow.status_code == 504
    assert slow.json()["type"].endswith("upstream-timeout")
    assert down.status_code == 502
    assert unknown.status_code == 404
    assert "known services" in unknown.json()["detail"]


async def test_readyz_reports_every_service_and_infrastructure_piece(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get("/readyz")
    report = response.json()
    assert response.status_code == 503, "the 'down' service is not there"
    checks = report["checks"]
    assert checks["service:echo"]["status"] == "up"
    assert checks["service:down"]["status"] == "down"
    assert checks["redis"]["status"] == "up"
    assert checks["kafka"]["status"] == "up"


def counting_connections() -> tuple[dict[str, Any], list[str]]:
    """A client-side ``trace`` extension and the list of connections it saw opened."""
    opened: list[str] = []

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.started":
            opened.append(event)

    return {"trace": trace}, opened


async def test_a_control_character_in_the_path_is_a_400_on_a_connection_that_stays_open(
    gateway: str,
) -> None:
    trace, opened = counting_connections()
    async with httpx.AsyncClient(base_url=gateway) as client:
        bell = await client.get("/api/v1/echo/%07", extensions=trace)
        delete = await client.get("/api/v1/echo/a%7Fb", extensions=trace)
        after = await client.get("/api/v1/echo/fine", extensions=trace)
    for refused in (bell, delete):
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/invalid-path")
        assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert after.status_code == 200
    assert len(opened) == 1, "the gateway dropped the client's keep-alive connection"


async def test_an_idempotent_request_is_sent_again_when_its_pooled_connection_was_closed(
    gateway: str, flaky_upstream: ClosesReusedConnections
) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        # Each request after the first goes out on the connection the previous one used,
        # which the upstream then closes unanswered.
        reads = [await client.get("/api/v1/flaky/seats") for _ in range(4)]
        put = await client.put("/api/v1/flaky/seats/1", content=b"reserved")
        delete = await client.delete("/api/v1/flaky/seats/1")
        post = await client.post("/api/v1/flaky/orders", content=b"an order")
    assert [response.status_code for response in reads] == [200] * 4
    assert (put.status_code, put.json()) == (200, {"method": "PUT", "body": "reserved"})
    assert delete.status_code == 200
    # A POST is never sent twice: the dead connection is the client's 502 to retry.
    assert post.status_code == 502
    assert post.json()["type"].endswith("/upstream-unavailable")
    assert flaky_upstream.answered == Counter({"GET": 4, "PUT": 1, "DELETE": 1})


async def test_readyz_does_not_call_a_service_down_for_a_closed_pooled_connection(
    gateway: str,
) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        reports = [(await client.get("/readyz")).json() for _ in range(6)]
    assert [report["checks"]["service:flaky"]["status"] for report in reports] == ["up"] * 6
