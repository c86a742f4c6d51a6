"""Sending a request to a service over the pooled connections: to one of its replicas,
and again when that is safe. The whole retry policy lives here.

**What can go wrong on the way.** A request can fail

1. *before anything was sent*: the connection was refused or timed out as it was opened
   (``httpx.ConnectError``, ``httpx.ConnectTimeout``). The service never saw the request.
2. *after it may have been sent*, with no answer: the connection was closed or reset under
   it (``httpx.RemoteProtocolError``, ``ReadError``, ``WriteError``). On a **reused**
   pooled connection that is usually the service having closed an idle keep-alive
   connection (uvicorn: after 5 s) just as the gateway sent on it, and the service never
   saw the request either; but the gateway cannot know that. On a **freshly opened**
   connection it means the replica is dying (it crashed mid-request, or it accepts and
   drops connections).
3. any other way (a read timeout, a full pool, ...): not retried, and no replica's fault.

**The policy** (:func:`send_balanced`, for the proxy):

- The first attempt goes to the replica :class:`~marquee_gateway.balancer.Balancer` picks.
- Case 1, any method (even a POST: nothing was sent): the replica is ejected and the
  request goes to another replica not yet tried and not ejected, as many times as there
  are such replicas.
- Case 2, an idempotent method (``IDEMPOTENT_METHODS``): sent **once** more, to another
  replica not yet tried and not ejected, or, if there is none and the failed connection
  was a reused one, to the same replica (a fresh connection). A fresh connection that
  failed also ejects its replica.
- Case 2, ``POST`` and ``PATCH``: never sent again (the client retries with its
  ``Idempotency-Key``); a fresh connection that failed still ejects its replica.
- When no attempt is left, the last error is raised (the proxy's 502 or 504).

:func:`send` is the one-replica version, for readiness probes: only case 2 on a reused
connection is retried, once, on the same replica.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from marquee_gateway.balancer import Balancer, Lease, Replica
from marquee_gateway.metrics import UPSTREAM_RETRIES

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""RFC 9110 §9.2.2: these may be sent again after a connection failed under them."""

CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
"""How a request fails when no connection could be opened: nothing was sent."""

DEAD_CONNECTION_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""How a request sent on a connection that was closed or reset under it fails."""

_CONNECTING = frozenset(
    {"connection.connect_tcp.started", "connection.connect_unix_socket.started"}
)
"""httpcore's trace events for opening a connection (the attempt did not reuse one)."""


class _ConnectionWatch:
    """Whether a request opened a connection of its own (rather than reusing a pooled
    one), from httpcore's trace events."""

    def __init__(self, request: httpx.Request) -> None:
        self.opened_connection = False
        request.extensions = {**request.extensions, "trace": self._note}

    async def _note(self, event: str, info: dict[str, Any]) -> None:
        if event in _CONNECTING:
            self.opened_connection = True


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def send(
    client: httpx.AsyncClient, request: httpx.Request, *, stream: bool, retry: bool
) -> httpx.Response:
    """``client.send(request)`` to one replica, sent a second time if ``retry`` and the
    first attempt failed on a pooled connection that was already dead. ``request`` must be
    replayable (no body, or a body in memory)."""
    watch = _ConnectionWatch(request)
    try:
        return await client.send(request, stream=stream)
    except DEAD_CONNECTION_ERRORS as error:
        if not retry or watch.opened_connection:
            raise
        logger.info(
            "a pooled connection to %s was closed (%s); sending %s again",
            request.url.host,
            type(error).__name__,
            request.method,
        )
    return await client.send(request, stream=stream)


@dataclass(frozen=True)
class UpstreamAnswer:
    """A replica's answer, its body still to be read; :meth:`aclose` it when done, which
    also ends the request's count on the replica."""

    response: httpx.Response
    lease: Lease

    async def aclose(self) -> None:
        self.lease.release()
        await self.response.aclose()


async def send_balanced(
    client: httpx.AsyncClient,
    balancer: Balancer,
    build: Callable[[str], httpx.Request],
    *,
    idempotent: bool,
) -> UpstreamAnswer:
    """Send the request ``build(base_url)`` makes to a replica of ``balancer``'s service,
    and again where the module's policy allows; its answer is streamed.

    ``build`` is called once per attempt. A streamed body is only read once a connection
    is open, so the attempt after a failed connection still has all of it; the body of an
    ``idempotent`` request, which may be sent twice, must be in memory."""
    tried: set[Replica] = set()
    sent_again = False
    replica = balancer.pick()
    assert replica is not None, "a balancer always has a replica to pick"
    while True:
        request = build(replica.url)
        watch = _ConnectionWatch(request)
        lease = balancer.lease(replica)
        try:
            response = await client.send(request, stream=True)
        except CONNECT_ERRORS as error:
            lease.record_failure(_describe(error))
            lease.release()
            tried.add(replica)
            next_replica = balancer.pick(exclude=tried, healthy_only=True)
            if next_replica is None:
                raise
            _note_retry(balancer, request, replica, next_replica, error, "connect-failed")
        except DEAD_CONNECTION_ERRORS as error:
            if watch.opened_connection:
                lease.record_failure(f"a new connection was lost: {_describe(error)}")
            lease.release()
            tried.add(replica)
            if not idempotent or sent_again:
                raise
            next_replica = balancer.pick(exclude=tried, healthy_only=True)
            if next_replica is None and not watch.opened_connection:
                next_replica = replica  # a stale pooled connection: a fresh one will do
            if next_replica is None:
                raise
            sent_again = True
            _note_retry(balancer, request, replica, next_replica, error, "connection-lost")
        except BaseException:
            lease.release()
            raise
        else:
            lease.record_success()
            return UpstreamAnswer(response, lease)
        replica = next_replica


def _note_retry(
    balancer: Balancer,
    request: httpx.Request,
    failed: Replica,
    next_replica: Replica,
    error: Exception,
    reason: str,
) -> None:
    UPSTREAM_RETRIES.labels(balancer.service, reason).inc()
    logger.info(
        "%s %s to %s failed (%s); sending it to %s",
        request.method,
        request.url.path,
        failed.url,
        _describe(error),
        "the same replica again" if next_replica is failed else next_replica.url,
    )
