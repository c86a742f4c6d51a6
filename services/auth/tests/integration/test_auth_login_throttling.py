"""Failed sign-ins are limited per account and per client address (real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import redis.asyncio as redis_asyncio

from marquee_auth.main import SERVICE, create_app
from marquee_auth.settings import AuthSettings
from marquee_auth.throttling import LoginThrottle
from marquee_testing.fixtures import DatabaseFactory, serve_in_thread
from marquee_testing.waiting import wait_until

if TYPE_CHECKING:
    from conftest import AuthFactory, AuthHarness


async def attempt(auth: AuthHarness, email: str, password: str, **headers: str) -> Any:
    return await auth.client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def test_five_failures_lock_the_account_with_retry_after(auth: AuthHarness) -> None:
    user = await auth.register()
    for _ in range(4):
        response = await attempt(auth, user["email"], "wrong password")
        assert response.status_code == 401
        assert response.json()["detail"] == "The email address or the password is not right."
    fifth = await attempt(auth, user["email"], "wrong password")
    assert fifth.status_code == 429
    assert fifth.headers["Retry-After"] == "30"
    assert fifth.json()["type"].endswith("/too-many-failed-logins")
    assert "Try again in 30 seconds" in fifth.json()["detail"]

    # Locked means locked, even with the right password (and from another address).
    right = await attempt(auth, user["email"], auth.password, **{"X-Forwarded-For": "10.9.9.9"})
    assert right.status_code == 429
    assert 0 < int(right.headers["Retry-After"]) <= 30


async def test_the_lockout_doubles_and_then_lifts(start_auth: AuthFactory) -> None:
    async with start_auth(login_max_failures_per_account=2, login_lockout_base_seconds=1) as auth:
        user = await auth.register()
        assert (await attempt(auth, user["email"], "wrong password")).status_code == 401
        first_lock = await attempt(auth, user["email"], "wrong password")
        assert first_lock.headers["Retry-After"] == "1"

        async def relocked_for_twice_as_long() -> bool:
            # While locked, attempts are refused without counting (Retry-After 1); once the
            # lock lifts, the next failure counts and locks for twice as long.
            response = await attempt(auth, user["email"], "still wrong")
            assert response.status_code == 429
            return response.headers["Retry-After"] == "2"

        await wait_until(
            relocked_for_twice_as_long, timeout=10, message="the lockout never lifted and doubled"
        )
        doubled = await attempt(auth, user["email"], auth.password)
        assert doubled.status_code == 429
        assert doubled.headers["Retry-After"] == "2"


async def test_a_burst_of_wrong_passwords_locks_for_the_base_period_only(
    start_auth: AuthFactory,
) -> None:
    # Failures that raced past the check while the lock was being set must not each count
    # as one more lockout: that would let anyone lock an account for the maximum at once.
    async with start_auth(
        login_lockout_base_seconds=5,
        login_max_failures_per_ip=1000,
        # Cheap hashes, so the whole burst is over well within the first lockout.
        argon2_memory_kib=8 * 1024,
        argon2_time_cost=1,
    ) as auth:
        user = await auth.register()
        burst = await asyncio.gather(
            *(attempt(auth, user["email"], "wrong password") for _ in range(50))
        )
        assert Counter(response.status_code for response in burst) == {401: 4, 429: 46}
        lockouts = {int(r.headers["Retry-After"]) for r in burst if r.status_code == 429}
        assert max(lockouts) <= 5, f"the burst escalated the lockout: {sorted(lockouts)}"

        locked = await attempt(auth, user["email"], auth.password)
        assert locked.status_code == 429
        assert 0 < int(locked.headers["Retry-After"]) <= 5

        async def relocked_for_twice_as_long() -> bool:
            response = await attempt(auth, user["email"], "still wrong")
            assert response.status_code == 429
            return response.headers["Retry-After"] == "10"

        await wait_until(
            relocked_for_twice_as_long, timeout=15, message="the lockout never lifted and doubled"
        )


async def test_a_password_reset_lets_a_locked_out_owner_in_at_once(auth: AuthHarness) -> None:
    user = await auth.register()
    for _ in range(5):
        await attempt(auth, user["email"], "someone else guessing")
    assert (await attempt(auth, user["email"], auth.password)).status_code == 429

    requested = await auth.client.post("/api/v1/auth/password-reset", json={"email": user["email"]})
    assert requested.status_code == 202
    token = await auth.latest_token(user["id"], "auth.password-reset-requested.v1")
    new_password = "a brand new passphrase"
    reset = await auth.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204, reset.text
    assert (await attempt(auth, user["email"], new_password)).status_code == 200


async def test_a_successful_sign_in_resets_the_account_count(auth: AuthHarness) -> None:
    user = await auth.register()
    for _ in range(4):
        assert (await attempt(auth, user["email"], "wrong password")).status_code == 401
    await auth.login(user["email"])
    for _ in range(4):
        assert (await attempt(auth, user["email"], "wrong password")).status_code == 401
    assert (await attempt(auth, user["email"], auth.password)).status_code == 200


async def test_unknown_accounts_are_throttled_like_real_ones(auth: AuthHarness) -> None:
    email = auth.new_email("ghost")
    statuses = [(await attempt(auth, email, "whatever it is")).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429], "a 429 must not reveal who has an account"


async def test_one_address_failing_on_many_accounts_is_limited(start_auth: AuthFactory) -> None:
    async with start_auth(login_max_failures_per_ip=3) as auth:
        victims = [auth.new_email("victim") for _ in range(4)]
        for email in victims[:3]:
            assert (await attempt(auth, email, "guess guess guess")).status_code == 401
        limited = await attempt(auth, victims[3], "guess guess guess")
        assert limited.status_code == 429
        assert limited.json()["type"].endswith("/too-many-failed-logins-from-address")
        assert 0 < int(limited.headers["Retry-After"]) <= 900

        # Another client behind the same gateway is not affected...
        user = await auth.register()
        other = await attempt(auth, user["email"], auth.password, **{"X-Forwarded-For": "10.1.2.3"})
        assert other.status_code == 200
        # ...and a client cannot escape by writing its own X-Forwarded-For: the gateway
        # appends the address it saw, and that hop is the one counted.
        spoofed = await attempt(
            auth,
            victims[0],
            "guess guess guess",
            **{"X-Forwarded-For": f"203.0.113.7, {auth.address}"},
        )
        assert spoofed.status_code == 429


async def test_password_checks_on_account_changes_count_as_failures(auth: AuthHarness) -> None:
    _, tokens = await auth.signed_up()
    headers = auth.bearer(tokens["access_token"])
    statuses = []
    for _ in range(5):
        response = await auth.client.request(
            "DELETE", "/api/v1/auth/me", json={"password": "guessing"}, headers=headers
        )
        statuses.append(response.status_code)
    assert statuses == [422, 422, 422, 422, 429], "a stolen token cannot guess the password"


async def test_a_forwarded_for_written_by_the_client_does_not_escape_the_address_limit(
    make_database: DatabaseFactory, redis_url: str
) -> None:
    """Over a real socket from 127.0.0.1, which uvicorn's own proxy-header handling would
    believe. Auth trusts only the gateway's network here, so the header is the client's."""
    settings = AuthSettings(
        database_url=await make_database(SERVICE.migrations, prefix="auth"),
        redis_url=redis_url,
        trusted_proxies=["10.0.0.0/8"],
        login_max_failures_per_ip=3,
        log_json=False,
    )
    counter = LoginThrottle._address_key("127.0.0.1")
    redis = redis_asyncio.from_url(redis_url)
    try:
        await redis.delete(counter)
        with serve_in_thread(create_app(settings)) as url:
            async with httpx.AsyncClient(base_url=url) as client:
                answers = [
                    await client.post(
                        "/api/v1/auth/login",
                        json={"email": f"{uuid.uuid4().hex}@example.com", "password": "guess"},
                        headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
                    )
                    for attempt in range(5)
                ]
    finally:
        await redis.delete(counter)
        await redis.aclose()
    statuses = [answer.status_code for answer in answers]
    # At most the limit's 3 failures are answered (fewer if 127.0.0.1 failed elsewhere).
    assert statuses.count(401) <= 3, statuses
    assert statuses[-2:] == [429, 429], statuses
    assert answers[-1].json()["type"].endswith("/too-many-failed-logins-from-address")
