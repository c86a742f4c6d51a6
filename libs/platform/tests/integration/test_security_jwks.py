"""Token verification against a JWKS served by a real local HTTP server.

The JWKS server is uvicorn on 127.0.0.1 in a thread, listening on a socket bound before it
starts (so there is nothing to wait for); tests change the document it serves to rotate
keys and stop it to simulate an auth outage. Time in the cache is a fake clock, so TTLs
and rate limits are tested without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi import APIRouter, Depends, FastAPI
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marquee_platform.app import create_service_app
from marquee_platform.errors import Unauthenticated, Unavailable
from marquee_platform.security import (
    CurrentUser,
    JwksCache,
    OptionalUser,
    Principal,
    Role,
    TokenVerifier,
    ensure_owner,
    require_roles,
)
from marquee_platform.settings import ServiceSettings

ISSUER = "marquee-auth"
AUDIENCE = "marquee"


# ---- keys and tokens --------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: Any
    public_jwk: dict[str, Any]
    public_pem: bytes


def ed25519_key(kid: str) -> SigningKey:
    private = ed25519.Ed25519PrivateKey.generate()
    jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(kid, "EdDSA", private, {**jwk, "kid": kid, "use": "sig", "alg": "EdDSA"}, pem)


def rsa_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(kid, "RS256", private, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}, pem)


@pytest.fixture(scope="module")
def ed_key() -> SigningKey:
    return ed25519_key("ed-1")


@pytest.fixture(scope="module")
def rs_key() -> SigningKey:
    return rsa_key("rs-1")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "roles": ["customer"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: SigningKey, **overrides: Any) -> str:
    return jwt.encode(
        claims(**overrides), key.private, algorithm=key.algorithm, headers={"kid": key.kid}
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."


# ---- a real JWKS server -----------------------------------------------------------------


@dataclass
class JwksServer:
    url: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    fetches: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def publish(self, *keys: SigningKey) -> None:
        self.keys[:] = [key.public_jwk for key in keys]

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the JWKS server did not stop"
            self._server = None


@contextmanager
def serve_jwks() -> Iterator[JwksServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # already accepting into the backlog: clients can connect at once
    port = sock.getsockname()[1]
    state = JwksServer(url=f"http://127.0.0.1:{port}/.well-known/jwks.json")

    async def serve_document(request: Request) -> JSONResponse:
        state.fetches += 1
        return JSONResponse({"keys": list(state.keys)})

    app = Starlette(routes=[Route("/.well-known/jwks.json", serve_document)])
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", loop="asyncio", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    state._server, state._thread = server, thread
    try:
        yield state
    finally:
        state.stop()
        sock.close()


@pytest.fixture(scope="module")
def shared_jwks_server() -> Iterator[JwksServer]:
    """One server for the module (stopping uvicorn takes a few ticks); reset per test."""
    with serve_jwks() as server:
        yield server


@pytest.fixture
def jwks_server(shared_jwks_server: JwksServer) -> JwksServer:
    shared_jwks_server.keys.clear()
    shared_jwks_server.fetches = 0
    return shared_jwks_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(
    jwks_server: JwksServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
    ed_key: SigningKey,
    rs_key: SigningKey,
) -> TokenVerifier:
    jwks_server.publish(ed_key, rs_key)
    cache = JwksCache(jwks_server.url, http_client, ttl=300, min_refetch_interval=10, clock=clock)
    return TokenVerifier(cache, ISSUER, AUDIENCE)


async def rejected(verifier: TokenVerifier, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    if len(token) > 8:
        assert token not in caught.value.detail, "the token must never be echoed"
    return caught.value


# ---- the verifier -----------------------------------------------------------------------


@pytest.mark.parametrize("key_name", ["ed_key", "rs_key"])
async def test_a_valid_token_gives_its_principal(
    verifier: TokenVerifier, key_name: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    token = mint(key, sub="user-42", roles=["organizer", "customer", "future-role"], jti="t-1")
    principal = await verifier.verify(token)
    assert principal.user_id == "user-42"
    assert principal.roles == frozenset({Role.ORGANIZER, Role.CUSTOMER})
    assert principal.token_id == "t-1"
    assert principal.has_role("organizer")
    assert not principal.is_admin


async def test_a_tampered_token_is_refused(verifier: TokenVerifier, ed_key: SigningKey) -> None:
    header, _, signature = mint(ed_key).split(".")
    promoted = b64(json.dumps(claims(roles=["admin"])).encode())
    error = await rejected(verifier, f"{header}.{promoted}.{signature}")
    assert "signature is not valid" in error.detail

    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    error = await rejected(verifier, f"{header}.{mint(ed_key).split('.')[1]}.{flipped}")
    assert "signature is not valid" in error.detail


async def test_an_expired_token_is_refused_but_small_clock_skew_is_tolerated(
    verifier: TokenVerifier, rs_key: SigningKey
) -> None:
    now = int(time.time())
    error = await rejected(verifier, mint(rs_key, iat=now - 1000, exp=now - 120))
    assert error.code == "token-expired"
    assert "expired" in error.detail
    assert await verifier.verify(mint(rs_key, iat=now - 1000, exp=now - 5))


async def test_alg_none_is_refused(verifier: TokenVerifier, ed_key: SigningKey) -> None:
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": ed_key.kid}, claims())
    error = await rejected(verifier, token)
    assert "algorithm" in error.detail


async def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, rs_key: SigningKey
) -> None:
    """Algorithm confusion: the public key is public, so an HMAC with it proves nothing."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": rs_key.kid}).encode())
    payload = b64(json.dumps(claims(roles=["admin"])).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = b64(hmac.new(rs_key.public_pem, signing_input, hashlib.sha256).digest())
    error = await rejected(verifier, f"{header}.{payload}.{signature}")
    assert "algorithm" in error.detail


async def test_a_key_of_the_wrong_type_for_the_header_alg_is_refused(
    verifier: TokenVerifier, rs_key: SigningKey, ed_key: SigningKey
) -> None:
    token = jwt.encode(claims(), ed_key.private, algorithm="EdDSA", headers={"kid": rs_key.kid})
    error = await rejected(verifier, token)
    assert "does not match its signing key" in error.detail


async def test_an_unknown_kid_is_refused(verifier: TokenVerifier, jwks_server: JwksServer) -> None:
    stranger = ed25519_key("not-published")
    error = await rejected(verifier, mint(stranger))
    assert "key this service does not know" in error.detail
    assert jwks_server.fetches == 1, "the first fetch already covered the unknown kid"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"aud": "someone-else"}, "not meant for this service"),
        ({"iss": "evil-auth"}, "not issued by 'marquee-auth'"),
        ({"jti": None}, "lacks the 'jti' claim"),
        ({"sub": None}, "lacks the 'sub' claim"),
        ({"roles": "admin"}, "not a list of role names"),
        ({"iat": int(time.time()) + 3600}, "not valid yet"),
    ],
)
async def test_claims_are_checked(
    verifier: TokenVerifier, ed_key: SigningKey, overrides: dict[str, Any], expected: str
) -> None:
    error = await rejected(verifier, mint(ed_key, **overrides))
    assert expected in error.detail


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 10_000, "eyJhbGciOi.e30.sig"])
async def test_malformed_tokens_are_refused(verifier: TokenVerifier, garbage: str) -> None:
    error = await rejected(verifier, garbage)
    assert error.code == "invalid-token"


async def test_the_revocation_hook_can_refuse_a_valid_token(
    verifier: TokenVerifier, ed_key: SigningKey
) -> None:
    async def deleted_users(principal: Principal) -> bool:
        return principal.user_id == "deleted-user"

    verifier.is_revoked = deleted_users
    assert await verifier.verify(mint(ed_key, sub="still-here"))
    error = await rejected(verifier, mint(ed_key, sub="deleted-user"))
    assert "revoked" in error.detail


# ---- the JWKS cache ---------------------------------------------------------------------


async def test_a_rotated_key_is_picked_up_by_refetching_once(
    verifier: TokenVerifier, jwks_server: JwksServer, clock: FakeClock, ed_key: SigningKey
) -> None:
    assert await verifier.verify(mint(ed_key))
    assert jwks_server.fetches == 1

    rotated = ed25519_key("ed-2")
    jwks_server.publish(ed_key, rotated)
    clock.advance(11)  # past the refetch rate limit, well within the TTL
    assert (await verifier.verify(mint(rotated, sub="after-rotation"))).user_id == "after-rotation"
    assert jwks_server.fetches == 2
    assert await verifier.verify(mint(rotated))
    assert jwks_server.fetches == 2, "a known kid is served from the cache"


async def test_unknown_kids_refetch_at_most_once_per_interval(
    verifier: TokenVerifier, jwks_server: JwksServer, clock: FakeClock, ed_key: SigningKey
) -> None:
    assert await verifier.verify(mint(ed_key))
    for attempt in range(5):
        await rejected(verifier, mint(ed25519_key(f"made-up-{attempt}")))
    assert jwks_server.fetches == 1, "made-up kids must not hammer the auth service"
    clock.advance(10)
    await rejected(verifier, mint(ed25519_key("made-up-later")))
    assert jwks_server.fetches == 2


async def test_the_cache_refreshes_after_its_ttl(
    verifier: TokenVerifier, jwks_server: JwksServer, clock: FakeClock, ed_key: SigningKey
) -> None:
    assert await verifier.verify(mint(ed_key))
    clock.advance(299)
    assert await verifier.verify(mint(ed_key))
    assert jwks_server.fetches == 1
    clock.advance(2)
    assert await verifier.verify(mint(ed_key))
    assert jwks_server.fetches == 2


async def test_cached_keys_keep_working_while_the_jwks_server_is_down(
    http_client: httpx.AsyncClient, clock: FakeClock, ed_key: SigningKey
) -> None:
    with serve_jwks() as jwks_server:
        jwks_server.publish(ed_key)
        cache = JwksCache(jwks_server.url, http_client, clock=clock)
        verifier = TokenVerifier(cache, ISSUER, AUDIENCE)
        assert await verifier.verify(mint(ed_key))
        jwks_server.stop()
    clock.advance(600)  # the TTL has passed: a refetch is tried, fails, and cached keys serve
    assert (await verifier.verify(mint(ed_key, sub="during-outage"))).user_id == "during-outage"
    with pytest.raises(Unavailable, match="could not be fetched"):
        await verifier.verify(mint(ed25519_key("new-during-outage")))
    clock.advance(3600)  # too long without a successful fetch: stop trusting old keys
    with pytest.raises(Unavailable, match="unreachable"):
        await verifier.verify(mint(ed_key))


async def test_a_cold_cache_with_the_jwks_server_down_is_unavailable_not_unauthenticated(
    http_client: httpx.AsyncClient, ed_key: SigningKey
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/jwks.json"
    verifier = TokenVerifier(JwksCache(url, http_client), ISSUER, AUDIENCE)
    with pytest.raises(Unavailable):
        await verifier.verify(mint(ed_key))


# ---- FastAPI dependencies through a real service app ------------------------------------


class GuardedSettings(ServiceSettings):
    service_name: ClassVar[str] = "guarded"


def guarded_app(jwks_url: str) -> FastAPI:
    routes = APIRouter(prefix="/api/v1")

    @routes.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"user_id": user.user_id, "roles": sorted(user.roles)}

    @routes.get("/greeting")
    async def greeting(user: OptionalUser) -> dict[str, str]:
        return {"hello": user.user_id if user else "stranger"}

    @routes.post("/events", dependencies=[Depends(require_roles(Role.ORGANIZER))])
    async def create_event() -> dict[str, str]:
        return {"created": "yes"}

    @routes.put("/events/{organizer_id}")
    async def change_event(organizer_id: str, user: CurrentUser) -> dict[str, str]:
        ensure_owner(user, organizer_id, what="event")
        return {"changed": organizer_id}

    settings = GuardedSettings(
        jwks_url=jwks_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, log_json=False
    )
    return create_service_app(
        settings,
        title="guarded",
        description="test",
        routers=[routes],
        uses_database=False,
        uses_kafka=False,
    )


@pytest.fixture
async def guarded(
    jwks_server: JwksServer, ed_key: SigningKey, rs_key: SigningKey
) -> AsyncIterator[httpx.AsyncClient]:
    jwks_server.publish(ed_key, rs_key)
    app = guarded_app(jwks_server.url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_request_with_a_valid_token_sees_its_principal(
    guarded: httpx.AsyncClient, rs_key: SigningKey
) -> None:
    response = await guarded.get(
        "/api/v1/me", headers=bearer(mint(rs_key, sub="u-7", roles=["customer"]))
    )
    assert response.status_code == 200
    assert response.json() == {"user_id": "u-7", "roles": ["customer"]}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer not-a-jwt"}],
    ids=["missing", "basic", "garbage"],
)
async def test_without_a_valid_bearer_token_the_answer_is_401_problem(
    guarded: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await guarded.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["status"] == 401
    assert problem["detail"]


async def test_an_expired_token_gets_a_problem_type_clients_can_refresh_on(
    guarded: httpx.AsyncClient, ed_key: SigningKey
) -> None:
    now = int(time.time())
    response = await guarded.get(
        "/api/v1/me", headers=bearer(mint(ed_key, iat=now - 2000, exp=now - 1000))
    )
    assert response.status_code == 401
    assert response.json()["type"].endswith("/token-expired")


async def test_an_optional_user_may_be_anonymous_but_not_badly_signed_in(
    guarded: httpx.AsyncClient, ed_key: SigningKey
) -> None:
    anonymous = await guarded.get("/api/v1/greeting")
    signed_in = await guarded.get("/api/v1/greeting", headers=bearer(mint(ed_key, sub="ann")))
    bad = await guarded.get("/api/v1/greeting", headers=bearer(mint(ed_key, aud="other")))
    assert anonymous.json() == {"hello": "stranger"}
    assert signed_in.json() == {"hello": "ann"}
    assert bad.status_code == 401


@pytest.mark.parametrize(
    ("roles", "status"),
    [(["customer"], 403), (["organizer"], 200), (["admin"], 200), ([], 403)],
)
async def test_require_roles(
    guarded: httpx.AsyncClient, ed_key: SigningKey, roles: list[str], status: int
) -> None:
    response = await guarded.post("/api/v1/events", headers=bearer(mint(ed_key, roles=roles)))
    assert response.status_code == status
    if status == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert "needs the organizer role" in response.json()["detail"]


async def test_require_roles_wants_a_token_first(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.post("/api/v1/events")).status_code == 401


@pytest.mark.parametrize(
    ("sub", "roles", "status"),
    [("org-1", ["organizer"], 200), ("org-2", ["organizer"], 403), ("root", ["admin"], 200)],
)
async def test_ensure_owner(
    guarded: httpx.AsyncClient, ed_key: SigningKey, sub: str, roles: list[str], status: int
) -> None:
    response = await guarded.put(
        "/api/v1/events/org-1", headers=bearer(mint(ed_key, sub=sub, roles=roles))
    )
    assert response.status_code == status
    if status == 403:
        assert response.json()["detail"] == "You can only change your own event."
