"""Sending a request to a service over the pooled connections, once more when the pooled
connection it went out on turns out to be dead.

A service closes a keep-alive connection it has kept idle for a while (uvicorn: after
5 s), and can close one after an error. The pool learns of it only when it next uses the
connection, and a request sent in that moment fails without any answer ("Server
disconnected without sending a response", a reset): the service never saw it. Sent again
on a fresh connection, it goes through. Only requests that may be repeated are retried
(an idempotent method, a readiness probe), only once, and only when the failed attempt
reused a pooled connection: a connection that fails as it is opened means the service is
down, and trying again would only double the wait.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""RFC 9110 §9.2.2: these may be sent again after a connection failed under them."""

DEAD_CONNECTION_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""How a request sent on a connection the service already closed fails."""

_CONNECTING = frozenset(
    {"connection.connect_tcp.started", "connection.connect_unix_socket.started"}
)
"""httpcore's trace events for opening a connection (the attempt did not reuse one)."""


async def send(
    client: httpx.AsyncClient, request: httpx.Request, *, stream: bool, retry: bool
) -> httpx.Response:
    """``client.send(request)``, sent a second time if ``retry`` and the first attempt
    failed on a pooled connection that was already dead. ``request`` must be replayable
    (no body, or a body in memory)."""
    opened_connection = False

    async def note_connections(event: str, info: dict[str, Any]) -> None:
        nonlocal opened_connection
        if event in _CONNECTING:
            opened_connection = True

    request.extensions = {**request.extensions, "trace": note_connections}
    try:
        return await client.send(request, stream=stream)
    except DEAD_CONNECTION_ERRORS as error:
        if not retry or opened_connection:
            raise
        logger.info(
            "a pooled connection to %s was closed (%s); sending %s again",
            request.url.host,
            type(error).__name__,
            request.method,
        )
    return await client.send(request, stream=stream)
