"""One Redis pub/sub connection per process, fanned out to every open stream.

Each SSE connection is a :class:`Subscriber`: a bounded list of encoded frames and one
future to wake its coroutine. The :class:`StreamHub` subscribes each channel on Redis once
however many streams watch it (reference counted through the subscriber sets), encodes
each message once, and hands the same bytes to every subscriber. An idle stream therefore
costs a few small objects and no Redis connection.

Subscriptions are confirmed before a stream replays history: Redis answers a SUBSCRIBE on
the pub/sub connection in order, and only after its confirmation is every later publish
guaranteed to reach us, so "subscribe, wait for the confirmation, then read history" has
no gap. The confirmations are matched to our SUBSCRIBE commands in order, which keeps a
quick unsubscribe-then-subscribe of one channel correct.

If the pub/sub connection is lost, messages published meanwhile never reach us. Rather
than guess what was missed, the hub closes every stream; browsers reconnect after the
``retry:`` delay with ``Last-Event-ID`` and are replayed exactly what they missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from marquee_gateway.metrics import REALTIME_MESSAGES, REALTIME_RECONNECTS
from marquee_platform.errors import Unavailable
from marquee_platform.realtime import (
    CHANNEL_PREFIX,
    LATEST_WINS_TYPES,
    RealtimeMessage,
    parse_published,
)

logger = logging.getLogger(__name__)

_CONTROL_CHANNEL = CHANNEL_PREFIX + "-gateway-control"
"""Subscribed for the life of the connection, so the reader always has something to read
and knows when the connection is up. Not a valid channel name, so nothing publishes there."""

_PING_EVERY_SECONDS = 20.0
_DEAD_AFTER_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One message encoded as SSE bytes, shared by every stream that receives it."""

    order: tuple[int, int]
    data: bytes
    latest_wins: str | None = None
    """``<channel> <type>`` for a type in ``LATEST_WINS_TYPES``: a newer frame with the same
    key replaces this one while it is still pending."""


def encode_message(message: RealtimeMessage) -> Frame:
    """``id:``, ``event:`` and one ``data:`` line of JSON ``{"channel": …, "data": …}``.

    The publisher's JSON is compact (one line); a multi-line payload would still be framed
    correctly because each line gets its own ``data:`` prefix.
    """
    data = f'{{"channel":"{message.channel}","data":{message.data}}}'
    data_lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    text = f"id: {message.id}\nevent: {message.type}\n{data_lines}\n"
    latest_wins = f"{message.channel} {message.type}" if message.type in LATEST_WINS_TYPES else None
    return Frame(order=message.order, data=text.encode(), latest_wins=latest_wins)


class Subscriber:
    """The receiving end of one stream: pending frames, and how to wake its coroutine."""

    __slots__ = (
        "_waiter",
        "channels",
        "closed_because",
        "generation",
        "limit",
        "pending",
        "sending_since",
        "task",
    )

    def __init__(self, channels: tuple[str, ...], *, limit: int) -> None:
        self.channels = channels
        self.limit = limit
        self.pending: list[Frame] = []  # a list: an empty deque costs ~600 bytes
        self.closed_because: str | None = None
        self.generation = -1
        self.sending_since = 0.0
        """``time.monotonic()`` when a write to the client began, 0 when not writing."""
        self.task: asyncio.Task[Any] | None = None
        """The task serving the stream, to cancel it if the client stops reading."""
        self._waiter: asyncio.Future[bool] | None = None

    def take(self) -> list[Frame]:
        """The pending frames, oldest first; the list starts afresh."""
        frames, self.pending = self.pending, []
        return frames

    @property
    def overflowed(self) -> bool:
        return self.closed_because == "overflow"

    def deliver(self, frame: Frame) -> None:
        if self.closed_because is not None:
            return
        if frame.latest_wins is not None and self.pending:
            # A stream that is behind gets the newest state once, not every state in turn:
            # under a backlog this keeps its staleness to one pass of the fan-out.
            key = frame.latest_wins
            self.pending = [held for held in self.pending if held.latest_wins != key]
        if len(self.pending) >= self.limit:
            self.pending = []  # the client resumes from its Last-Event-ID instead
            self.close("overflow")
            return
        self.pending.append(frame)
        self._wake()

    def drop_if_stalled(self, now: float, timeout: float) -> bool:
        """Cancel the stream if one write to its client has taken over ``timeout`` s.

        A timer per write would cost more than the write itself with thousands of streams,
        so the hub calls this for every stream every few seconds instead.
        """
        if not self.sending_since or now - self.sending_since <= timeout:
            return False
        self.close("stalled")
        if self.task is not None:
            self.task.cancel()
        return True

    def close(self, reason: str) -> None:
        if self.closed_because is None:
            self.closed_because = reason
        self._wake()

    async def wait(self, timeout: float) -> bool:
        """Until something is pending or the stream is closed (True), or ``timeout``."""
        if self.pending or self.closed_because is not None:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, _resolve, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter, True)


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class StreamHub:
    def __init__(
        self, redis_url: str, *, subscribe_timeout: float = 5.0, send_timeout: float = 30.0
    ) -> None:
        self._redis_url = redis_url
        self.client_name = f"marquee-gateway-realtime-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        """The pub/sub connection's CLIENT SETNAME, to find it in ``CLIENT LIST``."""
        self._subscribe_timeout = subscribe_timeout
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        """The confirmation a channel's subscribers wait for (done once confirmed)."""
        self._unconfirmed: dict[str, deque[asyncio.Future[None]]] = {}
        """Per channel, the SUBSCRIBE commands sent and not yet confirmed, oldest first."""
        self._pubsub: Any = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_pong = 0.0
        self._broken = False
        self._send_timeout = send_timeout
        self._serving: set[Subscriber] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def channel_count(self) -> int:
        return len(self._subscribers)

    @property
    def open_streams(self) -> int:
        """Streams being served by this process."""
        return len(self._serving)

    def track(self, subscriber: Subscriber) -> None:
        """``subscriber``'s stream is being served (by the current task)."""
        subscriber.task = asyncio.current_task()
        self._serving.add(subscriber)

    def untrack(self, subscriber: Subscriber) -> None:
        self._serving.discard(subscriber)
        subscriber.task = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-pubsub")
        self._sweeper = asyncio.create_task(self._drop_stalled(), name="realtime-stalled")

    async def stop(self) -> None:
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reset("shutdown")

    async def _drop_stalled(self) -> None:
        every = min(5.0, self._send_timeout / 2)
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            dropped = sum(
                subscriber.drop_if_stalled(now, self._send_timeout)
                for subscriber in list(self._serving)
            )
            if dropped:
                logger.info("dropped %d stream(s) whose clients stopped reading", dropped)

    async def subscribe(self, subscriber: Subscriber) -> None:
        """Start delivering ``subscriber``'s channels; returns once Redis confirmed them.

        Raises :class:`Unavailable` when the pub/sub connection is down or too slow.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._subscribe_timeout
        if not self._connected.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._connected.wait()
        pubsub = self._pubsub
        if pubsub is None or not self._connected.is_set():
            raise _unavailable()
        subscriber.generation = self._generation
        new_channels: list[str] = []
        waits: list[asyncio.Future[None]] = []
        for channel in subscriber.channels:
            subscribers = self._subscribers.get(channel)
            if subscribers is None:
                self._subscribers[channel] = {subscriber}
                ready: asyncio.Future[None] = loop.create_future()
                self._ready[channel] = ready
                self._unconfirmed.setdefault(channel, deque()).append(ready)
                new_channels.append(channel)
            else:
                subscribers.add(subscriber)
                ready = self._ready[channel]
            if not ready.done():
                waits.append(ready)
        try:
            if new_channels:
                try:
                    await pubsub.subscribe(*(CHANNEL_PREFIX + c for c in new_channels))
                except (RedisError, OSError):
                    # Whether Redis got the command is unknown, so confirmations can no
                    # longer be matched to commands: the reader starts over.
                    self._broken = True
                    raise
            if waits:
                async with asyncio.timeout_at(deadline):
                    await asyncio.gather(*(asyncio.shield(wait) for wait in waits))
        except (RedisError, OSError, TimeoutError, Unavailable) as error:
            await self.unsubscribe(subscriber)
            raise _unavailable() from error

    async def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber.generation != self._generation:
            return  # its channels went with the connection they were subscribed on
        subscriber.generation = -1
        idle: list[str] = []
        for channel in subscriber.channels:
            subscribers = self._subscribers.get(channel)
            if subscribers is None:
                continue
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[channel]
                del self._ready[channel]
                idle.append(channel)
        if idle and self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(*(CHANNEL_PREFIX + channel for channel in idle))
            except (RedisError, OSError) as error:
                logger.warning("could not unsubscribe from %d channel(s): %s", len(idle), error)

    # ---- the reader ---------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            client = redis_asyncio.from_url(
                self._redis_url, retry=Retry(NoBackoff(), 0), client_name=self.client_name
            )
            try:
                await self._read(client)
            except Exception as error:  # whatever went wrong, start over on a new connection
                unexpected = not isinstance(error, RedisError | OSError | TimeoutError)
                if self._connected.is_set():
                    REALTIME_RECONNECTS.inc()
                    logger.warning(
                        "lost the real-time pub/sub connection (%s); closing %d stream(s) "
                        "so they resume from Last-Event-ID",
                        error,
                        sum(len(s) for s in self._subscribers.values()),
                        exc_info=unexpected,
                    )
                    backoff = 0.2
                else:
                    logger.warning(
                        "cannot open the real-time pub/sub connection: %s",
                        error,
                        exc_info=unexpected,
                    )
            finally:
                self._reset("reconnect")
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(backoff * (0.5 + random.random()))  # noqa: S311 (jitter)
            backoff = min(backoff * 2, 5.0)

    async def _read(self, client: Any) -> None:
        loop = asyncio.get_running_loop()
        pubsub = client.pubsub()
        self._pubsub = pubsub
        self._broken = False
        try:
            await pubsub.subscribe(_CONTROL_CHANNEL)
            self._last_pong = loop.time()
            next_ping = loop.time() + _PING_EVERY_SECONDS
            while not self._broken:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._handle(message)
                now = loop.time()
                if now >= next_ping:
                    if now - self._last_pong > _DEAD_AFTER_SECONDS:
                        raise TimeoutError("Redis stopped answering pings")
                    await pubsub.ping()
                    next_ping = now + _PING_EVERY_SECONDS
            raise ConnectionError("a SUBSCRIBE failed half-way; starting over")
        finally:
            self._pubsub = None
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            channel = _channel_name(message["channel"])
            subscribers = self._subscribers.get(channel)
            if not subscribers:
                return
            REALTIME_MESSAGES.inc()
            try:
                frame = encode_message(parse_published(channel, message["data"]))
            except ValueError:
                logger.warning("dropping a malformed real-time message on %s", channel)
                return
            for subscriber in subscribers:
                subscriber.deliver(frame)
        elif kind == "subscribe":
            raw_channel = message["channel"]
            if _channel_name(raw_channel) == _CONTROL_CHANNEL.removeprefix(CHANNEL_PREFIX):
                self._connected.set()
                return
            pending = self._unconfirmed.get(_channel_name(raw_channel))
            if pending:
                _confirm(pending.popleft())
                if not pending:
                    del self._unconfirmed[_channel_name(raw_channel)]
        elif kind == "pong":
            self._last_pong = asyncio.get_running_loop().time()

    def _reset(self, reason: str) -> None:
        """Forget every subscription (the connection they lived on is gone)."""
        self._connected.clear()
        self._generation += 1
        for pending in self._unconfirmed.values():
            for ready in pending:
                if not ready.done():
                    ready.set_exception(_unavailable())
                    ready.exception()  # retrieved: nobody may be waiting any more
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.close(reason)
        self._subscribers.clear()
        self._ready.clear()
        self._unconfirmed.clear()


def _confirm(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _channel_name(raw: bytes | str) -> str:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return text.removeprefix(CHANNEL_PREFIX)


def _unavailable() -> Unavailable:
    return Unavailable(
        "Real-time updates are unavailable right now (the message broker cannot be "
        "reached); reconnect in a few seconds.",
        code="realtime-unavailable",
    )
