"""The streaming reverse proxy from ``/api/v1/...`` to the service the routing table
(:mod:`marquee_gateway.routes`) names: ``/api/v1/<service>/...`` by default, a few public
paths elsewhere (``/api/v1/orders`` to booking).

Each request goes to one of the service's replicas (:mod:`marquee_gateway.balancer`) and,
by the policy of :mod:`marquee_gateway.upstream`, to another when it failed: a request
that never reached a replica whatever its method, an idempotent one that may have reached
one once more, a ``POST`` or ``PATCH`` that may have reached one never.

Bodies stream both ways (no buffering of large responses or SSE; only the bodies of
``PUT`` and ``DELETE``, which may be sent twice, are read first), connections are pooled,
hop-by-hop headers are dropped, and the request id and trace context ride along. A
request counts on its replica until the body of its answer is closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

import httpx
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from marquee_gateway.balancer import Balancer
from marquee_gateway.routes import DEFAULT_ROUTING, RoutingTable
from marquee_gateway.upstream import IDEMPOTENT_METHODS, UpstreamAnswer, send_balanced
from marquee_platform.context import current_request_id
from marquee_platform.errors import NotFound, PayloadTooLarge
from marquee_platform.problems import problem
from marquee_platform.tracing import current_trace_headers

logger = logging.getLogger(__name__)

# RFC 9110 §7.6.1 hop-by-hop fields, plus ones the proxy recomputes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def _forwarded_headers(request: Request) -> dict[str, str]:
    headers = {
        name: value for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP
    }
    client = request.client.host if request.client else "unknown"
    prior = request.headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{prior}, {client}" if prior else client
    headers["x-forwarded-proto"] = request.url.scheme
    request_id = current_request_id()
    if request_id:
        headers["x-request-id"] = request_id
    headers.update(current_trace_headers())
    return headers


async def _limited_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"the request body is over the {limit} byte limit; send less")
        yield chunk


async def _read_limited_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _limited_body(request, limit)])


class _ProxiedResponse(StreamingResponse):
    """A replica's answer streamed to the client. It is closed (and stops counting on its
    replica) as soon as its body has been read, before the client sees the end, or however
    else the streaming ends: a background task would not run if the client went away or
    the replica broke off."""

    def __init__(self, answer: UpstreamAnswer) -> None:
        upstream = answer.response
        super().__init__(
            self._body(answer),
            status_code=upstream.status_code,
            headers={
                name: value
                for name, value in upstream.headers.items()
                if name.lower() not in HOP_BY_HOP and name.lower() != "x-request-id"
            },
        )
        self._answer = answer

    @staticmethod
    async def _body(answer: UpstreamAnswer) -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.response.aiter_raw():  # closes the response at its end
                yield chunk
        finally:
            answer.lease.release()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._answer.aclose()


def proxy_router(routing: RoutingTable = DEFAULT_ROUTING) -> APIRouter:
    """Every ``/api/v1/...`` path the gateway does not answer itself, sent where
    ``routing`` says (its rules first, then ``/api/v1/<service>/...``)."""
    router = APIRouter(include_in_schema=False)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @router.api_route("/api/v1/{service}", methods=methods)
    @router.api_route("/api/v1/{service}/{path:path}", methods=methods)
    async def forward(request: Request) -> Response:
        """Anyone may call: the service behind decides who may do what."""
        # The path as the edge saw it (rate-limit class, logs): what the client asked for.
        route = routing.resolve(request.scope["path"])
        if route is None:  # not under /api/v1/<something>: the routes above rule it out
            raise NotFound("there is no such path; API paths start /api/v1/<service>")
        service, path = route.service, route.path
        settings = request.app.state.settings
        balancers: Mapping[str, Balancer] = request.app.state.balancers
        balancer = balancers.get(service)
        if balancer is None:
            known = ", ".join(sorted(balancers))
            raise NotFound(f"there is no service called {service!r}; known services: {known}")
        declared_length = request.headers.get("content-length", "")
        if declared_length.isdigit() and int(declared_length) > settings.max_body_bytes:
            raise PayloadTooLarge(
                f"the request body is {declared_length} bytes, over the "
                f"{settings.max_body_bytes} byte limit; send less"
            )
        client: httpx.AsyncClient = request.app.state.upstream
        idempotent = request.method in IDEMPOTENT_METHODS
        content: bytes | AsyncIterator[bytes] | None = None
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            # A request that may be sent twice (upstream.send_balanced) needs its body in
            # hand; the others stream theirs.
            limit = settings.max_body_bytes
            content = (
                await _read_limited_body(request, limit)
                if idempotent
                else _limited_body(request, limit)
            )
        headers = _forwarded_headers(request)

        def build(base_url: str) -> httpx.Request:
            return client.build_request(
                request.method,
                f"{base_url}{path}",
                params=request.url.query,
                headers=headers,
                content=content,
            )

        try:
            answer = await send_balanced(client, balancer, build, idempotent=idempotent)
        except httpx.InvalidURL:
            # A control character (%07) decoded into the path: no URL can carry it on.
            return problem(
                400,
                code="invalid-path",
                title="The path is not valid",
                detail="The path contains a control character; remove it and retry.",
                instance=request.url.path,
            )
        except httpx.TimeoutException:
            logger.warning("upstream %s timed out on %s %s", service, request.method, path)
            return problem(
                504,
                code="upstream-timeout",
                title="The service took too long",
                detail=f"The {service} service did not answer in time; retry shortly.",
                instance=request.url.path,
            )
        except httpx.TransportError as error:
            logger.warning("upstream %s unreachable: %s", service, error)
            return problem(
                502,
                code="upstream-unavailable",
                title="The service is unavailable",
                detail=f"The {service} service could not be reached; retry shortly.",
                instance=request.url.path,
            )
        return _ProxiedResponse(answer)

    return router
