"""RFC 9457 problem+json: one handler turns every error into a response a client can act on."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marquee_platform.context import current_request_id
from marquee_platform.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PreconditionFailed,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://marquee.dev/problems/"

_STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (PayloadTooLarge, 413),
    (BadRequest, 400),
    (InvalidInput, 422),
    (NotFound, 404),
    (PreconditionFailed, 412),
    (Conflict, 409),
    (Gone, 410),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (RateLimited, 429),
    (Unavailable, 503),
]


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


def status_for(error: DomainError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 400


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return problem(
        status_for(exc),
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=headers or None,
        **exc.extensions,
    )


def _describe_location(location: tuple[Any, ...]) -> str:
    where = location[0] if location else "request"
    path = ".".join(str(part) for part in location[1:])
    return f"{where} {path}".strip() if path else str(where)


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": _describe_location(tuple(error.get("loc", ()))),
            "field": ".".join(str(part) for part in error.get("loc", ())[1:]) or None,
            "message": error.get("msg", "invalid"),
            "kind": error.get("type"),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{error['location']}: {error['message']}" for error in errors)
    return problem(
        422,
        code="invalid-request",
        title="The request is not valid",
        detail=f"Fix these and retry: {summary}",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    if exc.status_code == 404 and detail == phrase:
        detail = f"There is nothing at {request.method} {request.url.path}."
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
    return problem(
        exc.status_code,
        code=phrase.lower().replace(" ", "-"),
        title=phrase,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


DATABASE_RETRY_AFTER_SECONDS = 2


def database_unavailable(error: BaseException) -> bool:
    """The database could not be had for this request: the pool stayed exhausted past its
    timeout, the server refused or dropped the connection (a restart, a failover). Not a
    bug of ours and not the client's: a 503 it may retry, not a 500."""
    from sqlalchemy import exc as sqlalchemy_errors

    if isinstance(error, sqlalchemy_errors.TimeoutError):
        return True  # QueuePool limit reached, connection timed out
    if isinstance(error, sqlalchemy_errors.DBAPIError) and (
        error.connection_invalidated
        or isinstance(error, sqlalchemy_errors.OperationalError | sqlalchemy_errors.InterfaceError)
    ):
        return True
    return isinstance(error, ConnectionRefusedError | ConnectionResetError)


def service_unavailable(path: str) -> ProblemResponse:
    return problem(
        503,
        code="database-unavailable",
        title="Temporarily unavailable",
        detail="The service cannot reach its database right now; nothing was changed. "
        "Retry in a moment (the same Idempotency-Key is safe).",
        instance=path,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def internal_error(path: str) -> ProblemResponse:
    """The 500 problem: what a client is told when we failed (nothing of the cause)."""
    return problem(
        500,
        code="internal-error",
        title="Internal error",
        detail="Something went wrong on our side; it has been logged. "
        "Retrying with the same Idempotency-Key is safe.",
        instance=path,
    )


async def _unexpected_error(request: Request, exc: Exception) -> ProblemResponse:
    if database_unavailable(exc):
        logger.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return service_unavailable(request.url.path)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return internal_error(request.url.path)


class UnexpectedErrorMiddleware:
    """Answers an exception that no handler took with the 500 problem, and keeps it there.

    Starlette gives an ``Exception`` handler to its outermost middleware, which answers
    and then re-raises: the server logs "Exception in ASGI application" and drops the
    keep-alive connection, and the answer is built after the request id is gone. This
    sits inside :class:`~marquee_platform.middleware.RequestContextMiddleware` (and the
    metrics), so the 500 carries the request id and is counted, and the exception ends
    here. An exception after the response started cannot become a problem any more: it
    goes on to the server, which closes the connection rather than let a truncated body
    pass for a whole one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as error:
            if response_started:
                raise  # logged by the handler in Starlette's outermost middleware
            if database_unavailable(error):
                logger.warning(
                    "database unavailable on %s %s: %s",
                    scope["method"],
                    scope["path"],
                    type(error).__name__,
                )
                await service_unavailable(scope["path"])(scope, receive, send)
                return
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await internal_error(scope["path"])(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Only for errors raised outside UnexpectedErrorMiddleware (in an outer middleware).
    app.add_exception_handler(Exception, _unexpected_error)
