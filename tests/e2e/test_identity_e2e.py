"""Identity end to end, through the gateway, with every piece real.

The auth service and the gateway serve over HTTP on 127.0.0.1; auth's outbox reaches the
Kafka-protocol broker through the CDC relay, and the test reads the emailed tokens from
the topics the notifications service will consume — exactly what a person would click.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from marquee_auth.main import SERVICE as AUTH
from marquee_auth.main import create_app as create_auth_app
from marquee_auth.settings import AuthSettings
from marquee_contracts import CloudEvent
from marquee_gateway.main import create_app as create_gateway_app
from marquee_gateway.settings import GatewaySettings, RateLimitClass, RateLimitRule
from marquee_platform.db import to_libpq_dsn
from marquee_platform.relay import run_relay
from marquee_testing.fixtures import DatabaseFactory, serve_in_thread
from marquee_testing.localinfra import free_port

PASSWORD = "correct horse battery staple"


@dataclass
class Platform:
    gateway: str
    auth_database_url: str
    kafka_bootstrap: str
    unique_name: Callable[[str], str]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.gateway, timeout=15, trust_env=False)

    async def emailed_token(self, topic: str, email: str) -> str:
        """The token in the newest event on ``topic`` for ``email`` (what the email carries)."""
        data = await self.newest_event(topic, lambda data: data.get("email") == email)
        return str(data["token"])

    async def newest_event(
        self, topic: str, matches: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The data of the newest event on ``topic`` that ``matches``, once the topic is
        drained (waits up to 30 s for the first match to arrive through the relay)."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.kafka_bootstrap,
            group_id=None,  # no group: no rebalance wait, every partition from the start
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            found: dict[str, Any] | None = None
            while loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        assert record.value is not None
                        data = CloudEvent.from_json_bytes(record.value).data
                        if matches(data):
                            found = data
                if found is not None and not batch:
                    return found
            raise AssertionError(f"no matching {topic} event within 30 s")
        finally:
            await consumer.stop()


@pytest.fixture
async def platform(
    make_database: DatabaseFactory,
    redis_url: str,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> AsyncIterator[Platform]:
    database_url = await make_database(AUTH.migrations, prefix="e2e_auth")
    stop_relay = asyncio.Event()
    relay = asyncio.create_task(
        run_relay(
            to_libpq_dsn(database_url),
            kafka_bootstrap,
            name=unique_name("e2e_auth").replace("-", "_"),
            stop=stop_relay,
        )
    )
    auth_port = free_port()
    auth_url = f"http://127.0.0.1:{auth_port}"
    jwks_url = f"{auth_url}/.well-known/jwks.json"
    auth_settings = AuthSettings(
        database_url=database_url,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        jwks_url=jwks_url,
        log_json=False,
    )
    gateway_settings = GatewaySettings(
        service_urls={"auth": auth_url},
        jwks_url=jwks_url,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        # Every test signs in from 127.0.0.1 many times; the limits have their own tests.
        rate_limit_auth=RateLimitClass(
            per_user=RateLimitRule(requests=1000, per_seconds=60),
            per_ip=RateLimitRule(requests=1000, per_seconds=60),
        ),
        log_json=False,
    )
    with (
        serve_in_thread(create_auth_app(auth_settings), port=auth_port),
        serve_in_thread(create_gateway_app(gateway_settings)) as gateway_url,
    ):
        yield Platform(gateway_url, database_url, kafka_bootstrap, unique_name)
    stop_relay.set()
    await asyncio.wait_for(relay, timeout=30)


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def register_and_verify(platform: Platform, client: httpx.AsyncClient) -> str:
    email = f"fan-{uuid.uuid4().hex[:10]}@example.org"
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Fan"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert registered.status_code == 201, registered.text
    token = await platform.emailed_token("auth.email-verification-requested.v1", email)
    verified = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified"] is True
    return email


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Any:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


async def test_register_verify_login_refresh_rotation_reuse_and_logout(
    platform: Platform,
) -> None:
    async with platform.client() as client:
        email = await register_and_verify(platform, client)
        first = await login(client, email)
        me = await client.get("/api/v1/auth/me", headers=bearer(first))
        assert me.json()["email"] == email

        rotated = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert rotated.status_code == 200
        second = rotated.json()
        assert second["refresh_token"] != first["refresh_token"]

        # Someone replays the old refresh token: the whole family is revoked.
        reused = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert reused.status_code == 401
        assert reused.headers["content-type"] == "application/problem+json"
        after_reuse = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert after_reuse.status_code == 401, "the rotated token died with its family"

        third = await login(client, email)
        logged_out = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]}
        )
        assert logged_out.status_code == 204
        refused = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}
        )
        assert refused.status_code == 401


async def test_password_reset_by_emailed_token(platform: Platform) -> None:
    async with platform.client() as client:
        email = await register_and_verify(platform, client)
        session = await login(client, email)
        requested = await client.post(
            "/api/v1/auth/password-reset",
            json={"email": email},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        unknown = await client.post(
            "/api/v1/auth/password-reset",
            json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert requested.status_code == unknown.status_code == 202
        assert requested.json() == unknown.json(), "no hint whether the email exists"

        token = await platform.emailed_token("auth.password-reset-requested.v1", email)
        new_password = "a brand new passphrase 42"
        reset = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token, "new_password": new_password},
        )
        assert reset.status_code == 204
        again = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token, "new_password": "yet another passphrase 7"},
        )
        assert again.status_code in (400, 410, 422), "a reset token works once"
        old = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert old.status_code == 401
        await login(client, email, new_password)
        stale = await client.get("/api/v1/auth/me", headers=bearer(session))
        assert stale.status_code == 401, "a reset ends the sessions that existed before"


async def test_admin_grants_organizer_and_a_customer_cannot(platform: Platform) -> None:
    async with platform.client() as client:
        admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.org"
        env = {**os.environ, "AUTH_DATABASE_URL": platform.auth_database_url}
        made = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "marquee_cli",
                "auth",
                "create-admin",
                "--email",
                admin_email,
                "--password",
                PASSWORD,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        admin = await login(client, admin_email)
        assert "admin" in admin["roles"]

        fan_email = await register_and_verify(platform, client)
        fan = await login(client, fan_email)
        other_email = await register_and_verify(platform, client)
        other = await login(client, other_email)

        refused = await client.post(
            f"/api/v1/auth/users/{other['user_id']}/roles/organizer", headers=bearer(fan)
        )
        assert refused.status_code == 403
        peek = await client.get(f"/api/v1/auth/users/{other['user_id']}", headers=bearer(fan))
        assert peek.status_code == 403, "a customer cannot see another's account"

        granted = await client.post(
            f"/api/v1/auth/users/{fan['user_id']}/roles/organizer", headers=bearer(admin)
        )
        assert granted.status_code == 200, granted.text
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": fan["refresh_token"]}
        )
        assert "organizer" in refreshed.json()["roles"]


async def test_data_export_and_account_deletion(platform: Platform) -> None:
    async with platform.client() as client:
        email = await register_and_verify(platform, client)
        tokens = await login(client, email)
        exported = await client.get("/api/v1/auth/me/export", headers=bearer(tokens))
        assert exported.status_code == 200
        assert email in exported.text

        deleted = await client.request(
            "DELETE", "/api/v1/auth/me", json={"password": PASSWORD}, headers=bearer(tokens)
        )
        assert deleted.status_code == 204
        # The token of a deleted user is refused at the gateway and by the service.
        after = await client.get("/api/v1/auth/me", headers=bearer(tokens))
        assert after.status_code == 401
        relogin = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert relogin.status_code == 401
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 401
    # Every service hears of it so it can anonymize what it holds.
    deletion = await platform.newest_event(
        "auth.user-deleted.v1", lambda data: data.get("user_id") == tokens["user_id"]
    )
    assert email not in str(deletion), "the deletion event carries no personal data"
