"""CORS for the SPA, and the whole API's OpenAPI document merged at the gateway.

(No ``from __future__ import annotations``: the test services' routes use a model built at
run time, which FastAPI must see as a class, not as a name to look up.)
"""

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import create_model

from marquee_gateway.main import create_app
from marquee_gateway.settings import GatewaySettings
from marquee_platform.security import CurrentUser
from marquee_testing.fixtures import TokenIssuer, serve_in_thread
from marquee_testing.localinfra import free_port

SPA = "http://localhost:5173"
OPENAPI_FETCHES: Counter[str] = Counter()


def service_app(name: str, item_fields: dict[str, type]) -> FastAPI:
    """A service whose ``Item`` schema differs from the other one's (a name collision)."""
    app = FastAPI(title=name, description=f"The {name} service")
    item: Any = create_model("Item", **{field: (kind, ...) for field, kind in item_fields.items()})

    @app.middleware("http")
    async def count_openapi_fetches(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path == "/openapi.json":
            OPENAPI_FETCHES[name] += 1
        return await call_next(request)

    @app.get(f"/api/v1/{name}/items/{{item_id}}", response_model=item)
    async def read_item(item_id: int) -> Any:
        return {field: 1 if kind is int else "x" for field, kind in item_fields.items()}

    @app.post(f"/api/v1/{name}/items", response_model=item, status_code=201)
    async def create_item(body: item, user: CurrentUser) -> Any:
        return body

    @app.get("/internal/stats")
    async def private_stats() -> dict[str, int]:
        return {}

    return app


@pytest.fixture(scope="module")
def gateway(redis_url: str, token_issuer: TokenIssuer) -> Iterator[str]:
    with (
        serve_in_thread(service_app("alpha", {"id": int, "title": str})) as alpha,
        serve_in_thread(service_app("beta", {"sku": str, "price": int})) as beta,
    ):
        settings = GatewaySettings(
            service_urls={
                "alpha": alpha,
                "beta": beta,
                "gamma": f"http://127.0.0.1:{free_port()}",
            },
            jwks_url=token_issuer.jwks_url,
            redis_url=redis_url,
            rate_limits_enabled=False,
            openapi_cache_seconds=60,
            log_json=False,
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url


async def test_preflight_from_the_spa_is_allowed(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.options(
            "/api/v1/alpha/items",
            headers={
                "Origin": SPA,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key", "last-event-id"):
        assert header in allowed
    assert "ratelimit-limit" not in response.headers, "preflights are not charged"


async def test_preflight_from_another_origin_gets_no_cors_headers(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.options(
            "/api/v1/alpha/items",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_responses_and_refusals_are_readable_by_the_spa(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, headers={"Origin": SPA}) as client:
        ok = await client.get("/api/v1/alpha/items/1")
        refused = await client.get(
            "/api/v1/alpha/items/1", headers={"Authorization": "Bearer nonsense"}
        )
        stranger = await client.get(
            "/api/v1/alpha/items/1", headers={"Origin": "https://evil.example"}
        )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == SPA
    exposed = ok.headers["access-control-expose-headers"].lower()
    for header in (
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-request-id",
        "idempotent-replayed",
    ):
        assert header in exposed
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == SPA
    assert "access-control-allow-origin" not in stranger.headers


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def test_the_merged_openapi_document_has_every_service(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        response = await client.get("/api/openapi.json")
        again = await client.get("/api/openapi.json")
        docs = await client.get("/api/docs")
    assert response.status_code == 200
    document = response.json()
    assert again.json() == document
    assert OPENAPI_FETCHES == {"alpha": 1, "beta": 1}, "cached, not refetched"

    paths = document["paths"]
    assert {"/api/v1/alpha/items/{item_id}", "/api/v1/beta/items/{item_id}"} <= set(paths)
    assert {"/api/v1/alpha/items", "/api/v1/beta/items"} <= set(paths)
    assert {"/api/v1/stream", "/healthz", "/readyz"} <= set(paths), "the gateway's own"
    assert not [path for path in paths if path.startswith("/internal")]
    assert "/openapi.json" not in paths

    schemas = document["components"]["schemas"]
    assert set(schemas["alpha_Item"]["properties"]) == {"id", "title"}
    assert set(schemas["beta_Item"]["properties"]) == {"sku", "price"}
    assert "Item" not in schemas
    for ref in _refs(document):
        kind, name = ref.removeprefix("#/components/").split("/")
        assert name in document["components"][kind], f"dangling {ref}"
    beta_read = paths["/api/v1/beta/items/{item_id}"]["get"]
    assert beta_read["tags"] == ["beta"]
    assert beta_read["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/beta_Item"
    }
    assert paths["/api/v1/stream"]["get"]["tags"] == ["gateway"]
    assert {tag["name"] for tag in document["tags"]} == {"alpha", "beta", "gateway"}
    assert list(document["components"]["securitySchemes"]) == ["HTTPBearer"]
    assert paths["/api/v1/alpha/items"]["post"]["security"] == [{"HTTPBearer": []}]
    operation_ids = [
        operation["operationId"] for item in paths.values() for operation in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))

    services = document["info"]["x-marquee-services"]
    assert services["alpha"] == {"status": "available"}
    assert services["gamma"]["status"] == "unavailable"
    assert "gamma" in document["info"]["description"]

    assert docs.status_code == 200
    assert "/api/openapi.json" in docs.text
