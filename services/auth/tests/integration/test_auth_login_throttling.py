"""Failed sign-ins are limited per account and per client address (real Redis)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
