"""Real-time streams (SSE) through a real gateway, real Redis and the platform publisher."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI

from marquee_gateway.main import create_app
from marquee_gateway.settings import GatewaySettings
from marquee_platform.realtime import (
    event_channel,
    parse_message_id,
    publish,
    read_after,
    user_channel,
)
from marquee_testing.fixtures import TokenIssuer, serve_in_thread
from marquee_testing.localinfra import free_port
from marquee_testing.waiting import wait_until


@dataclass
class Gateway:
    url: str
    app: FastAPI


@pytest.fixture(scope="module")
def gateway(redis_url: str, token_issuer: TokenIssuer) -> Iterator[Gateway]:
    settings = GatewaySettings(
        service_urls={"down": f"http://127.0.0.1:{free_port()}"},
        jwks_url=token_issuer.jwks_url,
        redis_url=redis_url,
        rate_limits_enabled=False,
        stream_heartbeat_seconds=0.3,
        log_json=False,
    )
    app = create_app(settings)
    with serve_in_thread(app) as url:
        yield Gateway(url, app)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = redis_asyncio.from_url(redis_url)
    yield client
    await client.aclose()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class ServerSentEvent:
    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: str | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class EventReader:
    """Parses an SSE body line by line; every read has a deadline."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, *, timeout: float = 5.0, comments: bool = False) -> ServerSentEvent:
        """The next event (or, with ``comments``, the next comment-only block too)."""
        async with asyncio.timeout(timeout):
            event = ServerSentEvent()
            async for line in self._lines:
                if line == "":
                    is_comment_only = event.comments and event.data is None and not event.retry
                    if event.data is not None or event.retry or (comments and is_comment_only):
                        return event
                    event = ServerSentEvent()
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    event.comments.append(value)
                elif name == "data":
                    event.data = value if event.data is None else f"{event.data}\n{value}"
                else:
                    setattr(event, name, value)
            raise AssertionError("the stream ended")

    async def next_message(self, *, timeout: float = 5.0) -> ServerSentEvent:
        """The next event carrying data (skips the retry hint and pings)."""
        while True:
            event = await self.next(timeout=timeout)
            if event.data is not None:
                return event


@asynccontextmanager
async def open_stream(
    base_url: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> AsyncIterator[EventReader]:
    """A connected stream: returns once the gateway sent its first frame (the retry hint),
    which it does only after its channels are subscribed and any replay is sent."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
        client.stream("GET", "/api/v1/stream", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        reader = EventReader(response)
        first = await reader.next()
        assert first.retry is not None
        yield reader


async def test_messages_arrive_on_the_users_own_channel_and_on_event_channels(
    gateway: Gateway, redis: Any, token_issuer: TokenIssuer
) -> None:
    alice, event_id = new_id("alice"), new_id("evt")
    headers = {**token_issuer.headers(alice), "Origin": "http://localhost:5173"}
    async with open_stream(gateway.url, {"events": event_id}, headers) as stream:
        response_headers = stream.response.headers
        assert response_headers["content-type"].startswith("text/event-stream")
        assert response_headers["cache-control"].startswith("no-cache")
        assert response_headers["access-control-allow-origin"] == "http://localhost:5173"
        assert response_headers["x-request-id"]
        mine = await publish(redis, user_channel(alice), "order-paid", {"order": 7})
        public = await publish(redis, event_channel(event_id), "availability-changed", {"n": 3})

        first = await stream.next_message()
        second = await stream.next_message()

    assert (first.id, first.event) == (mine, "order-paid")
    assert first.json() == {"channel": f"user:{alice}", "data": {"order": 7}}
    assert (second.id, second.event) == (public, "availability-changed")
    assert second.json() == {"channel": f"event:{event_id}", "data": {"n": 3}}


async def test_eventsource_clients_may_send_the_token_as_a_query_parameter(
    gateway: Gateway, redis: Any, token_issuer: TokenIssuer
) -> None:
    alice = new_id("alice")
    params = {"access_token": token_issuer.token(alice), "user": alice}
    async with open_stream(gateway.url, params) as stream:
        sent = await publish(redis, user_channel(alice), "ticket-issued", {"ticket": 1})
        received = await stream.next_message()
    assert received.id == sent


async def test_another_users_channel_is_not_visible(
    gateway: Gateway, redis: Any, token_issuer: TokenIssuer
) -> None:
    alice, bob = new_id("alice"), new_id("bob")
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        someone_else = await client.get(
            "/api/v1/stream", params={"user": bob}, headers=token_issuer.headers(alice)
        )
        anonymous = await client.get("/api/v1/stream", params={"user": alice})
        bad_token = await client.get(
            "/api/v1/stream", params={"access_token": "not-a-token", "events": "1"}
        )
    assert someone_else.status_code == 403
    assert someone_else.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401
    assert bad_token.status_code == 401

    async with open_stream(gateway.url, {}, token_issuer.headers(alice)) as stream:
        await publish(redis, user_channel(bob), "order-paid", {"for": "bob"})
        mine = await publish(redis, user_channel(alice), "order-paid", {"for": "alice"})
        # Channels are delivered in publish order, so had bob's message reached this
        # stream it would come first.
        received = await stream.next_message()
    assert received.id == mine
    assert received.json()["data"] == {"for": "alice"}


async def test_idle_streams_get_heartbeats(gateway: Gateway) -> None:
    async with open_stream(gateway.url, {"events": new_id("evt")}) as stream:
        ping = await stream.next(comments=True, timeout=5)
    assert ping.comments == ["ping"]
    assert ping.data is None


async def test_resuming_with_last_event_id_sends_exactly_the_missed_messages(
    gateway: Gateway, redis: Any, token_issuer: TokenIssuer
) -> None:
    alice, event_id = new_id("alice"), new_id("evt")
    headers = token_issuer.headers(alice)
    params = {"events": event_id}
    async with open_stream(gateway.url, params, headers) as stream:
        seen = await publish(redis, event_channel(event_id), "changed", {"n": 1})
        assert (await stream.next_message()).id == seen

    missed = [
        await publish(redis, user_channel(alice), "order-paid", {"n": 2}),
        await publish(redis, event_channel(event_id), "changed", {"n": 3}),
        await publish(redis, user_channel(alice), "ticket-issued", {"n": 4}),
    ]
    async with open_stream(gateway.url, params, {**headers, "Last-Event-ID": seen}) as stream:
        replayed = [(await stream.next_message()).id for _ in missed]
        live = await publish(redis, event_channel(event_id), "changed", {"n": 5})
        after = await stream.next_message()
    assert replayed == missed
    assert after.id == live, "nothing replayed is sent twice, nothing live is lost"

    # A new EventSource cannot send the header: the query parameter does the same.
    async with open_stream(gateway.url, {**params, "last_event_id": missed[1]}, headers) as s:
        assert (await s.next_message()).id == missed[2]
        assert (await s.next_message()).id == live


async def test_streams_are_cleaned_up_when_the_client_leaves(gateway: Gateway, redis: Any) -> None:
    event_id = new_id("evt")
    hub = gateway.app.state.stream_hub
    async with open_stream(gateway.url, {"events": event_id}):
        assert hub.open_streams >= 1
        numsub = await redis.pubsub_numsub(f"rt:event:{event_id}")
        assert numsub[0][1] == 1

    async def unsubscribed() -> bool:
        numsub = await redis.pubsub_numsub(f"rt:event:{event_id}")
        return bool(numsub[0][1] == 0)

    await wait_until(unsubscribed, timeout=5, message="the gateway unsubscribes")
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        metrics = (await client.get("/metrics")).text
    assert "marquee_gateway_streams_active" in metrics


async def test_many_streams_on_one_channel_share_one_subscription(
    gateway: Gateway, redis: Any
) -> None:
    event_id = new_id("evt")
    async with (
        open_stream(gateway.url, {"events": event_id}) as first,
        open_stream(gateway.url, {"events": f"{event_id},{new_id('evt')}"}) as second,
    ):
        numsub = await redis.pubsub_numsub(f"rt:event:{event_id}")
        sent = await publish(redis, event_channel(event_id), "changed", {})
        assert (await first.next_message()).id == sent
        assert (await second.next_message()).id == sent
    assert numsub[0][1] == 1


async def test_when_redis_drops_the_pubsub_connection_streams_resume_without_loss(
    gateway: Gateway, redis: Any
) -> None:
    event_id = new_id("evt")
    hub = gateway.app.state.stream_hub
    async with open_stream(gateway.url, {"events": event_id}) as stream:
        seen = await publish(redis, event_channel(event_id), "changed", {"n": 1})
        assert (await stream.next_message()).id == seen
        clients = await redis.client_list(_type="pubsub")
        [connection] = [c for c in clients if c["name"] == hub.client_name]
        await redis.client_kill_filter(_id=connection["id"])
        missed = await publish(redis, event_channel(event_id), "changed", {"n": 2})
        with pytest.raises(AssertionError, match="the stream ended"):
            await stream.next_message()
    # EventSource reconnects by itself after the retry delay, sending Last-Event-ID.
    async with open_stream(gateway.url, {"events": event_id}, {"Last-Event-ID": seen}) as stream:
        assert (await stream.next_message()).id == missed
        live = await publish(redis, event_channel(event_id), "changed", {"n": 3})
        assert (await stream.next_message()).id == live


async def test_message_ids_grow_across_channels_even_with_concurrent_publishers(
    gateway: Gateway, redis: Any
) -> None:
    channels = [event_channel(new_id("evt")) for _ in range(3)]
    async with open_stream(
        gateway.url, {"events": ",".join(c.removeprefix("event:") for c in channels)}
    ) as stream:
        sent = await asyncio.gather(
            *(publish(redis, channels[n % 3], "changed", {"n": n}) for n in range(60))
        )
        received = [(await stream.next_message()).id for _ in sent]
    assert len(set(sent)) == 60
    assert received == sorted(sent, key=parse_message_id), "one order across channels"
    replayed = await read_after(redis, channels, received[9], limit_per_channel=100)
    assert [message.id for message in replayed] == received[10:]


async def test_requests_that_cannot_be_streamed_are_problems(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        nothing = await client.get("/api/v1/stream")
        too_many = await client.get(
            "/api/v1/stream", params={"events": ",".join(str(i) for i in range(21))}
        )
        bad_event = await client.get("/api/v1/stream", params={"events": "a b"})
        bad_resume = await client.get(
            "/api/v1/stream", params={"events": "1"}, headers={"Last-Event-ID": "yesterday"}
        )
    for response in (nothing, too_many, bad_event, bad_resume):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert "at most 20" in too_many.json()["detail"]
