"""Request id and trace context for every HTTP request (pure ASGI, streaming-safe)."""

from __future__ import annotations

import re

from opentelemetry.trace import SpanKind
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marquee_platform.context import new_request_id, request_id_var
from marquee_platform.tracing import span_from_headers

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            with span_from_headers(
                f"{scope['method']} {scope['path']}",
                headers,
                kind=SpanKind.SERVER,
                attributes={"http.method": scope["method"], "service": self.service},
            ):
                await self.app(scope, receive, send_with_request_id)
        finally:
            request_id_var.reset(token)
