"""Profile, email and password changes, data export and account deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import AuthHarness


async def test_profile_fields_are_validated_and_normalized(auth: AuthHarness) -> None:
    _, tokens = await auth.signed_up()
    headers = auth.bearer(tokens["access_token"])
    updated = await auth.client.patch(
        "/api/v1/auth/me",
        json={"name": "  Ada   Lovelace ", "locale": "en_gb", "phone": "+44 20 7946 0958"},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["name"], updated.json()["locale"], updated.json()["phone"]) == (
        "Ada Lovelace",
        "en-GB",
        "+442079460958",
    )

    invalid = await auth.client.patch(
        "/api/v1/auth/me", json={"locale": "english please", "phone": "0171 555"}, headers=headers
    )
    assert invalid.status_code == 422
    fields = {error["field"]: error["message"] for error in invalid.json()["errors"]}
    assert "language tag such as 'en'" in fields["locale"]
    assert "international form" in fields["phone"]

    cleared = await auth.client.patch("/api/v1/auth/me", json={"phone": None}, headers=headers)
    assert cleared.json()["phone"] is None
    assert cleared.json()["locale"] == "en-GB", "fields not sent are left alone"

    sneaky = await auth.client.patch("/api/v1/auth/me", json={"roles": ["admin"]}, headers=headers)
    assert sneaky.status_code == 422


async def test_changing_email_needs_the_password_and_a_verified_new_address(
    auth: AuthHarness,
) -> None:
    user, tokens = await auth.signed_up()
    headers = auth.bearer(tokens["access_token"])
    taken, _ = await auth.signed_up()
    new_email = auth.new_email("new")

    wrong = await auth.client.post(
        "/api/v1/auth/me/email",
        json={"new_email": new_email, "password": "not my password"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["type"].endswith("/wrong-password")
    clash = await auth.client.post(
        "/api/v1/auth/me/email",
        json={"new_email": taken["email"], "password": auth.password},
        headers=headers,
    )
    assert clash.status_code == 409

    pending = await auth.client.post(
        "/api/v1/auth/me/email",
        json={"new_email": new_email, "password": auth.password},
        headers=headers,
    )
    assert pending.status_code == 202, pending.text
    assert pending.json()["email"] == user["email"], "the old address stays until verified"
    assert pending.json()["pending_email"] == new_email
    requested = await auth.events(user["id"], "auth.email-verification-requested.v1")
    assert requested[-1]["data"]["email"] == new_email
    assert requested[-1]["data"]["reason"] == "email-change"

    verified = await auth.client.post(
        "/api/v1/auth/verify-email", json={"token": requested[-1]["data"]["token"]}
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["email"] == new_email
    assert verified.json()["pending_email"] is None
    changed = await auth.events(user["id"], "auth.email-changed.v1")
    assert (changed[-1]["data"]["email"], changed[-1]["data"]["previous_email"]) == (
        new_email,
        user["email"],
    )
    await auth.login(new_email)
    old = await auth.client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": auth.password}
    )
    assert old.status_code == 401


async def test_changing_password_signs_out_other_sessions(auth: AuthHarness) -> None:
    user, laptop = await auth.signed_up()
    phone = await auth.login(user["email"])
    new_password = "another long passphrase"

    wrong = await auth.client.post(
        "/api/v1/auth/me/password",
        json={"current_password": "wrong password!", "new_password": new_password},
        headers=auth.bearer(laptop["access_token"]),
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "current_password"

    changed = await auth.client.post(
        "/api/v1/auth/me/password",
        json={"current_password": auth.password, "new_password": new_password},
        headers=auth.bearer(laptop["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    assert (await auth.me(fresh["access_token"])).status_code == 200, "this device stays in"
    assert (await auth.me(phone["access_token"])).status_code == 401
    stale = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]}
    )
    assert stale.status_code == 401
    await auth.login(user["email"], new_password)


async def test_export_holds_everything_about_the_user_and_no_secrets(auth: AuthHarness) -> None:
    user, tokens = await auth.signed_up()
    headers = auth.bearer(tokens["access_token"])
    await auth.client.patch("/api/v1/auth/me", json={"name": "Grace"}, headers=headers)
    exported = await auth.client.get("/api/v1/auth/me/export", headers=headers)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.headers["cache-control"] == "no-store"
    data = exported.json()
    assert data["account"]["id"] == user["id"]
    assert data["account"]["email"] == user["email"]
    assert data["account"]["name"] == "Grace"
    assert data["account"]["roles"] == ["customer"]
    assert len(data["sessions"]) == 1
    assert data["emailed_links"][0]["purpose"] == "verify-email"
    text = exported.text
    for secret in (tokens["refresh_token"], "argon2id$"):
        assert secret not in text
    stored = await auth.sql("SELECT password_hash FROM users WHERE id = :id", id=user["id"])
    assert stored[0].password_hash not in text


async def test_deleting_the_account_erases_personal_data_and_tells_everyone(
    auth: AuthHarness,
) -> None:
    user, tokens = await auth.signed_up()
    headers = auth.bearer(tokens["access_token"])
    await auth.client.patch(
        "/api/v1/auth/me", json={"name": "Ada", "phone": "+4915112345678"}, headers=headers
    )
    resent = await auth.client.post(
        "/api/v1/auth/verify-email/resend", headers=headers | {"Idempotency-Key": "resend-1"}
    )
    assert user["email"] in resent.text
    stored = await auth.sql("SELECT count(*) AS n FROM idempotency_keys")
    assert stored[0].n == 1, "a replayable response naming the address exists before deletion"

    refused = await auth.client.request(
        "DELETE", "/api/v1/auth/me", json={"password": "not my password"}, headers=headers
    )
    assert refused.status_code == 422
    deleted = await auth.client.request(
        "DELETE", "/api/v1/auth/me", json={"password": auth.password}, headers=headers
    )
    assert deleted.status_code == 204, deleted.text

    row = (await auth.sql("SELECT * FROM users WHERE id = :id", id=user["id"]))[0]
    personal = ("email", "pending_email", "password_hash", "name", "locale", "phone")
    assert all(getattr(row, column) is None for column in personal)
    assert row.roles == []
    assert row.deleted_at is not None
    for table in ("refresh_token_families", "one_time_tokens"):
        left = await auth.sql(
            f"SELECT count(*) AS n FROM {table} WHERE user_id = :id", id=user["id"]
        )
        assert left[0].n == 0, table
    for query in (
        "SELECT count(*) AS n FROM outbox WHERE payload::text LIKE :email",
        "SELECT count(*) AS n FROM idempotency_keys WHERE response_body LIKE :email",
    ):
        copies = await auth.sql(query, email=f"%{user['email']}%")
        assert copies[0].n == 0, f"a copy of the address is left: {query}"
    events = await auth.events(user["id"])
    assert events == [events[-1]]
    assert events[-1]["topic"] == "auth.user-deleted.v1"
    assert events[-1]["data"] == {"user_id": user["id"]}

    assert (await auth.me(tokens["access_token"])).status_code == 401
    refresh = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    login = await auth.client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": auth.password}
    )
    assert login.status_code == 401
    again = await auth.register(user["email"])
    assert again["id"] != user["id"], "the address is free for a new account"
