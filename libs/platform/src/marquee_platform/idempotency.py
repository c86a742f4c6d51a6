"""``Idempotency-Key`` for POSTs, with Stripe's semantics.

A client that retries a POST with the same key gets the first response back instead of a
second order. The stored response is written to the service's own ``idempotency_keys``
table in the *same transaction* as the request's effect, so "effect committed" and "key
remembered" can never disagree, whatever crashes in between.

How a request goes:

1. take a transaction-scoped advisory lock on (principal, key), so a concurrent duplicate
   waits for the first to finish instead of racing it;
2. if a response is stored for the key: the same request (method, path, body) gets it
   replayed exactly, with ``Idempotent-Replayed: true``, and the endpoint does not run;
   a different request gets a 422;
3. otherwise the endpoint runs and, if it succeeds (< 400), its response is stored just
   before the transaction commits. Failures are not stored: nothing happened, so a retry
   with the same key runs again.

Use it on routes made with :func:`marquee_platform.http.router`::

    @orders.post("/api/v1/orders", status_code=201)
    async def place_order(body: OrderCreate, session: WriteSessionDep,
                          _: RequiredIdempotencyKey) -> OrderRead: ...
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any, cast

from fastapi import Depends, FastAPI, Header, Request, Response
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_platform.errors import InvalidInput
from marquee_platform.http import UnitOfWork
from marquee_platform.outbox import IDEMPOTENCY_KEYS
from marquee_platform.security import OptionalUser, Principal

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

_LOCK_SEED = 0x1D3A_907E
"""Seeds the lock hash so our advisory locks don't collide with other uses in the database."""

_NOT_REPLAYED_HEADERS = frozenset(
    {"content-length", "date", "server", "set-cookie", "x-request-id", "traceparent"}
)
"""Recomputed or per-response headers; everything else the endpoint set is replayed."""

_HEADER_DESCRIPTION = (
    "A unique value per operation (a UUID works well). Retrying with the same key returns "
    "the first response instead of doing the operation twice; keys are kept for 24 hours."
)


class _StoredResponse(Exception):
    """Carries a stored response out of the dependency to :func:`_replay` (FastAPI
    dependencies cannot return a response in place of the endpoint's)."""

    def __init__(self, status_code: int, headers: dict[str, str], body: str) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.headers = headers
        self.body = body


async def _replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _StoredResponse)
    response = Response(
        content=exc.body.encode("utf-8"), status_code=exc.status_code, headers=exc.headers
    )
    response.headers[REPLAYED_HEADER] = "true"
    return response


def install_idempotency(app: FastAPI) -> None:
    """Let stored responses be replayed (``create_service_app`` does this)."""
    app.add_exception_handler(_StoredResponse, _replay)


def _principal_name(request: Request, principal: Principal | None) -> str:
    if principal is not None:
        return principal.user_id
    # Behind the gateway every anonymous caller shares its address; anonymous routes that
    # take keys should therefore use keys unique per client (UUIDs), as Stripe asks.
    host = request.client.host if request.client else "unknown"
    return f"anonymous:{host}"


def _check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidInput(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters; "
            "a UUID works well.",
            errors=[
                {
                    "location": f"header {HEADER}",
                    "field": HEADER,
                    "message": f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                    "kind": "idempotency_key_format",
                }
            ],
        )
    return key


async def _request_hash(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(request.url.query.encode("utf-8"))
    digest.update(b"\n")
    digest.update(await request.body())
    return digest.hexdigest()


def _unit_of_work(request: Request) -> UnitOfWork:
    unit_of_work: UnitOfWork | None = getattr(request.state, "unit_of_work", None)
    if unit_of_work is None:
        raise RuntimeError(
            f"{HEADER} needs a route made by marquee_platform.http.router(), whose "
            "transaction the stored response joins"
        )
    return unit_of_work


async def _lock(session: AsyncSession, principal: str, key: str) -> None:
    # Keys are printable ASCII and so never contain a newline: the joined text is unique.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"{principal}\n{key}", _LOCK_SEED)))
    )


async def _use_key(request: Request, principal: Principal | None, key: str) -> str:
    key = _check_key(key)
    who = _principal_name(request, principal)
    request_hash = await _request_hash(request)
    method, path = request.method, request.url.path
    session = await _unit_of_work(request).session()

    await _lock(session, who, key)
    stored = (
        await session.execute(
            select(IDEMPOTENCY_KEYS).where(
                IDEMPOTENCY_KEYS.c.principal == who, IDEMPOTENCY_KEYS.c.key == key
            )
        )
    ).one_or_none()
    if stored is not None:
        if (stored.method, stored.path, stored.request_hash) == (method, path, request_hash):
            raise _StoredResponse(
                int(stored.status_code), dict(stored.response_headers), stored.response_body
            )
        raise InvalidInput(
            f"This {HEADER} was already used with a different request "
            f"({stored.method} {stored.path}); use a new key.",
            code="idempotency-key-reused",
        )

    async def remember_response(response: Response) -> None:
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):
            raise TypeError(
                f"{method} {path} returned a streaming response, which cannot be stored for "
                f"{HEADER} replay; return a regular (JSON) response"
            )
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in _NOT_REPLAYED_HEADERS
        }
        await session.execute(
            insert(IDEMPOTENCY_KEYS).values(
                principal=who,
                key=key,
                method=method,
                path=path,
                request_hash=request_hash,
                status_code=response.status_code,
                response_headers=headers,
                response_body=body.decode("utf-8"),
            )
        )

    _unit_of_work(request).before_commit.append(remember_response)
    return key


async def idempotency_key(
    request: Request,
    principal: OptionalUser,
    key: Annotated[str | None, Header(alias=HEADER, description=_HEADER_DESCRIPTION)] = None,
) -> str | None:
    """The route accepts an ``Idempotency-Key``; without one the request just runs."""
    if key is None:
        return None
    return await _use_key(request, principal, key)


async def required_idempotency_key(
    request: Request,
    principal: OptionalUser,
    key: Annotated[str, Header(alias=HEADER, description=_HEADER_DESCRIPTION)],
) -> str:
    """The route insists on an ``Idempotency-Key`` (a missing one is a 422 naming it)."""
    return await _use_key(request, principal, key)


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
RequiredIdempotencyKey = Annotated[str, Depends(required_idempotency_key)]


async def delete_expired_idempotency_keys(session: AsyncSession, *, older_than_hours: int) -> int:
    """Forget keys older than ``older_than_hours`` (the settings' ``idempotency_key_ttl_hours``).

    Run periodically; returns how many were deleted. The caller owns the transaction.
    """
    if older_than_hours < 1:
        raise ValueError("older_than_hours must be at least 1")
    result = await session.execute(
        delete(IDEMPOTENCY_KEYS).where(
            IDEMPOTENCY_KEYS.c.created_at < func.now() - timedelta(hours=older_than_hours)
        )
    )
    return cast(CursorResult[Any], result).rowcount
