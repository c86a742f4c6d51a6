"""The gateway's pure pieces, with fakes: no network, milliseconds."""

from __future__ import annotations

import asyncio
import json
import time
from ipaddress import ip_network
from typing import Any

import pytest
from starlette.types import Message

from marquee_gateway.api_docs import merge_openapi
from marquee_gateway.edge import rate_limit_identity
from marquee_gateway.fanout import Frame, Subscriber, encode_message
from marquee_gateway.ratelimit import RateClass, RateDecision, classify
from marquee_gateway.settings import GatewaySettings
from marquee_gateway.streams import EventStreamResponse
from marquee_platform.realtime import RealtimeMessage, is_valid_channel, parse_message_id


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v1/auth/login", RateClass.AUTH),
        ("DELETE", "/api/v1/auth/sessions/1", RateClass.AUTH),
        ("GET", "/api/v1/auth/.well-known/jwks.json", RateClass.READ),
        ("POST", "/api/v1/booking/orders", RateClass.WRITE),
        ("PATCH", "/api/v1/events/events/1", RateClass.WRITE),
        ("GET", "/api/v1/search/events", RateClass.READ),
        ("HEAD", "/api/v1/search/events", RateClass.READ),
        ("OPTIONS", "/api/v1/booking/orders", RateClass.READ),
        ("POST", "/api/v1/auth", RateClass.AUTH),
        ("POST", "/api/v1/authors/x", RateClass.WRITE),
    ],
)
def test_requests_are_classified(method: str, path: str, expected: RateClass) -> None:
    assert classify(method, path) is expected


def _scope(peer: str, forwarded_for: str | None = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    return {"client": (peer, 50000), "headers": headers}


def test_the_client_address_is_the_peer_unless_it_is_a_trusted_proxy() -> None:
    proxies = [ip_network("10.0.0.0/8")]
    assert rate_limit_identity(_scope("203.0.113.9", "1.2.3.4"), []) == "203.0.113.9"
    assert rate_limit_identity(_scope("203.0.113.9", "1.2.3.4"), proxies) == "203.0.113.9"
    assert rate_limit_identity(_scope("10.0.0.2", "1.2.3.4"), proxies) == "1.2.3.4"
    # What the client wrote itself (left) is ignored; proxies are skipped from the right.
    assert (
        rate_limit_identity(_scope("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.7"), proxies) == "1.2.3.4"
    )
    assert rate_limit_identity(_scope("10.0.0.2"), proxies) == "10.0.0.2"
    assert rate_limit_identity(_scope("2001:db8:1:2:aaaa::1"), []) == "2001:db8:1:2::/64"


def test_rate_decisions_become_headers() -> None:
    allowed = RateDecision(True, 10, 60, 9, 6, 1)
    refused = RateDecision(False, 10, 60, 0, 60, 6)
    assert dict(allowed.headers()) == {
        b"ratelimit-limit": b"10",
        b"ratelimit-remaining": b"9",
        b"ratelimit-reset": b"6",
        b"ratelimit-policy": b"10;w=60",
    }
    assert dict(refused.headers())[b"retry-after"] == b"6"


def test_messages_are_framed_as_server_sent_events() -> None:
    message = RealtimeMessage("event:42", "1700000000000-3", "changed", '{"a":1}')
    frame = encode_message(message)
    assert frame.order == (1700000000000, 3)
    assert frame.data == (
        b'id: 1700000000000-3\nevent: changed\ndata: {"channel":"event:42","data":{"a":1}}\n\n'
    )
    multi_line = encode_message(RealtimeMessage("user:1", "1-0", "x", '{\n"a": 1\n}'))
    assert multi_line.data.count(b"data: ") == 3
    assert parse_message_id("12-0") == (12, 0)
    with pytest.raises(ValueError, match="not a real-time message id"):
        parse_message_id("12")
    assert is_valid_channel("event:42")
    assert not is_valid_channel("sequence")
    assert not is_valid_channel("event:4 2")


async def test_a_subscriber_that_falls_behind_overflows() -> None:
    subscriber = Subscriber(("event:1",), limit=2)
    assert await subscriber.wait(0.001) is False
    for n in range(2):
        subscriber.deliver(Frame((n, 0), b"x"))
    assert not subscriber.overflowed
    subscriber.deliver(Frame((3, 0), b"x"))
    assert subscriber.overflowed
    assert not subscriber.pending, "the client catches up from its Last-Event-ID"
    assert await subscriber.wait(10) is True


def test_a_stream_behind_gets_only_the_newest_queue_progress_of_a_channel() -> None:
    subscriber = Subscriber(("event:1", "event:2"), limit=3)
    frames = [
        encode_message(RealtimeMessage(channel, f"{n}-0", kind, json.dumps({"serving": n})))
        for n, (channel, kind) in enumerate(
            [
                ("event:1", "queue-progress"),
                ("event:1", "availability-changed"),
                ("event:2", "queue-progress"),
                ("event:1", "queue-progress"),
                ("event:1", "queue-progress"),
            ]
        )
    ]
    for frame in frames:
        subscriber.deliver(frame)
    assert not subscriber.overflowed, "replaced frames take no room"
    assert [frame.order for frame in subscriber.take()] == [(1, 0), (2, 0), (4, 0)]
    assert frames[1].latest_wins is None, "other types are all delivered"


class FakeHub:
    def __init__(self) -> None:
        self.serving: set[Subscriber] = set()
        self.unsubscribed: list[Subscriber] = []

    def track(self, subscriber: Subscriber) -> None:
        subscriber.task = asyncio.current_task()
        self.serving.add(subscriber)

    def untrack(self, subscriber: Subscriber) -> None:
        self.serving.discard(subscriber)

    async def unsubscribe(self, subscriber: Subscriber) -> None:
        self.unsubscribed.append(subscriber)


class SlowClient:
    """An ASGI ``send`` that can be made to block, like a client that stopped reading."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.blocked = asyncio.Event()
        self._received = asyncio.Event()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            if not self.reading.is_set():
                self.blocked.set()
                await self.reading.wait()
            self.bodies.append(message["body"])
            self._received.set()

    async def wait_for(self, body: bytes) -> None:
        async with asyncio.timeout(5):
            while body not in self.bodies:
                self._received.clear()
                await self._received.wait()

    @staticmethod
    async def receive() -> Message:
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")


def _response(
    subscriber: Subscriber, hub: FakeHub, *, expires_at: float | None = None, **settings: Any
) -> EventStreamResponse:
    return EventStreamResponse(
        hub=hub,  # type: ignore[arg-type]
        subscriber=subscriber,
        replay=[Frame((1, 0), b"replayed\n\n")],
        resume_after=(1, 0),
        settings=GatewaySettings(**settings),
        expires_at=expires_at,
    )


async def test_a_client_that_stops_reading_gets_overflow_and_is_let_go() -> None:
    subscriber = Subscriber(("event:1",), limit=2)
    hub, client = FakeHub(), SlowClient()
    response = _response(subscriber, hub, stream_heartbeat_seconds=60)
    streaming = asyncio.create_task(response({"type": "http"}, client.receive, client.send))
    subscriber.deliver(Frame((1, 0), b"duplicate of the replay\n\n"))
    subscriber.deliver(Frame((2, 0), b"two\n\n"))
    await client.wait_for(b"two\n\n")
    client.reading.clear()
    subscriber.deliver(Frame((3, 0), b"three\n\n"))
    async with asyncio.timeout(5):
        await client.blocked.wait()
    for n in range(4, 7):
        subscriber.deliver(Frame((n, 0), b"lost\n\n"))
    assert subscriber.overflowed
    client.reading.set()
    async with asyncio.timeout(5):
        await streaming
    assert client.bodies[0].startswith(b"retry: 3000\n\nreplayed\n\n")
    assert client.bodies[1:3] == [b"two\n\n", b"three\n\n"]
    assert client.bodies[3].startswith(b"event: overflow\n")
    assert client.bodies[4] == b"", "the response is finished"
    assert hub.unsubscribed == [subscriber]


async def test_streams_ping_when_idle_and_end_when_the_token_expires() -> None:
    subscriber = Subscriber(("user:1",), limit=2)
    hub, client = FakeHub(), SlowClient()
    response = _response(
        subscriber, hub, expires_at=time.time() + 0.3, stream_heartbeat_seconds=0.05
    )
    async with asyncio.timeout(5):
        await response({"type": "http"}, client.receive, client.send)
    assert b": ping\n\n" in client.bodies
    assert client.bodies[-2].startswith(b"event: token-expired\n")
    assert not hub.serving


async def test_a_client_stuck_mid_write_is_dropped() -> None:
    subscriber = Subscriber(("event:1",), limit=10)
    hub, client = FakeHub(), SlowClient()
    response = _response(subscriber, hub, stream_heartbeat_seconds=60)
    streaming = asyncio.create_task(response({"type": "http"}, client.receive, client.send))
    await client.wait_for(b"retry: 3000\n\nreplayed\n\n")
    client.reading.clear()
    subscriber.deliver(Frame((2, 0), b"two\n\n"))
    async with asyncio.timeout(5):
        await client.blocked.wait()
    assert not subscriber.drop_if_stalled(time.monotonic(), timeout=30)
    assert subscriber.drop_if_stalled(time.monotonic() + 31, timeout=30)
    async with asyncio.timeout(5):
        await streaming  # ends quietly: the server then drops the connection
    assert not streaming.cancelled()
    assert client.bodies[-1] != b"", "the response is left unfinished"
    assert hub.unsubscribed == [subscriber]
    assert not hub.serving


def _service(schemas: dict[str, Any], paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas, **extra},
    }


def test_merging_renames_components_and_rewrites_every_reference() -> None:
    pet = {
        "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
        "discriminator": {
            "propertyName": "kind",
            "mapping": {"cat": "#/components/schemas/Cat", "dog": "#/components/schemas/Dog"},
        },
    }
    operation = {
        "operationId": "list",
        "responses": {"200": {"$ref": "#/components/responses/Pets"}},
        "security": [{"bearer": []}],
    }
    alpha = _service(
        {"Pet": pet, "Cat": {}, "Dog": {}},
        {"/api/v1/alpha/pets": {"get": operation}, "/healthz": {"get": {}}},
        responses={"Pets": {"content": {"a": {"schema": {"$ref": "#/components/schemas/Pet"}}}}},
        securitySchemes={"bearer": {"type": "http", "scheme": "bearer"}},
    )
    beta = _service(
        {"Pet": {}},
        {"/api/v1/beta/pets": {"get": operation}, "/api/v1/alpha/sneaky": {"get": {}}},
        responses={"Pets": {}},
        securitySchemes={"bearer": {"type": "apiKey", "in": "header", "name": "X-Key"}},
    )
    merged = merge_openapi({"paths": {}}, {"alpha": alpha, "beta": beta}, {})

    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"alpha_Pet", "alpha_Cat", "alpha_Dog", "beta_Pet"}
    assert schemas["alpha_Pet"]["discriminator"]["mapping"] == {
        "cat": "#/components/schemas/alpha_Cat",
        "dog": "#/components/schemas/alpha_Dog",
    }
    assert merged["components"]["responses"]["alpha_Pets"]["content"]["a"]["schema"] == {
        "$ref": "#/components/schemas/alpha_Pet"
    }
    assert set(merged["paths"]) == {"/api/v1/alpha/pets", "/api/v1/beta/pets"}
    alpha_list = merged["paths"]["/api/v1/alpha/pets"]["get"]
    beta_list = merged["paths"]["/api/v1/beta/pets"]["get"]
    assert alpha_list["responses"]["200"] == {"$ref": "#/components/responses/alpha_Pets"}
    assert (alpha_list["operationId"], beta_list["operationId"]) == ("list", "beta_list")
    assert alpha_list["security"] == [{"bearer": []}]
    assert beta_list["security"] == [{"beta_bearer": []}], "a different scheme is renamed"
    assert alpha["components"]["schemas"]["Pet"] is pet, "the inputs are left alone"
    assert pet["oneOf"][0] == {"$ref": "#/components/schemas/Cat"}


def test_readyz_expects_the_workers_of_the_routed_services_unless_told() -> None:
    from marquee_gateway.workers import expected_workers
    from marquee_platform.service import discover_services

    installed = discover_services()
    groups, relays = expected_workers(["auth", "search", "nowhere"], None, None)
    assert groups == [n for n in ("auth", "search") if installed[n].consumer_factory]
    assert "search" in groups
    assert relays == ["auth", "search"]
    assert expected_workers(["search"], [], ["x"]) == ([], ["x"])
