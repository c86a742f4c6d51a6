"""One OpenAPI document for the whole public API: ``GET /api/openapi.json``, ``/api/docs``.

Every service's ``/openapi.json`` is fetched (concurrently, over the pooled client, from
the first of its replicas that answers, those the balancer has not ejected first) and
merged with the gateway's own endpoints:

- only the paths the gateway routes to the service are kept (``/api/v1/<service>/...``,
  and the public paths :mod:`marquee_gateway.routes` sends it, like booking's
  ``/api/v1/orders``), so every path appears once, under the service that answers it;
  operational endpoints (``/healthz``, ``/docs``, ...) stay private;
- component names get the service's name as a prefix (``events_EventRead``) and every
  ``$ref`` (and discriminator mapping) is rewritten, so two services' ``Page`` or
  ``HTTPValidationError`` never collide;
- each operation is tagged with its service; operation ids that would collide get the
  service's prefix;
- security schemes are shared when they are the same (every service takes the same bearer
  token), prefixed otherwise;
- a service that does not answer is listed as unavailable in the description (and in
  ``x-marquee-services``) instead of failing the whole document.

The merged document is kept for ``openapi_cache_seconds``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from marquee_gateway.balancer import Balancer
from marquee_gateway.edge import STREAM_PATH
from marquee_gateway.routes import DEFAULT_ROUTING, RoutingTable
from marquee_gateway.settings import GatewaySettings

OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
GATEWAY_PATHS = frozenset({STREAM_PATH, "/healthz", "/readyz"})
"""The gateway's own operations in the public document."""

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_COMPONENT_REF_PREFIX = "#/components/"
_SECURITY_SCHEME_IDENTITY = ("type", "scheme", "in", "name", "bearerFormat")

Document = dict[str, Any]


def merge_openapi(
    gateway: Mapping[str, Any],
    services: Mapping[str, Mapping[str, Any]],
    unavailable: Mapping[str, str],
    *,
    version: str = "1",
    routing: RoutingTable = DEFAULT_ROUTING,
) -> Document:
    """The public document from the gateway's own and each service's (pure function)."""
    merged: Document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Marquee API",
            "version": version,
            "description": _description(services, unavailable),
            "x-marquee-services": {
                **{name: {"status": "available"} for name in services},
                **{
                    name: {"status": "unavailable", "error": error}
                    for name, error in unavailable.items()
                },
            },
        },
        "paths": {},
        "components": {},
        "tags": [],
    }
    _add_document(merged, "gateway", gateway, lambda path: path in GATEWAY_PATHS)
    for name in sorted(services):
        _add_document(merged, name, services[name], _routed_to(name, routing))
    if not merged["components"]:
        del merged["components"]
    return merged


def _routed_to(service: str, routing: RoutingTable) -> Callable[[str], bool]:
    def keep(path: str) -> bool:
        return routing.service_for(path) == service

    return keep


def _description(services: Mapping[str, Any], unavailable: Mapping[str, str]) -> str:
    lines = [
        "Every public endpoint of Marquee, served through the gateway. Services: "
        + (", ".join(sorted(services)) or "none answered")
        + "."
    ]
    if unavailable:
        lines.append("")
        lines.append("**Unavailable right now** (their endpoints are missing; reload later):")
        lines += [f"- {name}: {error}" for name, error in sorted(unavailable.items())]
    return "\n".join(lines)


def _add_document(
    merged: Document, service: str, document: Mapping[str, Any], keep: Callable[[str], bool]
) -> None:
    components: Mapping[str, Any] = document.get("components") or {}
    merged_components: dict[str, Any] = merged["components"]
    renames: dict[str, dict[str, str]] = {}
    for kind, entries in components.items():
        if kind == "securitySchemes":
            continue
        renames[kind] = {name: f"{service}_{name}" for name in entries}
    scheme_renames = _merge_security_schemes(
        merged_components, service, components.get("securitySchemes") or {}
    )

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    out[key] = _renamed_ref(value, renames)
                elif key == "mapping" and isinstance(value, dict):
                    out[key] = {
                        k: _renamed_ref(v, renames) if isinstance(v, str) else v
                        for k, v in value.items()
                    }
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    for kind, entries in components.items():
        if kind == "securitySchemes":
            continue
        target = merged_components.setdefault(kind, {})
        for name, value in entries.items():
            target[renames[kind][name]] = rewrite(value)

    operation_ids = {
        operation.get("operationId")
        for item in merged["paths"].values()
        for method, operation in item.items()
        if method in _HTTP_METHODS
    }
    kept = 0
    for path, item in (document.get("paths") or {}).items():
        if not keep(path):
            continue
        new_item = rewrite(copy.deepcopy(item))
        for method, operation in new_item.items():
            if method not in _HTTP_METHODS:
                continue
            operation["tags"] = [service]
            operation_id = operation.get("operationId")
            if operation_id in operation_ids:
                operation["operationId"] = f"{service}_{operation_id}"
            operation_ids.add(operation.get("operationId"))
            if "security" in operation:
                operation["security"] = [
                    {scheme_renames.get(name, name): scopes for name, scopes in req.items()}
                    for req in operation["security"]
                ]
        merged["paths"][path] = new_item
        kept += 1
    if kept:
        info = document.get("info") or {}
        merged["tags"].append(
            {"name": service, "description": info.get("description") or info.get("title", "")}
        )


def _merge_security_schemes(
    merged_components: dict[str, Any], service: str, schemes: Mapping[str, Any]
) -> dict[str, str]:
    """Add ``schemes``, sharing a name when it means the same; returns the renamed ones."""
    renames: dict[str, str] = {}
    if not schemes:
        return renames
    target = merged_components.setdefault("securitySchemes", {})
    for name, scheme in schemes.items():
        existing = target.get(name)
        if existing is None:
            target[name] = copy.deepcopy(scheme)
        elif _scheme_identity(existing) != _scheme_identity(scheme):
            renames[name] = f"{service}_{name}"
            target[renames[name]] = copy.deepcopy(scheme)
    return renames


def _scheme_identity(scheme: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(scheme.get(field) for field in _SECURITY_SCHEME_IDENTITY)


def _renamed_ref(ref: str, renames: Mapping[str, Mapping[str, str]]) -> str:
    if not ref.startswith(_COMPONENT_REF_PREFIX):
        return ref
    kind, _, name = ref.removeprefix(_COMPONENT_REF_PREFIX).partition("/")
    new_name = renames.get(kind, {}).get(name)
    return f"{_COMPONENT_REF_PREFIX}{kind}/{new_name}" if new_name else ref


class OpenApiAggregator:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        settings: GatewaySettings,
        balancers: Mapping[str, Balancer],
        gateway_document: Callable[[], Mapping[str, Any]],
        routing: RoutingTable = DEFAULT_ROUTING,
    ) -> None:
        self._client = client
        self._settings = settings
        self._balancers = balancers
        self._routing = routing
        self._gateway_document = gateway_document
        self._cached: Document | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def document(self) -> Document:
        if self._cached is not None and time.monotonic() < self._expires_at:
            return self._cached
        async with self._lock:
            if self._cached is None or time.monotonic() >= self._expires_at:
                self._cached = await self._build()
                self._expires_at = time.monotonic() + self._settings.openapi_cache_seconds
            return self._cached

    async def _build(self) -> Document:
        names = sorted(self._balancers)
        results = await asyncio.gather(*(self._fetch(name) for name in names))
        services: dict[str, Mapping[str, Any]] = {}
        unavailable: dict[str, str] = {}
        for name, (document, error) in zip(names, results, strict=True):
            if document is not None:
                services[name] = document
            else:
                unavailable[name] = error or "unknown error"
        return merge_openapi(self._gateway_document(), services, unavailable, routing=self._routing)

    async def _fetch(self, name: str) -> tuple[Mapping[str, Any] | None, str | None]:
        """The service's document from the first replica that has one, or why none had."""
        replicas = self._balancers[name].in_preference_order()
        errors: list[str] = []
        for replica in replicas:
            document, error = await self._fetch_from(replica.url)
            if document is not None:
                return document, None
            errors.append(error if len(replicas) == 1 else f"{replica.url}: {error}")
        return None, "; ".join(errors)

    async def _fetch_from(self, base_url: str) -> tuple[Mapping[str, Any] | None, str]:
        url = f"{base_url}/openapi.json"
        try:
            response = await self._client.get(
                url, timeout=self._settings.openapi_fetch_timeout_seconds
            )
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error or 'no answer'}"[:200]
        if response.status_code != 200:
            return None, f"its /openapi.json answered HTTP {response.status_code}"
        try:
            document = response.json()
        except ValueError:
            return None, "its /openapi.json is not JSON"
        if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
            return None, "its /openapi.json is not an OpenAPI document"
        return document, ""


def api_docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI_PATH)
    async def openapi_document(request: Request) -> JSONResponse:
        aggregator: OpenApiAggregator = request.app.state.openapi_aggregator
        return JSONResponse(await aggregator.document())

    @router.get(DOCS_PATH)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title="Marquee API")

    return router
