"""The gateway in front of several replicas of a service, over real sockets: replicas that
share the load, are down, die mid-request, come back, or are busy with a long stream."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from prometheus_client import REGISTRY

from marquee_gateway.main import create_app
from marquee_gateway.settings import GatewaySettings
from marquee_testing.fixtures import serve_in_thread
from marquee_testing.localinfra import free_port
from marquee_testing.waiting import wait_until

from .upstreams import DiesMidRequest

LONG_EJECTION = 60.0
"""Longer than any test: a replica ejected once stays out for the rest of it."""


class CountingReplica:
    """A replica of the service under test that notes every request it answers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = ""  # where it listens, once served
        self.received: list[tuple[str, str]] = []
        self.let_streams_finish = threading.Event()
        self.app = self._build_app()

    def count(self, method: str | None = None) -> int:
        return sum(1 for seen, _ in self.received if method in (None, seen))

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        async def who(request: Request) -> dict[str, str]:
            body = (await request.body()).decode()
            self.received.append((request.method, body))
            return {"replica": self.name, "body": body}

        for method in ("GET", "POST"):
            app.add_api_route(
                "/api/v1/{service}/who", who, methods=[method], operation_id=f"who_{method}"
            )

        @app.get("/api/v1/{service}/held-stream")
        async def held_stream() -> StreamingResponse:
            self.received.append(("GET", "held-stream"))

            async def chunks() -> AsyncIterator[bytes]:
                yield f"{self.name}\n".encode()
                await asyncio.to_thread(self.let_streams_finish.wait, 10)
                yield b"done\n"

            return StreamingResponse(chunks(), media_type="text/plain")

        @app.get("/readyz")
        async def readyz() -> dict[str, str]:
            return {"status": "ready"}

        return app


@pytest.fixture
def service() -> str:
    """A service name of the test's own, so its metrics are not another test's."""
    return f"svc-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def gateway_for(
    service: str,
    urls: list[str],
    *,
    redis_url: str,
    kafka_bootstrap: str,
    ejection_seconds: float = LONG_EJECTION,
    max_ejection_seconds: float = LONG_EJECTION,
) -> Iterator[str]:
    settings = GatewaySettings(
        service_urls={service: urls},
        upstream_ejection_seconds=ejection_seconds,
        upstream_max_ejection_seconds=max_ejection_seconds,
        rate_limits_enabled=False,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        log_json=False,
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
def two_replicas() -> Iterator[tuple[CountingReplica, CountingReplica]]:
    a, b = CountingReplica("a"), CountingReplica("b")
    with serve_in_thread(a.app) as a_url, serve_in_thread(b.app) as b_url:
        a.url, b.url = a_url, b_url
        yield a, b
        a.let_streams_finish.set()
        b.let_streams_finish.set()


@pytest.fixture
def infra(redis_url: str, kafka_bootstrap: str) -> dict[str, str]:
    return {"redis_url": redis_url, "kafka_bootstrap": kafka_bootstrap}


@pytest.fixture
def dying() -> Iterator[DiesMidRequest]:
    upstream = DiesMidRequest()
    yield upstream
    upstream.close()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_spread_evenly_across_two_replicas(
    service: str, two_replicas: tuple[CountingReplica, CountingReplica], infra: dict[str, str]
) -> None:
    a, b = two_replicas
    with gateway_for(service, [a.url, b.url], **infra) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            one_at_a_time = [await client.get(f"/api/v1/{service}/who") for _ in range(20)]
            at_once = await asyncio.gather(
                *(client.post(f"/api/v1/{service}/who", content=b"x") for _ in range(40))
            )
    assert all(response.status_code == 200 for response in [*one_at_a_time, *at_once])
    # Idle, the two take turns exactly; busy, each still gets a fair share.
    assert [response.json()["replica"] for response in one_at_a_time] == ["a", "b"] * 10
    assert (a.count("GET"), b.count("GET")) == (10, 10)
    assert min(a.count("POST"), b.count("POST")) >= 10, (a.count("POST"), b.count("POST"))
    assert a.count("POST") + b.count("POST") == 40


async def test_a_replica_that_is_down_is_ejected_and_requests_still_succeed(
    service: str, two_replicas: tuple[CountingReplica, CountingReplica], infra: dict[str, str]
) -> None:
    live, _ = two_replicas
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with gateway_for(service, [down, live.url], **infra) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            reads = [await client.get(f"/api/v1/{service}/who") for _ in range(10)]
            writes = [
                await client.post(f"/api/v1/{service}/who", content=f"order-{n}".encode())
                for n in range(10)
            ]
    assert [response.status_code for response in [*reads, *writes]] == [200] * 20
    assert live.count("GET") == 10
    # Each POST arrived once, body whole: the one sent to the closed port first never left.
    assert sorted(body for method, body in live.received if method == "POST") == sorted(
        f"order-{n}" for n in range(10)
    )
    # Tried once, then left out: one connection refused, one request sent elsewhere.
    ejections = metric("marquee_gateway_upstream_ejections_total", service=service, replica=down)
    retries = metric(
        "marquee_gateway_upstream_retries_total", service=service, reason="connect-failed"
    )
    assert (ejections, retries) == (1, 1)


async def test_readiness_and_the_api_document_need_only_one_replica(
    service: str, two_replicas: tuple[CountingReplica, CountingReplica], infra: dict[str, str]
) -> None:
    live, _ = two_replicas
    down = f"http://127.0.0.1:{free_port()}"
    also_down = f"http://127.0.0.1:{free_port()}"
    settings = GatewaySettings(
        service_urls={service: [down, live.url], "gone": [down, also_down]},
        rate_limits_enabled=False,
        log_json=False,
        **infra,
    )
    with serve_in_thread(create_app(settings)) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            ready = await client.get("/readyz")
            document = await client.get("/api/openapi.json")
    checks = ready.json()["checks"]
    assert checks[f"service:{service}"]["status"] == "up", "one replica of two is enough"
    assert checks["service:gone"]["status"] == "down"
    error = checks["service:gone"]["error"]
    assert "0/2 replicas up" in error
    assert down in error
    assert also_down in error
    services = document.json()["info"]["x-marquee-services"]
    assert services[service] == {"status": "available"}, "fetched from the replica that is up"
    assert services["gone"]["status"] == "unavailable"
    assert down in services["gone"]["error"]


async def test_a_get_is_sent_to_the_other_replica_when_one_dies_mid_request(
    service: str,
    two_replicas: tuple[CountingReplica, CountingReplica],
    dying: DiesMidRequest,
    infra: dict[str, str],
) -> None:
    live, _ = two_replicas
    with gateway_for(service, [dying.url, live.url], **infra) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            reads = []
            while not dying.received and len(reads) < 4:
                reads.append(await client.get(f"/api/v1/{service}/who"))
            after = [await client.get(f"/api/v1/{service}/who") for _ in range(4)]
    assert dying.received == [("GET", "")]
    assert [response.status_code for response in [*reads, *after]] == [200] * (len(reads) + 4)
    assert live.count("GET") == len(reads) + 4, "the one the dying replica got, answered here"
    assert metric("marquee_gateway_upstream_ejections_total", service=service, replica=dying.url)
    assert (
        metric("marquee_gateway_upstream_retries_total", service=service, reason="connection-lost")
        == 1
    )


async def test_a_post_the_dying_replica_received_is_not_sent_again(
    service: str,
    two_replicas: tuple[CountingReplica, CountingReplica],
    dying: DiesMidRequest,
    infra: dict[str, str],
) -> None:
    live, _ = two_replicas
    with gateway_for(service, [dying.url, live.url], **infra) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            writes: list[httpx.Response] = []
            while not dying.received and len(writes) < 4:
                body = f"order-{len(writes)}".encode()
                writes.append(await client.post(f"/api/v1/{service}/who", content=body))
            after = await client.post(f"/api/v1/{service}/who", content=b"order-after")
    failed = [n for n, response in enumerate(writes) if response.status_code != 200]
    assert len(failed) == 1, [response.status_code for response in writes]
    lost = writes[failed[0]]
    assert lost.status_code == 502
    assert lost.json()["type"].endswith("/upstream-unavailable")
    assert dying.received == [("POST", f"order-{failed[0]}")]
    answered = [body for method, body in live.received if method == "POST"]
    assert f"order-{failed[0]}" not in answered, "a POST that may have arrived is never resent"
    assert Counter(answered) == Counter(
        [f"order-{n}" for n in range(len(writes)) if n != failed[0]] + ["order-after"]
    )
    assert after.status_code == 200, "the dying replica is left out"


async def test_an_ejected_replica_is_used_again_once_it_is_back(
    service: str, two_replicas: tuple[CountingReplica, CountingReplica], infra: dict[str, str]
) -> None:
    live, _ = two_replicas
    port = free_port()
    returning = CountingReplica("returning")
    with gateway_for(
        service,
        [f"http://127.0.0.1:{port}", live.url],
        ejection_seconds=0.1,
        max_ejection_seconds=0.4,
        **infra,
    ) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            while_down = [await client.get(f"/api/v1/{service}/who") for _ in range(6)]
            assert [response.status_code for response in while_down] == [200] * 6
            replica = f"http://127.0.0.1:{port}"
            assert metric(
                "marquee_gateway_upstream_ejections_total", service=service, replica=replica
            )

            with serve_in_thread(returning.app, port=port):

                async def it_answered_one() -> bool:
                    response = await client.get(f"/api/v1/{service}/who")
                    assert response.status_code == 200
                    return returning.count() > 0

                await wait_until(
                    it_answered_one, timeout=10, message="the returning replica to get a request"
                )
                answered_by = Counter(
                    [
                        (await client.get(f"/api/v1/{service}/who")).json()["replica"]
                        for _ in range(10)
                    ]
                )
    assert answered_by == Counter({"returning": 5, "a": 5}), "back to taking turns"


async def test_when_every_replica_is_ejected_one_is_still_tried(
    service: str, infra: dict[str, str]
) -> None:
    first, second = free_port(), free_port()
    returning = CountingReplica("returning")
    urls = [f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"]
    with gateway_for(service, urls, **infra) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            both_down = await client.get(f"/api/v1/{service}/who")
            with serve_in_thread(returning.app, port=first):
                # Both are ejected for a minute; the one ejected first is tried anyway.
                one_back = await client.get(f"/api/v1/{service}/who")
    assert both_down.status_code == 502
    assert both_down.json()["type"].endswith("/upstream-unavailable")
    assert (one_back.status_code, one_back.json()["replica"]) == (200, "returning")


async def test_new_requests_go_to_the_replica_not_busy_with_a_long_stream(
    service: str, two_replicas: tuple[CountingReplica, CountingReplica], infra: dict[str, str]
) -> None:
    a, b = two_replicas
    by_name = {"a": a, "b": b}

    def outstanding(replica: CountingReplica) -> float:
        return metric("marquee_gateway_upstream_outstanding", service=service, replica=replica.url)

    with gateway_for(service, [a.url, b.url], **infra) as gateway:
        async with (
            httpx.AsyncClient(base_url=gateway) as client,
            client.stream("GET", f"/api/v1/{service}/held-stream") as stream,
        ):
            lines = stream.aiter_lines()
            busy = by_name[await anext(lines)]
            idle = b if busy is a else a
            # The stream's headers and first line are through; its body is still open.
            answered_by = [
                (await client.get(f"/api/v1/{service}/who")).json()["replica"] for _ in range(6)
            ]
            assert answered_by == [idle.name] * 6
            assert (outstanding(busy), outstanding(idle)) == (1, 0)
            busy.let_streams_finish.set()
            assert [line async for line in lines] == ["done"]
        await wait_until(
            lambda: outstanding(busy) == 0,
            timeout=5,
            message="the finished stream to stop counting",
        )
        async with httpx.AsyncClient(base_url=gateway) as client:
            after = [
                (await client.get(f"/api/v1/{service}/who")).json()["replica"] for _ in range(4)
            ]
    assert Counter(after) == Counter({"a": 2, "b": 2})


async def test_a_stream_the_client_leaves_stops_counting_on_its_replica(
    service: str, two_replicas: tuple[CountingReplica, CountingReplica], infra: dict[str, str]
) -> None:
    a, b = two_replicas
    by_name = {"a": a, "b": b}
    with gateway_for(service, [a.url, b.url], **infra) as gateway:
        async with httpx.AsyncClient(base_url=gateway) as client:
            async with client.stream("GET", f"/api/v1/{service}/held-stream") as stream:
                busy = by_name[await anext(stream.aiter_lines())]
            # Closed half-way (the replica has not finished it): the gateway lets it go.
            await wait_until(
                lambda: (
                    metric(
                        "marquee_gateway_upstream_outstanding", service=service, replica=busy.url
                    )
                    == 0
                ),
                timeout=5,
                message="the abandoned stream to stop counting",
            )
            after = [
                (await client.get(f"/api/v1/{service}/who")).json()["replica"] for _ in range(4)
            ]
    assert Counter(after) == Counter({"a": 2, "b": 2})
