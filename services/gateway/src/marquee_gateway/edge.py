"""What happens at the door before a request is routed: who is calling, and how often.

For every ``/api/...`` request:

1. a bearer token (``Authorization: Bearer``, or ``access_token`` in the query of the
   real-time stream, which browsers' EventSource cannot give headers) is verified against
   the auth service's keys and the Redis revocation list. A bad one is refused here with
   401, without bothering the service; a good one is still passed on, because every
   service verifies it again (the gateway is a filter, not the security boundary);
2. the request is charged to its rate-limit class (``auth``, ``write``, ``read``) for the
   signed-in user, or for the client address when anonymous; over budget is 429;
3. every response carries the caller's ``RateLimit-*`` headers.

This is plain ASGI (not ``BaseHTTPMiddleware``) so streamed bodies pass untouched.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from ipaddress import ip_address, ip_network
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marquee_gateway.metrics import AUTH_REJECTIONS, RATE_LIMITED, REDIS_FAILURES
from marquee_gateway.ratelimit import RateClass, RateDecision, RateLimiter, classify
from marquee_platform.errors import DomainError, Unauthenticated
from marquee_platform.forwarding import Network, client_address
from marquee_platform.problems import problem, status_for
from marquee_platform.security import Principal, RevocationCheck, redis_revocation_check

logger = logging.getLogger(__name__)

STREAM_PATH = "/api/v1/stream"
PRINCIPAL_STATE_KEY = "principal"
"""``request.state.principal``: the verified caller (or None) for endpoints and logs."""


def rate_limit_identity(scope: Scope, trusted_proxies: Sequence[Network]) -> str:
    """Whom an anonymous request is charged to: the caller's address
    (:func:`marquee_platform.forwarding.client_address`: the socket peer, unless it is one
    of ``trusted_proxies``, our load balancers). IPv6 callers are grouped by /64, the
    block one subscriber usually holds.
    """
    peer = scope["client"][0] if scope.get("client") else None
    forwarded_for = ", ".join(
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    )
    address = client_address(peer, forwarded_for or None, trusted_proxies)
    try:
        parsed = ip_address(address)
    except ValueError:
        return address[:64]
    if parsed.version == 6:
        return str(ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _bearer_token(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return credentials.strip()
            return None  # another scheme: not ours to judge, the service decides
    if scope["path"] == STREAM_PATH:
        query: bytes = scope.get("query_string", b"")
        for parameter, token in parse_qsl(query.decode("latin-1")):
            if parameter == "access_token":
                return token
    return None


def fail_open_revocation_check(redis: Any) -> RevocationCheck:
    """``redis_revocation_check`` that lets a token through when Redis is down: the edge
    check must not take the site down, and the services check again."""
    check = redis_revocation_check(redis)
    last_logged = -math.inf

    async def is_revoked(principal: Principal) -> bool:
        nonlocal last_logged
        try:
            return await check(principal)
        except Exception as error:  # any Redis or network failure
            REDIS_FAILURES.labels("revocation").inc()
            if time.monotonic() - last_logged > 10:
                last_logged = time.monotonic()
                logger.warning("cannot check token revocation at the edge (%s)", error)
            return False

    return is_revoked


class EdgeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        limiter: RateLimiter = state.rate_limiter
        rate_class = classify(scope["method"], scope["path"])
        address = rate_limit_identity(scope, state.settings.trusted_proxies)
        principal: Principal | None = None
        token = _bearer_token(scope)
        if token is not None:
            try:
                principal = await state.token_verifier.verify(token)
            except DomainError as error:
                AUTH_REJECTIONS.labels(error.code).inc()
                # Bad tokens are charged to the address, so spraying them is throttled.
                decision = await limiter.check(rate_class, user_id=None, client_address=address)
                if decision is not None and not decision.allowed:
                    await self._too_many(rate_class, decision, None, scope, receive, send)
                else:
                    await self._refuse(error, scope, receive, _with_rate_headers(send, decision))
                return
        scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal

        decision = await limiter.check(
            rate_class,
            user_id=principal.user_id if principal else None,
            client_address=address,
        )
        if decision is not None and not decision.allowed:
            await self._too_many(rate_class, decision, principal, scope, receive, send)
            return
        await self.app(scope, receive, _with_rate_headers(send, decision))

    @staticmethod
    async def _too_many(
        rate_class: RateClass,
        decision: RateDecision,
        principal: Principal | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        RATE_LIMITED.labels(rate_class.value).inc()
        who = "your account" if principal else "your address"
        response = problem(
            429,
            code="rate-limited",
            title="Too many requests",
            detail=f"Too many {rate_class.value} requests from {who}; retry in "
            f"{decision.retry_after_seconds} s.",
            instance=scope["path"],
            rate_class=rate_class.value,
        )
        await response(scope, receive, _with_rate_headers(send, decision))

    @staticmethod
    async def _refuse(error: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthenticated) else None
        response = problem(
            status_for(error),
            code=error.code,
            title=error.title,
            detail=error.detail,
            instance=scope["path"],
            headers=headers,
        )
        await response(scope, receive, send)


def _with_rate_headers(send: Send, decision: RateDecision | None) -> Send:
    if decision is None:
        return send
    extra = decision.headers()

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in extra:
                headers.append(name.decode(), value.decode())
        await send(message)

    return send_with_headers
