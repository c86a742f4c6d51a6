"""Admins: made by the create-admin command; they grant and revoke organizer."""

from __future__ import annotations

import asyncio
import uuid
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import jwt
from typer.testing import CliRunner

from marquee_auth.cli import app as auth_commands

if TYPE_CHECKING:
    from conftest import AuthHarness


async def run_command(auth: AuthHarness, *args: str) -> Any:
    """Run ``marquee auth <args>`` as an operator would, configured by the environment."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke,
        auth_commands,
        list(args),
        env={"AUTH_DATABASE_URL": auth.settings.database_url},
    )


async def make_admin(auth: AuthHarness) -> dict[str, Any]:
    email = auth.new_email("admin")
    result = await run_command(auth, "create-admin", "--email", email, "--password", auth.password)
    assert result.exit_code == 0, result.output
    assert "Created admin" in result.output
    return await auth.login(email)


def roles_in(token: str) -> list[str]:
    roles: list[str] = jwt.decode(token, options={"verify_signature": False})["roles"]
    return roles


def test_the_commands_are_registered_for_the_marquee_cli() -> None:
    registered = {entry.name: entry.value for entry in entry_points(group="marquee.commands")}
    assert registered.get("auth") == "marquee_auth.cli:app"


async def test_create_admin_makes_a_verified_admin(auth: AuthHarness) -> None:
    tokens = await make_admin(auth)
    assert roles_in(tokens["access_token"]) == ["customer", "admin"]
    me = (await auth.me(tokens["access_token"])).json()
    assert me["email_verified"] is True
    events = await auth.events(me["id"])
    assert [event["topic"] for event in events] == [
        "auth.user-registered.v1",
        "auth.role-changed.v1",
    ]
    assert events[1]["data"]["role"] == "admin"
    assert events[1]["data"]["changed_by"] is None


async def test_create_admin_promotes_an_existing_account_and_checks_passwords(
    auth: AuthHarness,
) -> None:
    user, tokens = await auth.signed_up()
    result = await run_command(
        auth, "create-admin", "--email", user["email"], "--password", "ignored for existing"
    )
    assert result.exit_code == 0, result.output
    assert "is an admin now" in result.output
    assert roles_in(tokens["access_token"]) == ["customer"], "old tokens keep their roles"
    refreshed = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert roles_in(refreshed.json()["access_token"]) == ["customer", "admin"]

    weak = await run_command(
        auth, "create-admin", "--email", auth.new_email("admin"), "--password", "short"
    )
    assert weak.exit_code == 1
    assert "at least 10 characters" in weak.output


async def test_an_admin_grants_organizer_effective_at_the_next_refresh(auth: AuthHarness) -> None:
    admin = await make_admin(auth)
    user, tokens = await auth.signed_up()
    path = f"/api/v1/auth/users/{user['id']}/roles/organizer"

    granted = await auth.client.post(path, headers=auth.bearer(admin["access_token"]))
    assert granted.status_code == 200, granted.text
    assert granted.json()["roles"] == ["customer", "organizer"]
    assert "next token refresh" in granted.json()["detail"]
    assert roles_in(tokens["access_token"]) == ["customer"]

    refreshed = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert roles_in(refreshed.json()["access_token"]) == ["customer", "organizer"]
    events = await auth.events(user["id"], "auth.role-changed.v1")
    assert events[0]["data"]["change"] == "granted"
    assert events[0]["data"]["changed_by"] == roles_and_id(admin)[1]

    again = await auth.client.post(path, headers=auth.bearer(admin["access_token"]))
    assert again.status_code == 200
    assert len(await auth.events(user["id"], "auth.role-changed.v1")) == 1, "no change, no event"

    revoked = await auth.client.delete(path, headers=auth.bearer(admin["access_token"]))
    assert revoked.json()["roles"] == ["customer"]
    later = await auth.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": refreshed.json()["refresh_token"]}
    )
    assert roles_in(later.json()["access_token"]) == ["customer"]


def roles_and_id(tokens: dict[str, Any]) -> tuple[list[str], str]:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return claims["roles"], claims["sub"]


async def test_only_admins_change_roles_and_only_organizer(auth: AuthHarness) -> None:
    admin = await make_admin(auth)
    user, tokens = await auth.signed_up()
    other, _ = await auth.signed_up()

    self_grant = await auth.client.post(
        f"/api/v1/auth/users/{user['id']}/roles/organizer",
        headers=auth.bearer(tokens["access_token"]),
    )
    assert self_grant.status_code == 403
    assert "admin role" in self_grant.json()["detail"]
    other_revoke = await auth.client.delete(
        f"/api/v1/auth/users/{other['id']}/roles/organizer",
        headers=auth.bearer(tokens["access_token"]),
    )
    assert other_revoke.status_code == 403
    anonymous = await auth.client.post(f"/api/v1/auth/users/{user['id']}/roles/organizer")
    assert anonymous.status_code == 401

    admin_role = await auth.client.post(
        f"/api/v1/auth/users/{user['id']}/roles/admin",
        headers=auth.bearer(admin["access_token"]),
    )
    assert admin_role.status_code == 422
    assert "create-admin" in admin_role.json()["detail"]
    missing = await auth.client.post(
        f"/api/v1/auth/users/{uuid.uuid4()}/roles/organizer",
        headers=auth.bearer(admin["access_token"]),
    )
    assert missing.status_code == 404


async def test_a_customer_cannot_read_another_users_profile(auth: AuthHarness) -> None:
    admin = await make_admin(auth)
    user, tokens = await auth.signed_up()
    other, _ = await auth.signed_up()

    own = await auth.client.get(
        f"/api/v1/auth/users/{user['id']}", headers=auth.bearer(tokens["access_token"])
    )
    assert own.status_code == 200
    theirs = await auth.client.get(
        f"/api/v1/auth/users/{other['id']}", headers=auth.bearer(tokens["access_token"])
    )
    assert theirs.status_code == 403
    assert other["email"] not in theirs.text
    by_admin = await auth.client.get(
        f"/api/v1/auth/users/{other['id']}", headers=auth.bearer(admin["access_token"])
    )
    assert by_admin.json()["email"] == other["email"]
