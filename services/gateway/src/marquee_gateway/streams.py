"""``GET /api/v1/stream``: real-time messages for the browser as Server-Sent Events.

A stream carries the caller's own channel ``user:<id>`` when signed in, and the public
channels ``event:<id>`` of ``?events=``. Each message is framed as::

    id: 1732000000000-0
    event: availability-changed
    data: {"channel":"event:42","data":{...the publisher's JSON...}}

The id grows across every channel, so a reconnecting browser's ``Last-Event-ID`` (header,
sent automatically by EventSource, or ``?last_event_id=``) says exactly what it has seen:
the stream subscribes first, then replays what came after that id from the channels'
Redis streams, then goes live, skipping anything it already sent. Idle streams get a
``: ping`` comment every ``stream_heartbeat_seconds``.

An open stream is the request's own coroutine (plus a small task that notices the client
leaving), served by :class:`StreamHandoffMiddleware` outside the middleware stack once set
up. It sleeps on a future that the process-wide :class:`~marquee_gateway.fanout.StreamHub`
resolves when a message arrives: no timer per write, no Redis connection of its own,
about 17 KiB per idle stream in all (bench/gateway_streams_bench.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Security
from fastapi.security import HTTPBearer
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from marquee_gateway.edge import PRINCIPAL_STATE_KEY, STREAM_PATH
from marquee_gateway.fanout import Frame, StreamHub, Subscriber, encode_message
from marquee_gateway.metrics import STREAM_OVERFLOWS, STREAMS_ACTIVE
from marquee_gateway.settings import GatewaySettings
from marquee_platform.errors import InvalidInput, PermissionDenied, Unauthenticated, Unavailable
from marquee_platform.realtime import event_channel, parse_message_id, read_after, user_channel
from marquee_platform.security import Principal

logger = logging.getLogger(__name__)

HANDOFF_SCOPE_KEY = "marquee.stream_handoff"
_EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PING = b": ping\n\n"
_OVERFLOW = (
    b"event: overflow\n"
    b'data: {"detail":"You fell too far behind; reconnect with your Last-Event-ID to '
    b'catch up."}\n\n'
)
_TOKEN_EXPIRED = (
    b"event: token-expired\n"
    b'data: {"detail":"Your access token expired; refresh it and reconnect with '
    b'last_event_id to continue where you left off."}\n\n'
)

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from the auth service: `Authorization: Bearer <token>`.",
)


class EventStreamResponse(Response):
    """An SSE response fed by a :class:`Subscriber` until the client leaves."""

    media_type = "text/event-stream"

    def __init__(
        self,
        *,
        hub: StreamHub,
        subscriber: Subscriber,
        replay: list[Frame],
        resume_after: tuple[int, int] | None,
        settings: GatewaySettings,
        expires_at: float | None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-cache, no-transform",
                "X-Accel-Buffering": "no",  # tell nginx-style proxies not to buffer
            }
        )
        self._hub = hub
        self._subscriber = subscriber
        self._replay = replay
        self._last = resume_after
        self._settings = settings
        self._expires_at = expires_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # Through every middleware: CORS, rate-limit headers, request id, metrics.
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            prelude = f"retry: {self._settings.stream_retry_milliseconds}\n\n".encode()
            await self._send(send, prelude + b"".join(frame.data for frame in self._replay))
            self._replay = []
        except BaseException:
            await self._hub.unsubscribe(self._subscriber)
            raise
        handoff: _Handoff | None = scope.get(HANDOFF_SCOPE_KEY)
        if handoff is not None:
            handoff.stream = self  # StreamHandoffMiddleware serves the rest
            return
        await self.serve(receive, send)

    async def serve(self, receive: Receive, send: Send) -> None:
        """The long phase: live messages and heartbeats until the client leaves."""
        subscriber = self._subscriber
        watcher = asyncio.ensure_future(_close_on_disconnect(receive, subscriber))
        self._hub.track(subscriber)
        STREAMS_ACTIVE.inc()
        try:
            await self._stream(send)
        except asyncio.CancelledError:
            if subscriber.closed_because != "stalled":
                raise
            # The hub gave up on a client that stopped reading. Returning without finishing
            # the response makes the server drop the connection.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            watcher.cancel()
            self._hub.untrack(subscriber)
            STREAMS_ACTIVE.dec()
            await self._hub.unsubscribe(subscriber)

    async def _stream(self, send: Send) -> None:
        subscriber = self._subscriber
        heartbeat = self._settings.stream_heartbeat_seconds
        while True:
            if subscriber.pending:
                chunk = self._take_pending()
                if chunk:
                    await self._send(send, chunk)
                continue
            reason = subscriber.closed_because
            if reason == "disconnected":
                return
            if reason is not None:
                if reason == "overflow":
                    STREAM_OVERFLOWS.inc()
                    await self._send(send, _OVERFLOW)
                break  # reconnect or shutdown: the browser resumes from its Last-Event-ID
            timeout = heartbeat
            if self._expires_at is not None:
                left = self._expires_at - time.time()
                if left <= 0:
                    await self._send(send, _TOKEN_EXPIRED)
                    break
                timeout = min(timeout, left)
            if not await subscriber.wait(timeout) and timeout == heartbeat:
                await self._send(send, _PING)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _take_pending(self) -> bytes:
        """The pending frames not sent yet, in order (live duplicates of the replay are
        skipped: ids only grow, so anything at or below the last one sent was sent)."""
        last = self._last
        chunks: list[bytes] = []
        for frame in self._subscriber.take():
            if last is not None and frame.order <= last:
                continue
            last = frame.order
            chunks.append(frame.data)
        self._last = last
        return b"".join(chunks)

    async def _send(self, send: Send, data: bytes) -> None:
        subscriber = self._subscriber
        subscriber.sending_since = time.monotonic()  # watched by the hub: see drop_if_stalled
        try:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            subscriber.sending_since = 0.0


class _Handoff:
    __slots__ = ("stream",)

    def __init__(self) -> None:
        self.stream: EventStreamResponse | None = None


class StreamHandoffMiddleware:
    """Serves the long idle life of a stream outside the rest of the middleware.

    A stream is set up like any request: every middleware sees it (CORS and rate-limit
    headers, the request id, metrics, tracing). Then it idles for hours. Left where it
    started, each idle stream would keep the whole stack's coroutine frames, its tracing
    span and the framework's per-request state alive: 35 KiB each, against 17 KiB when
    served from here (bench/gateway_streams_bench.py, 10,000 streams). So the response
    sends its headers through the stack, leaves itself here and returns, and this outermost
    middleware serves the rest with the server's own ``send``/``receive``. To the inner
    middleware the request ended when the stream was open: request metrics and traces
    measure the set-up, and ``marquee_gateway_streams_active`` counts the open streams.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STREAM_PATH:
            await self.app(scope, receive, send)
            return
        server_keys = set(scope)
        handoff = _Handoff()
        scope[HANDOFF_SCOPE_KEY] = handoff
        await self.app(scope, receive, send)
        if handoff.stream is not None:
            stream, handoff.stream = handoff.stream, None
            # The server keeps the scope for the connection's life: drop what the stack
            # added for the request it has finished (exit stacks, route, ...).
            for key in set(scope) - server_keys:
                del scope[key]
            await stream.serve(receive, send)


async def _close_on_disconnect(receive: Receive, subscriber: Subscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    subscriber.close("disconnected")


def _event_channels(events: str | None, limit: int) -> list[str]:
    if not events:
        return []
    event_ids = list(dict.fromkeys(part.strip() for part in events.split(",") if part.strip()))
    bad = [event_id for event_id in event_ids if not _EVENT_ID.match(event_id)]
    if bad:
        raise InvalidInput(
            f"{bad[0]!r} is not an event id; pass ids separated by commas: ?events=42,43"
        )
    if len(event_ids) > limit:
        raise InvalidInput(
            f"A stream can watch at most {limit} events ({len(event_ids)} asked); "
            "open another stream for the rest."
        )
    return [event_channel(event_id) for event_id in event_ids]


def streams_router() -> APIRouter:
    router = APIRouter(tags=["gateway"])

    @router.get(
        STREAM_PATH,
        summary="Real-time messages (Server-Sent Events)",
        response_class=EventStreamResponse,
        response_model=None,
        status_code=200,
        dependencies=[Security(_bearer)],
        openapi_extra={"security": [{"HTTPBearer": []}, {}]},  # signing in is optional
        responses={
            200: {
                "description": "An endless `text/event-stream`: `id:` (a message id), "
                "`event:` (the message type), `data:` (JSON `{channel, data}`), and a "
                "`: ping` comment when idle. `event: overflow` (the client fell behind) and "
                "`event: token-expired` end the stream; reconnect with `last_event_id`.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            401: {"description": "The token is missing (for `user`), invalid or expired"},
            403: {"description": "`user` names someone else"},
            422: {"description": "Nothing to watch, a bad event id, or a bad Last-Event-ID"},
            503: {"description": "Real-time messages are unavailable; retry shortly"},
        },
    )
    async def stream(
        request: Request,
        events: Annotated[
            str | None,
            Query(description="Event ids to watch, comma-separated (public channels)"),
        ] = None,
        user: Annotated[
            str | None,
            Query(
                description="Your own user id, to insist on your channel (needs a token); "
                "signed-in streams carry it anyway"
            ),
        ] = None,
        access_token: Annotated[
            str | None,
            Query(
                description="The access token, for clients that cannot send headers "
                "(EventSource). It ends up in URLs and logs: prefer the header when you can."
            ),
        ] = None,
        last_event_id: Annotated[
            str | None,
            Query(
                description="Resume after this message id (a new EventSource cannot "
                "send the Last-Event-ID header)"
            ),
        ] = None,
        last_event_id_header: Annotated[
            str | None, Header(alias="Last-Event-ID", include_in_schema=False)
        ] = None,
    ) -> EventStreamResponse:
        """Anyone may watch events; only you may watch your own channel."""
        settings: GatewaySettings = request.app.state.settings
        hub: StreamHub = request.app.state.stream_hub
        principal: Principal | None = getattr(request.state, PRINCIPAL_STATE_KEY, None)
        channels: list[str] = []
        if user is not None:
            if principal is None:
                raise Unauthenticated(
                    "Sign in to watch your own channel: send your access token "
                    "(Authorization header, or access_token for EventSource).",
                    code="authentication-required",
                )
            if user != principal.user_id:
                raise PermissionDenied("You can only watch your own user channel.")
        if principal is not None:
            channels.append(user_channel(principal.user_id))
        channels += _event_channels(events, settings.stream_max_events)
        if not channels:
            raise InvalidInput(
                "Nothing to watch: pass ?events=<event id>,… or sign in for your own channel."
            )
        # The header is what EventSource sends when it reconnects by itself (with the
        # original URL, whose last_event_id may be older), so it wins.
        resume_from = last_event_id_header or last_event_id
        resume_after: tuple[int, int] | None = None
        if resume_from:
            try:
                resume_after = parse_message_id(resume_from)
            except ValueError:
                raise InvalidInput(
                    "Last-Event-ID is not a message id from this stream; "
                    "reconnect without it to start afresh."
                ) from None
        if hub.open_streams >= settings.stream_max_connections:
            raise Unavailable("This gateway has too many open streams; retry shortly.")
        subscriber = Subscriber(tuple(channels), limit=settings.stream_queue_size)
        await hub.subscribe(subscriber)
        replay: list[Frame] = []
        if resume_from:
            try:
                messages = await read_after(
                    request.app.state.edge_redis,
                    channels,
                    resume_from,
                    limit_per_channel=settings.stream_replay_limit,
                )
            except (RedisError, OSError) as error:
                await hub.unsubscribe(subscriber)
                raise Unavailable(
                    "Cannot read the messages you missed right now; reconnect shortly."
                ) from error
            replay = [encode_message(message) for message in messages]
            if replay:
                resume_after = replay[-1].order
        return EventStreamResponse(
            hub=hub,
            subscriber=subscriber,
            replay=replay,
            resume_after=resume_after,
            settings=settings,
            expires_at=principal.expires_at.timestamp() if principal else None,
        )

    return router
