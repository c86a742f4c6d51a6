"""The admission gate against real PostgreSQL, Redis and the broker: an event that sells
through the waiting room takes holds only with an admission token that verifies (EdDSA
against the waitroom's keys, for this fan and this event); ``waitroom.onsale-configured.v1``
sets the gate, a newer configuration wins, and the gate survives losing Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as redis_asyncio
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt import PyJWK
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import text

from marquee_contracts import REGISTRY
from marquee_contracts.waitroom import (
    ADMISSION_AUDIENCE,
    ADMISSION_HEADER,
    ADMISSION_ISSUER,
    EVENT_CLAIM,
    ONSALE_CONFIGURED,
    OnSaleConfigured,
)
from marquee_inventory import handlers, tasks
from marquee_inventory.consumers import CONSUMED_TOPICS, InventoryConsumers, build_consumer
from marquee_inventory.holds import EventKeys
from marquee_inventory.main import create_app
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.consumer import Delivery
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer, ensure_topics, publish
from marquee_platform.security import SigningKeys, UnknownSigningKey
from marquee_testing.events import Clock, People
from marquee_testing.fixtures import serve_in_thread
from marquee_testing.inventory import Catalog, HoldApi, PublishedEvent, published_event, seat_id
from marquee_testing.localinfra import RedisServer, free_port
from marquee_testing.waiting import wait_until

FAN = "fan-1"
JWKS_PATH = "/api/v1/waitroom/.well-known/jwks.json"


# ---- the waiting room's side, as the contract fixes it -------------------------------------


@dataclass(frozen=True)
class WaitroomKey:
    """Signs admission tokens like the waitroom (Ed25519, ``kid``, the contract's claims)."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> WaitroomKey:
        return cls(kid or f"wr-test-{uuid.uuid4().hex[:8]}", Ed25519PrivateKey.generate())

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    def claims(
        self, *, event_id: uuid.UUID, user_id: str, expires_in: timedelta = timedelta(minutes=5)
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "iss": ADMISSION_ISSUER,
            "aud": ADMISSION_AUDIENCE,
            "sub": user_id,
            EVENT_CLAIM: str(event_id),
            "jti": f"adm_{uuid.uuid4().hex}",
            "iat": int(now.timestamp()),
            "exp": int((now + expires_in).timestamp()),
        }

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})

    def token(self, *, event_id: uuid.UUID, user_id: str = FAN, **changes: Any) -> str:
        return self.sign({**self.claims(event_id=event_id, user_id=user_id), **changes})


@dataclass(frozen=True)
class StaticKeys:
    """The waitroom's public keys handed over directly (the app fetches them as a JWKS)."""

    keys: dict[str, PyJWK]

    @classmethod
    def of(cls, *keys: WaitroomKey) -> StaticKeys:
        return cls({key.kid: PyJWK(key.public_jwk, algorithm="EdDSA") for key in keys})

    async def get_key(self, kid: str) -> PyJWK:
        try:
            return self.keys[kid]
        except KeyError:
            raise UnknownSigningKey(kid) from None


def onsale_configured(
    event_id: uuid.UUID, *, required: bool = True, configured_at: datetime | None = None
) -> OnSaleConfigured:
    configured_at = configured_at or datetime.now(UTC)
    return OnSaleConfigured(
        event_id=event_id,
        queue_opens_at=configured_at + timedelta(hours=1),
        sale_starts_at=configured_at + timedelta(hours=2),
        admission_required=required,
        configured_at=configured_at,
    )


def delivery_of(message: OnSaleConfigured) -> Delivery:
    return Delivery(
        event=REGISTRY.event(
            ONSALE_CONFIGURED.name,
            message,
            source="/marquee/waitroom",
            subject=str(message.event_id),
        ),
        data=message,
        topic=ONSALE_CONFIGURED.name,
        partition=0,
        offset=0,
        headers={},
    )


async def configure(database: Database, store: HoldStore, message: OnSaleConfigured) -> None:
    """Apply the message with the consumer's handler in one transaction (as the runner does:
    Redis after the commit)."""
    consumers = InventoryConsumers(database=database, store=store)
    async with database.transaction() as session:
        await consumers.on_onsale_configured(delivery_of(message), session)


async def gate_row(database: Database, event_id: uuid.UUID) -> tuple[bool, datetime] | None:
    async with database.reading() as session:
        row = (
            await session.execute(
                text("SELECT required, configured_at FROM admission_gates WHERE event_id = :e"),
                {"e": event_id},
            )
        ).first()
    return (row[0], row[1]) if row is not None else None


async def gate_in_redis(redis: redis_asyncio.Redis, event_id: uuid.UUID) -> dict[str, str]:
    raw = await redis.hgetall(EventKeys.of(event_id).gate)
    return {text_of(name): text_of(value) for name, value in raw.items()}


def text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def code_of(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[1]


def admitted(people: People, token: str | None, user_id: str = FAN) -> dict[str, str]:
    headers = people.customer(user_id)
    return headers if token is None else {**headers, ADMISSION_HEADER: token}


ONE_SEAT = [{"seat_id": seat_id(0, 0, 0)}]


@contextlib.asynccontextmanager
async def inventory_app(
    settings: InventorySettings, clock: Clock, *, admission_keys: SigningKeys | None = None
) -> AsyncIterator[HoldApi]:
    app = create_app(settings, admission_keys=admission_keys)
    app.state.clock = clock
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://inventory.test"
        ) as client,
    ):
        yield HoldApi(client)


@pytest.fixture
def waitroom_key() -> WaitroomKey:
    return WaitroomKey.generate()


@pytest.fixture
async def client(
    inventory_settings: InventorySettings, clock: Clock, waitroom_key: WaitroomKey
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the waitroom's key given directly (the conftest's ``api`` uses it)."""
    async with inventory_app(
        inventory_settings, clock, admission_keys=StaticKeys.of(waitroom_key)
    ) as api:
        yield api.client


async def gated_event(
    catalog: Catalog, database: Database, store: HoldStore, **shape: Any
) -> PublishedEvent:
    event = await catalog.publish(published_event(**shape))
    await configure(database, store, onsale_configured(event.event_id))
    return event


# ---- the hold path ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: WaitroomKey
    event_id: uuid.UUID


def forged_with_the_known_kid(case: Case) -> str:
    return WaitroomKey.generate(kid=case.key.kid).token(event_id=case.event_id)


def symmetric(case: Case) -> str:
    claims = case.key.claims(event_id=case.event_id, user_id=FAN)
    secret = "a-guessed-secret-long-enough-for-hs256"
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": case.key.kid})


def without_event_claim(case: Case) -> str:
    claims = case.key.claims(event_id=case.event_id, user_id=FAN)
    del claims[EVENT_CLAIM]
    return case.key.sign(claims)


REFUSALS = [
    pytest.param(lambda case: None, "admission-required", None, id="no token"),
    pytest.param(lambda case: "", "admission-required", None, id="empty header"),
    pytest.param(
        lambda case: case.key.token(event_id=case.event_id, user_id="fan-2"),
        "admission-invalid",
        "other-account",
        id="another fan's token",
    ),
    pytest.param(
        lambda case: case.key.token(
            event_id=case.event_id,
            iat=int((datetime.now(UTC) - timedelta(minutes=10)).timestamp()),
            exp=int((datetime.now(UTC) - timedelta(minutes=1)).timestamp()),
        ),
        "admission-invalid",
        "expired",
        id="expired token",
    ),
    pytest.param(
        lambda case: case.key.token(event_id=uuid.uuid4()),
        "admission-invalid",
        "other-event",
        id="token for another event",
    ),
    pytest.param(lambda case: "not-a-token", "admission-invalid", "malformed", id="garbage"),
    pytest.param(
        lambda case: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOjF9.AAAA",
        "admission-invalid",
        "malformed",
        id="garbage shaped like a JWT",
    ),
    pytest.param(lambda case: "x" * 10_000, "admission-invalid", "malformed", id="huge"),
    pytest.param(
        lambda case: WaitroomKey.generate().token(event_id=case.event_id),
        "admission-invalid",
        "bad-signature",
        id="signed by an unknown key",
    ),
    pytest.param(
        forged_with_the_known_kid, "admission-invalid", "bad-signature", id="forged signature"
    ),
    pytest.param(symmetric, "admission-invalid", "bad-signature", id="HS256 with the kid"),
    pytest.param(
        lambda case: case.key.token(event_id=case.event_id, aud="marquee"),
        "admission-invalid",
        "malformed",
        id="not an admission token (audience)",
    ),
    pytest.param(without_event_claim, "admission-invalid", "malformed", id="no event claim"),
]


@pytest.mark.parametrize(("make_token", "code", "reason"), REFUSALS)
async def test_a_gated_event_refuses_a_hold_without_a_valid_admission(
    catalog: Catalog,
    api: HoldApi,
    people: People,
    database: Database,
    store: HoldStore,
    waitroom_key: WaitroomKey,
    make_token: Callable[[Case], str | None],
    code: str,
    reason: str | None,
) -> None:
    event = await gated_event(catalog, database, store)
    token = make_token(Case(waitroom_key, event.event_id))

    refused = await api.hold(event.event_id, admitted(people, token), seats=ONE_SEAT)

    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert code_of(refused) == code
    assert problem.get("reason") == reason
    assert problem["detail"]
    if token:
        assert token not in problem["detail"]  # a credential is never echoed
    if code == "admission-required":
        assert f"POST /api/v1/waitroom/events/{event.event_id}/queue" in problem["detail"]
        assert ADMISSION_HEADER in problem["detail"]
    availability = await api.availability(event.event_id)
    assert availability["seats"][seat_id(0, 0, 0)] == "available"  # nothing was held


async def test_a_valid_admission_token_holds(
    catalog: Catalog,
    api: HoldApi,
    people: People,
    database: Database,
    store: HoldStore,
    waitroom_key: WaitroomKey,
) -> None:
    event = await gated_event(catalog, database, store, general_admission=10)
    token = waitroom_key.token(event_id=event.event_id)

    seats = await api.hold(event.event_id, admitted(people, token), seats=ONE_SEAT)
    assert seats.status_code == 201, seats.text
    assert seats.json()["user_id"] == FAN
    best = await api.hold(event.event_id, admitted(people, token), best_available={"count": 2})
    assert best.status_code == 201, best.text
    standing = await api.hold(
        event.event_id,
        admitted(people, token),
        general_admission=[{"ticket_type_id": str(event.general_admission), "quantity": 2}],
    )
    assert standing.status_code == 201, standing.text
    # The same token does not admit another fan.
    other = await api.hold(event.event_id, admitted(people, token, "fan-2"), seats=ONE_SEAT)
    assert (other.status_code, other.json()["reason"]) == (403, "other-account")


async def test_an_event_without_a_gate_needs_no_token(
    catalog: Catalog, api: HoldApi, people: People, database: Database, store: HoldStore
) -> None:
    ungated = await catalog.publish(published_event())
    held = await api.hold(ungated.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert held.status_code == 201, held.text
    # A token sent anyway is not looked at.
    also = await api.hold(
        ungated.event_id, admitted(people, "not-a-token"), seats=[{"seat_id": seat_id(0, 0, 1)}]
    )
    assert also.status_code == 201, also.text

    # An on-sale removed (admission_required false) opens the event again.
    gated = await gated_event(catalog, database, store)
    assert (await api.hold(gated.event_id, people.customer(FAN), seats=ONE_SEAT)).status_code == 403
    await configure(database, store, onsale_configured(gated.event_id, required=False))
    reopened = await api.hold(gated.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert reopened.status_code == 201, reopened.text


async def test_a_high_demand_event_checks_the_admission_before_queueing(
    inventory_settings: InventorySettings,
    catalog: Catalog,
    api: HoldApi,
    people: People,
    database: Database,
    store: HoldStore,
    waitroom_key: WaitroomKey,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    topic = f"test.{unique_name('hold-requested')}.v1"
    inventory_settings.hold_requests_topic = topic  # the app reads its settings per request
    await ensure_topics(kafka_bootstrap, {topic: 1})
    event = await gated_event(catalog, database, store, high_demand=True)

    for body in ({"seats": ONE_SEAT}, {"best_available": {"count": 1}}):
        refused = await api.hold(event.event_id, people.customer(FAN), **body)
        assert (refused.status_code, code_of(refused)) == (403, "admission-required")
        other = waitroom_key.token(event_id=uuid.uuid4())
        wrong = await api.hold(event.event_id, admitted(people, other), **body)
        assert (wrong.status_code, wrong.json()["reason"]) == (403, "other-event")
    requests = EventKeys.of(event.event_id).key("req", "*")
    assert not [key async for key in store.redis.scan_iter(requests)]  # nothing was queued

    token = waitroom_key.token(event_id=event.event_id)
    queued = await api.hold(event.event_id, admitted(people, token), seats=ONE_SEAT)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "pending"


async def test_keys_that_cannot_be_fetched_are_a_503_not_a_500(
    inventory_settings: InventorySettings,
    catalog: Catalog,
    people: People,
    database: Database,
    store: HoldStore,
    waitroom_key: WaitroomKey,
    clock: Clock,
) -> None:
    event = await gated_event(catalog, database, store)
    nobody_listens = f"http://127.0.0.1:{free_port()}{JWKS_PATH}"
    settings = inventory_settings.model_copy(update={"waitroom_jwks_url": nobody_listens})
    async with inventory_app(settings, clock) as api:
        token = waitroom_key.token(event_id=event.event_id)
        for _ in range(2):  # the second within the refetch interval: still a 503
            answer = await api.hold(event.event_id, admitted(people, token), seats=ONE_SEAT)
            assert answer.status_code == 503, answer.text
            assert code_of(answer) == "admission-keys-unavailable"
            assert answer.headers["content-type"].startswith("application/problem+json")
        # Without a token the answer needs no keys.
        missing = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
        assert (missing.status_code, code_of(missing)) == (403, "admission-required")
        # An event without a gate is not affected at all.
        ungated = await catalog.publish(published_event())
        held = await api.hold(ungated.event_id, people.customer(FAN), seats=ONE_SEAT)
        assert held.status_code == 201, held.text


async def test_the_app_checks_tokens_against_the_waitroom_jwks(
    inventory_settings: InventorySettings,
    catalog: Catalog,
    people: People,
    database: Database,
    store: HoldStore,
    waitroom_key: WaitroomKey,
    clock: Clock,
) -> None:
    """The default key source: ``waitroom_jwks_url`` fetched over HTTP (a real server)."""
    waitroom = FastAPI()

    @waitroom.get(JWKS_PATH)
    async def jwks() -> dict[str, Any]:
        return {"keys": [waitroom_key.public_jwk]}

    event = await gated_event(catalog, database, store)
    with serve_in_thread(waitroom) as base_url:
        settings = inventory_settings.model_copy(
            update={"waitroom_jwks_url": f"{base_url}{JWKS_PATH}"}
        )
        async with inventory_app(settings, clock) as api:
            token = waitroom_key.token(event_id=event.event_id)
            held = await api.hold(event.event_id, admitted(people, token), seats=ONE_SEAT)
            assert held.status_code == 201, held.text
            stranger = WaitroomKey.generate().token(event_id=event.event_id)
            refused = await api.hold(
                event.event_id, admitted(people, stranger), seats=[{"seat_id": seat_id(0, 0, 1)}]
            )
            assert (refused.status_code, refused.json()["reason"]) == (403, "bad-signature")


# ---- waitroom.onsale-configured.v1 ------------------------------------------------------------


async def test_a_newer_configuration_wins_and_an_older_one_is_ignored(
    catalog: Catalog,
    api: HoldApi,
    people: People,
    database: Database,
    store: HoldStore,
) -> None:
    event = await catalog.publish(published_event(rows=1, seats_per_row=5))
    first = datetime.now(UTC).replace(microsecond=123456)
    await configure(database, store, onsale_configured(event.event_id, configured_at=first))
    assert await gate_row(database, event.event_id) == (True, first)
    assert await gate_in_redis(store.redis, event.event_id) == {
        "required": "1",
        "configured_at": str(int(first.timestamp()) * 1_000_000 + 123456),
    }
    hold = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert hold.status_code == 403

    # Late (configured before) and repeated messages change nothing.
    late = first - timedelta(microseconds=1)
    await configure(
        database, store, onsale_configured(event.event_id, required=False, configured_at=late)
    )
    await configure(database, store, onsale_configured(event.event_id, configured_at=first))
    assert await gate_row(database, event.event_id) == (True, first)
    assert (await gate_in_redis(store.redis, event.event_id))["required"] == "1"
    hold = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert hold.status_code == 403

    # A newer one applies.
    newer = first + timedelta(microseconds=1)
    await configure(
        database, store, onsale_configured(event.event_id, required=False, configured_at=newer)
    )
    assert await gate_row(database, event.event_id) == (False, newer)
    assert (await gate_in_redis(store.redis, event.event_id))["required"] == "0"
    hold = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert hold.status_code == 201, hold.text


async def test_a_configuration_before_the_event_is_published_gates_it(
    catalog: Catalog, api: HoldApi, people: People, database: Database, store: HoldStore
) -> None:
    event = published_event()
    await configure(database, store, onsale_configured(event.event_id))
    assert await store.loaded_version(event.event_id) is None  # the gate did not load a state
    await catalog.publish(event)

    refused = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert (refused.status_code, code_of(refused)) == (403, "admission-required")


async def test_the_gate_survives_a_redis_flush_and_rebuild(
    inventory_settings: InventorySettings,
    private_redis: RedisServer,
    index_prefix: str,
    people: People,
    database: Database,
    clock: Clock,
    waitroom_key: WaitroomKey,
) -> None:
    redis = redis_asyncio.Redis.from_url(private_redis.url)
    try:
        store = HoldStore(redis, index_prefix=index_prefix)
        catalog = Catalog(database, store)
        event = await gated_event(catalog, database, store)
        settings = inventory_settings.model_copy(update={"redis_url": private_redis.url})
        async with inventory_app(
            settings, clock, admission_keys=StaticKeys.of(waitroom_key)
        ) as api:
            await redis.flushdb()
            # The first hold after the flush finds the state missing: rebuilt with its gate.
            refused = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
            assert (refused.status_code, code_of(refused)) == (403, "admission-required")
            assert (await gate_in_redis(redis, event.event_id))["required"] == "1"

            await redis.flushdb()
            # Rebuilt by another path first (the supply read, here): the gate comes with it.
            assert (
                await api.client.get(f"/api/v1/inventory/events/{event.event_id}/supply")
            ).status_code == 200
            refused = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
            assert (refused.status_code, code_of(refused)) == (403, "admission-required")

            # A forced reload over the present state keeps it too.
            await handlers.rebuild_event(event.event_id, database=database, store=store, force=True)
            refused = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
            assert refused.status_code == 403
            token = waitroom_key.token(event_id=event.event_id)
            held = await api.hold(event.event_id, admitted(people, token), seats=ONE_SEAT)
            assert held.status_code == 201, held.text
    finally:
        await redis.aclose()


async def test_reconcile_restores_a_gate_whose_push_was_lost(
    catalog: Catalog, api: HoldApi, people: People, database: Database, store: HoldStore
) -> None:
    """A crash between the gate's commit and its Redis push: the reconcile task pushes it."""
    event = await gated_event(catalog, database, store)
    await store.redis.delete(EventKeys.of(event.event_id).gate)

    assert await tasks.reconcile(database, store) >= 1
    assert (await gate_in_redis(store.redis, event.event_id))["required"] == "1"
    refused = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert (refused.status_code, code_of(refused)) == (403, "admission-required")
    assert await tasks.reconcile(database, store) == 0  # nothing behind any more


async def test_the_consumer_applies_onsale_configured_from_kafka(
    inventory_settings: InventorySettings,
    catalog: Catalog,
    api: HoldApi,
    people: People,
    database: Database,
    store: HoldStore,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    names = {topic: f"test.{unique_name(topic.split('.')[1])}.v1" for topic in CONSUMED_TOPICS}
    await ensure_topics(kafka_bootstrap, {name: 1 for name in names.values()})
    event = await catalog.publish(published_event())
    producer: AIOKafkaProducer = create_producer(kafka_bootstrap)
    await producer.start()
    runner = build_consumer(
        inventory_settings,
        database=database,
        redis=store.redis,
        group=unique_name("inventory"),
        topic_names=names,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:
        message = onsale_configured(event.event_id)
        envelope = REGISTRY.event(
            ONSALE_CONFIGURED.name, message, source="/marquee/waitroom", subject=str(event.event_id)
        )
        await publish(producer, names[ONSALE_CONFIGURED.name], envelope, key=str(event.event_id))

        async def gated() -> bool:
            return (await gate_in_redis(store.redis, event.event_id)).get("required") == "1"

        await wait_until(gated, timeout=60, message="the gate pushed to Redis")
    finally:
        stop.set()
        await running
        await producer.stop()
    assert await gate_row(database, event.event_id) == (True, message.configured_at)
    refused = await api.hold(event.event_id, people.customer(FAN), seats=ONE_SEAT)
    assert (refused.status_code, code_of(refused)) == (403, "admission-required")
