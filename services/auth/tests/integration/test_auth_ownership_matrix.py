"""Who may call which auth endpoint, as one table: every row as the account's own user
("self"), another customer, an organizer, anonymous and an admin.

The rule (docs/services/auth.md): ``/me…`` endpoints act on the caller's own account
and nobody else's, so another user calling them gets an answer about *their* account
and leaves self's alone (the checks make sure); ``/users/{id}`` is for that user and
admins (403 for anyone else, before the id is looked up, so it confirms no account);
roles are changed by admins only (403); sessions are ended by whoever holds the refresh
token. Without a token: 401. Each request acts on accounts made afresh for it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

from marquee_auth import handlers
from marquee_auth.repository import UserRepository
from marquee_platform.clock import utc_now
from marquee_platform.outbox import Outbox
from marquee_testing.ownership import Caller, Check, Given, Row, check_ownership

if TYPE_CHECKING:
    from conftest import AuthFactory, AuthHarness

VERIFICATION_REQUESTED = "auth.email-verification-requested.v1"


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Accounts:
    """Makes accounts through the API (and admins the way ``create-admin`` does)."""

    auth: AuthHarness
    another: Account | None = None
    organizer: Account | None = None
    admin: Account | None = None

    async def customer(self) -> Account:
        user, tokens = await self.auth.signed_up()
        return Account(user["id"], user["email"], tokens["access_token"], tokens["refresh_token"])

    async def new_admin(self) -> Account:
        """A registered customer promoted as ``marquee auth create-admin`` promotes one."""
        account = await self.customer()
        async with self.auth.database.transaction() as session:
            await handlers.create_admin(
                account.email,
                self.auth.password,
                users=UserRepository(session),
                outbox=Outbox(session, source="/marquee/auth"),
                hasher=self.auth.app.state.auth.hasher,
                clock=utc_now,
            )
        return await self.signed_in_again(account)

    async def new_organizer(self, admin: Account) -> Account:
        account = await self.customer()
        granted = await self.auth.client.post(
            f"/api/v1/auth/users/{account.user_id}/roles/organizer", headers=admin.headers
        )
        assert granted.status_code == 200, granted.text
        return await self.signed_in_again(account)

    async def signed_in_again(self, account: Account) -> Account:
        """Roles are read at sign-in: a new session carries the ones just granted."""
        tokens = await self.auth.login(account.email)
        return Account(
            account.user_id, account.email, tokens["access_token"], tokens["refresh_token"]
        )

    async def start(self) -> None:
        """The long-lived other callers, for rows that change nothing of theirs."""
        self.admin = await self.new_admin()
        self.organizer = await self.new_organizer(self.admin)
        self.another = await self.customer()

    async def someone(self) -> Given:
        """A fresh account ("self"); the other callers are the long-lived ones."""
        self_ = await self.customer()
        return {
            "self": self_,
            "another user": self.another,
            "organizer": self.organizer,
            "admin": self.admin,
            "user_id": self_.user_id,
        }

    async def everyone_afresh(self) -> Given:
        """Fresh accounts for every caller: for rows that end the caller's own sessions or
        delete the caller's own account (whoever calls)."""
        admin = await self.new_admin()
        self_ = await self.customer()
        return {
            "self": self_,
            "another user": await self.customer(),
            "organizer": await self.new_organizer(admin),
            "admin": admin,
            "user_id": self_.user_id,
        }

    async def nobody(self) -> Given:
        return {**await self.someone(), "user_id": str(uuid.uuid4())}

    # ---- checks

    def about_the_caller(self, account_id: Callable[[Any], str] | None = None) -> Check:
        """The answer is about the caller's own account, and self's account is as it was
        when someone else called, or nobody could."""

        async def check(response: httpx.Response, given: Given, caller: str) -> str | None:
            if account_id is not None and response.status_code < 300:
                shown = account_id(response.json())
                if shown != given[caller].user_id:
                    return f"answered about account {shown}, not the caller's own"
            return await self.self_left_alone(given, caller)

        return check

    async def self_left_alone(self, given: Given, caller: str) -> str | None:
        """Unless self called: self's account is still there, its token still good, no
        name and no pending email, as it was made."""
        if caller == "self":
            return None
        me = await self.auth.me(given["self"].access_token)
        if me.status_code != 200:
            return f"self's account answers {me.status_code} after {caller} called"
        if me.json()["name"] is not None or me.json()["pending_email"] is not None:
            return f"self's profile changed by {caller}: {me.json()}"
        return None

    async def no_link_sent_to_self(
        self, response: httpx.Response, given: Given, caller: str
    ) -> str | None:
        sent = await self.auth.events(given["self"].user_id, VERIFICATION_REQUESTED)
        # The registration's link, and the one resent if self asked.
        wanted = 2 if caller == "self" and response.status_code == 202 else 1
        if len(sent) != wanted:
            return f"{len(sent)} verification links sent to self after {caller} asked"
        return await self.self_left_alone(given, caller)


def refreshed_for_self(response: httpx.Response, given: Given, caller: str) -> str | None:
    """Whoever presents the refresh token gets tokens for its owner, not for themselves."""
    subject = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    if subject["sub"] != given["self"].user_id:
        return f"tokens issued for {subject['sub']}, not for the refresh token's owner"
    return None


def shows_self(response: httpx.Response, given: Given, caller: str) -> str | None:
    if response.status_code != 200:
        return None
    shown = response.json()["id"]
    return None if shown == given["self"].user_id else f"showed account {shown}, not self's"


def callers() -> dict[str, Caller]:
    """The columns of the table, in order: each the account the row's ``given`` made."""

    def signed_in(who: str) -> Callable[[Given], dict[str, str]]:
        return lambda given: given[who].headers

    return {
        "self": signed_in("self"),
        "another user": signed_in("another user"),
        "organizer": signed_in("organizer"),
        "anonymous": {},
        "admin": signed_in("admin"),
    }


def rows(accounts: Accounts, password: str) -> list[Row]:
    me, users = "/api/v1/auth/me", "/api/v1/auth/users/{user_id}"
    someone, afresh = accounts.someone, accounts.everyone_afresh
    own_account = accounts.about_the_caller(lambda body: body["id"])

    def new_email(_: Given) -> dict[str, str]:
        return {"new_email": accounts.auth.new_email("new"), "password": password}

    # A table, one row per request (ruff format would spread each over ten lines).
    # Statuses for:                         self, another user, organizer, anonymous, admin
    return [
        # ---- your own account: whoever calls acts on their own
        Row("read your profile", "GET", me, (200, 200, 200, 401, 200),
            given=someone, check=own_account),
        Row("change your profile", "PATCH", me, (200, 200, 200, 401, 200),
            given=someone, body=lambda _: {"name": "Renamed"}, check=own_account),
        Row("export your data", "GET", me + "/export", (200, 200, 200, 401, 200),
            given=someone, check=accounts.about_the_caller(lambda body: body["account"]["id"])),
        Row("change your email", "POST", me + "/email", (202, 202, 202, 401, 202),
            given=someone, body=new_email, check=own_account),
        Row("resend your verification link", "POST", "/api/v1/auth/verify-email/resend",
            (202, 202, 202, 401, 202), given=someone, check=accounts.no_link_sent_to_self),
        Row("change your password", "POST", me + "/password", (200, 200, 200, 401, 200),
            given=afresh, check=accounts.about_the_caller(),
            body=lambda _: {"current_password": password, "new_password": "a much newer secret"}),
        Row("delete your account", "DELETE", me, (204, 204, 204, 401, 204),
            given=afresh, body=lambda _: {"password": password},
            check=accounts.about_the_caller()),
        # ---- sessions
        Row("end every session of yours", "POST", "/api/v1/auth/logout-everywhere",
            (204, 204, 204, 401, 204), given=afresh, check=accounts.about_the_caller()),
        Row("refresh with self's refresh token (whoever holds it)", "POST",
            "/api/v1/auth/refresh", (200, 200, 200, 200, 200), given=someone,
            body=lambda given: {"refresh_token": given["self"].refresh_token},
            check=refreshed_for_self),
        Row("sign out with self's refresh token (whoever holds it)", "POST",
            "/api/v1/auth/logout", (204, 204, 204, 204, 204), given=someone,
            body=lambda given: {"refresh_token": given["self"].refresh_token}),
        # ---- administration
        Row("read self's account by id", "GET", users, (200, 403, 403, 401, 200),
            given=someone, check=shows_self, changes_nothing=True),
        Row("read an account that does not exist", "GET", users, (403, 403, 403, 401, 404),
            given=accounts.nobody, changes_nothing=True),
        Row("grant self organizer", "POST", users + "/roles/organizer",
            (403, 403, 403, 401, 200), given=someone),
        Row("revoke organizer from self", "DELETE", users + "/roles/organizer",
            (403, 403, 403, 401, 200), given=someone),
        Row("grant self admin", "POST", users + "/roles/admin", (403, 403, 403, 401, 422),
            given=someone),
    ]  # fmt: skip


@pytest.fixture
async def auth(start_auth: AuthFactory) -> AsyncIterator[AuthHarness]:
    """Auth with cheap password hashing: this table is about who may call, not hashing."""
    async with start_auth(argon2_memory_kib=8 * 1024, argon2_time_cost=1) as harness:
        yield harness


async def test_every_auth_endpoint_answers_each_caller_as_the_rule_says(
    auth: AuthHarness,
) -> None:
    accounts = Accounts(auth)
    await accounts.start()
    report = await check_ownership(auth.client, rows(accounts, auth.password), callers())
    assert report.requests == 15 * 5
