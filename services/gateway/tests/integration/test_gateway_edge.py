"""Token checks and rate limits at the gateway, in front of a real upstream that counts hits."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as redis_asyncio
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY

from marquee_gateway.main import create_app
from marquee_gateway.ratelimit import KEY_PREFIX
from marquee_gateway.settings import GatewaySettings, RateLimitClass, RateLimitRule
from marquee_platform.security import revoke_tokens_issued_before
from marquee_testing.fixtures import TokenIssuer, serve_in_thread
from marquee_testing.localinfra import free_port

HITS: Counter[str] = Counter()
"""Requests the upstream received, by path: what the edge let through."""


def upstream_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/api/v1/{service}/{path:path}", methods=["GET", "POST", "DELETE"])
    async def anything(request: Request, service: str, path: str) -> dict[str, Any]:
        HITS[f"/{service}/{path}"] += 1
        return {"authorization": request.headers.get("authorization")}

    return app


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with serve_in_thread(upstream_app()) as url:
        yield url


def rule(requests: int) -> RateLimitRule:
    return RateLimitRule(requests=requests, per_seconds=60)


@pytest.fixture(scope="module")
def gateway(upstream_url: str, redis_url: str, token_issuer: TokenIssuer) -> Iterator[str]:
    settings = GatewaySettings(
        service_urls={"auth": upstream_url, "echo": upstream_url},
        jwks_url=token_issuer.jwks_url,
        redis_url=redis_url,
        # Tests pose as clients behind our load balancer with an address of their own
        # (X-Forwarded-For), so their budgets do not mix.
        trusted_proxies=["127.0.0.0/8"],
        rate_limit_auth=RateLimitClass(per_user=rule(3), per_ip=rule(3)),
        rate_limit_write=RateLimitClass(per_user=rule(4), per_ip=rule(5)),
        rate_limit_read=RateLimitClass(per_user=rule(50), per_ip=rule(50)),
        log_json=False,
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
async def client(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    address = f"2001:db8:{uuid.uuid4().int % 65536:x}::1"
    async with httpx.AsyncClient(base_url=gateway, headers={"X-Forwarded-For": address}) as client:
        yield client


def unique_path(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": user_id,
        "roles": ["customer"],
        "iss": "marquee-auth",
        "aud": "marquee",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }


def bad_tokens(token_issuer: TokenIssuer) -> dict[str, str]:
    good = token_issuer.token("mallory")
    header, payload, signature = good.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    stranger = ed25519.Ed25519PrivateKey.generate()
    return {
        "tampered signature": f"{header}.{payload}.{flipped}",
        "tampered claims": f"{header}.{_b64({**_claims('admin'), 'roles': ['admin']})}.{signature}",
        "expired": token_issuer.token("mallory", lifetime_seconds=-120),
        "alg none": f"{_b64({'alg': 'none', 'kid': token_issuer.kid})}.{_b64(_claims('mallory'))}.",
        "unknown kid": jwt.encode(
            _claims("mallory"), stranger, algorithm="EdDSA", headers={"kid": "not-published"}
        ),
        "wrong audience": token_issuer.token("mallory", audience="elsewhere"),
        "garbage": "not.a.token",
    }


async def test_bad_tokens_are_refused_at_the_edge_without_reaching_the_service(
    client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    for kind, token in bad_tokens(token_issuer).items():
        path = unique_path()
        response = await client.get(
            f"/api/v1/echo/{path}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, kind
        assert response.headers["content-type"] == "application/problem+json", kind
        assert response.headers["www-authenticate"] == "Bearer", kind
        assert response.json()["type"].endswith(("invalid-token", "token-expired")), kind
        assert HITS[f"/echo/{path}"] == 0, f"{kind}: the upstream must not be called"
    expired = bad_tokens(token_issuer)["expired"]
    response = await client.get("/api/v1/echo/x", headers={"Authorization": f"Bearer {expired}"})
    assert response.json()["type"].endswith("token-expired")
    rejected = REGISTRY.get_sample_value(
        "marquee_gateway_auth_rejections_total", {"reason": "invalid-token"}
    )
    assert rejected is not None
    assert rejected >= 6


async def test_spraying_bad_tokens_is_throttled_by_address(client: httpx.AsyncClient) -> None:
    bad = {"Authorization": "Bearer not.a.token"}
    responses = [await client.post("/api/v1/echo/orders", headers=bad) for _ in range(6)]
    assert [r.status_code for r in responses] == [401] * 5 + [429]
    assert responses[0].headers["ratelimit-remaining"] == "4"


async def test_valid_and_anonymous_requests_pass_through(
    client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    path = unique_path()
    signed_in = await client.get(f"/api/v1/echo/{path}", headers=token_issuer.headers("ann"))
    anonymous = await client.get(f"/api/v1/echo/{path}")
    other_scheme = await client.get(
        f"/api/v1/echo/{path}", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert signed_in.status_code == 200
    assert signed_in.json()["authorization"].startswith("Bearer "), "services verify again"
    assert anonymous.status_code == 200
    assert other_scheme.status_code == 200, "other schemes are the service's business"
    assert HITS[f"/echo/{path}"] == 3


async def test_revoked_tokens_are_refused(
    client: httpx.AsyncClient, token_issuer: TokenIssuer, redis_url: str
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    token = token_issuer.token(user)
    redis = redis_asyncio.from_url(redis_url)
    try:
        await revoke_tokens_issued_before(
            redis, user, at=datetime.now(UTC) + timedelta(seconds=2), token_lifetime_seconds=900
        )
    finally:
        await redis.aclose()
    path = unique_path()
    response = await client.get(
        f"/api/v1/echo/{path}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert HITS[f"/echo/{path}"] == 0


async def test_over_the_budget_is_429_with_retry_after(client: httpx.AsyncClient) -> None:
    responses = [await client.post("/api/v1/auth/login", json={}) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    refused = responses[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("rate-limited")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 20, "3 per minute: one request back every 20 s"
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-policy"] == "3;w=60"
    assert 1 <= int(refused.headers["ratelimit-reset"]) <= 60
    limited = REGISTRY.get_sample_value(
        "marquee_gateway_rate_limited_total", {"rate_class": "auth"}
    )
    assert limited is not None
    assert limited >= 1


async def test_classes_do_not_share_budgets(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.post("/api/v1/auth/register", json={})).status_code == 200
    assert (await client.post("/api/v1/auth/register", json={})).status_code == 429

    write = await client.post(f"/api/v1/echo/{unique_path()}", json={})
    read = await client.get(f"/api/v1/echo/{unique_path()}")
    auth_read = await client.get("/api/v1/auth/.well-known/jwks.json")
    assert write.status_code == 200
    assert write.headers["ratelimit-limit"] == "5"
    assert read.status_code == 200
    assert read.headers["ratelimit-limit"] == "50"
    assert auth_read.status_code == 200, "reading auth's keys is a read"


async def test_signed_in_callers_have_their_own_budget(
    client: httpx.AsyncClient, token_issuer: TokenIssuer
) -> None:
    alice = token_issuer.headers(f"alice-{uuid.uuid4().hex[:8]}")
    bob = token_issuer.headers(f"bob-{uuid.uuid4().hex[:8]}")
    alice_writes = [(await client.post("/api/v1/echo/orders", headers=alice)) for _ in range(5)]
    assert [r.status_code for r in alice_writes] == [200, 200, 200, 200, 429]
    assert (await client.post("/api/v1/echo/orders", headers=bob)).status_code == 200
    anonymous = await client.post("/api/v1/echo/orders")
    assert anonymous.status_code == 200, "the address's budget is separate from alice's"
    assert anonymous.headers["ratelimit-remaining"] == "4"


async def test_the_client_address_comes_from_trusted_proxies_only(
    gateway: str,
) -> None:
    spoofed = f"198.51.100.{uuid.uuid4().int % 250}"
    real = f"2001:db8:{uuid.uuid4().int % 65536:x}::7"
    async with httpx.AsyncClient(base_url=gateway) as client:
        for _ in range(3):
            # A client cannot escape its budget by inventing X-Forwarded-For entries:
            # only the right-most (appended by our trusted proxy) counts.
            await client.post(
                "/api/v1/auth/login",
                headers={"X-Forwarded-For": f"{uuid.uuid4().hex[:6]}, {real}"},
            )
        refused = await client.post(
            "/api/v1/auth/login", headers={"X-Forwarded-For": f"{spoofed}, {real}"}
        )
    assert refused.status_code == 429


async def test_a_forwarded_for_written_by_the_client_does_not_buy_a_new_budget(
    upstream_url: str, redis_url: str, token_issuer: TokenIssuer
) -> None:
    """Over a real socket from 127.0.0.1 (which uvicorn's own proxy-header handling would
    believe): with no trusted proxies, the header is the client's word and is ignored."""
    settings = GatewaySettings(
        service_urls={"auth": upstream_url},
        jwks_url=token_issuer.jwks_url,
        redis_url=redis_url,
        rate_limit_auth=RateLimitClass(per_user=rule(3), per_ip=rule(3)),
        log_json=False,
    )
    budget = f"{KEY_PREFIX}auth:ip:127.0.0.1"
    redis = redis_asyncio.from_url(redis_url)
    try:
        await redis.delete(budget)
        with serve_in_thread(create_app(settings)) as url:
            async with httpx.AsyncClient(base_url=url) as client:
                statuses = [
                    (
                        await client.post(
                            "/api/v1/auth/login",
                            json={},
                            headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
                        )
                    ).status_code
                    for attempt in range(6)
                ]
    finally:
        await redis.delete(budget)
        await redis.aclose()
    # At most the budget's 3 requests pass (fewer if 127.0.0.1 spent some elsewhere).
    assert statuses.count(200) <= 3, statuses
    assert statuses[-3:] == [429, 429, 429], statuses


async def test_without_redis_requests_still_go_through(
    upstream_url: str, token_issuer: TokenIssuer
) -> None:
    settings = GatewaySettings(
        service_urls={"echo": upstream_url},
        jwks_url=token_issuer.jwks_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        stream_subscribe_timeout_seconds=0.5,
        log_json=False,
    )
    before = REGISTRY.get_sample_value(
        "marquee_gateway_redis_failures_total", {"check": "rate-limit"}
    )
    path = unique_path()
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            anonymous = await client.get(f"/api/v1/echo/{path}")
            signed_in = await client.post(
                f"/api/v1/echo/{path}", headers=token_issuer.headers("ann")
            )
            stream = await client.get("/api/v1/stream", params={"events": "1"})
    assert anonymous.status_code == 200
    assert "ratelimit-limit" not in anonymous.headers
    assert signed_in.status_code == 200, "revocation checks fail open too"
    assert HITS[f"/echo/{path}"] == 2
    assert stream.status_code == 503
    assert stream.json()["type"].endswith("realtime-unavailable")
    after = REGISTRY.get_sample_value(
        "marquee_gateway_redis_failures_total", {"check": "rate-limit"}
    )
    assert after is not None
    assert after >= (before or 0) + 2
