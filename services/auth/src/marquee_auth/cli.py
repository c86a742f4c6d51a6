"""``marquee auth ...``: operator commands of the auth service.

They read the database from ``AuthSettings`` (``AUTH_DATABASE_URL``, else
``MARQUEE_DATABASE_URL``), like the service itself. Run through ``marquee``, neither set,
they use the ``marquee_auth`` database of the PostgreSQL that ``marquee dev`` uses (the
``marquee`` tool sets ``AUTH_DATABASE_URL`` for them, as ``marquee dev`` does for the
service). A database that does not answer is one line and exit code 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer

from marquee_auth import handlers
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import SigningKeyRepository, UserRepository
from marquee_auth.settings import AuthSettings
from marquee_platform.clock import utc_now
from marquee_platform.db import Database, DatabaseUnreachable, WriteSession
from marquee_platform.deps import outbox_source
from marquee_platform.errors import DomainError
from marquee_platform.outbox import Outbox

app = typer.Typer(
    help="The auth service: make admins, rotate and list signing keys.",
    no_args_is_help=True,
)

T = TypeVar("T")


def _run(work: Callable[[WriteSession, AuthSettings], Awaitable[T]]) -> T:
    settings = AuthSettings()

    async def run() -> T:
        database = Database(settings.database_url, pool_size=1, application_name="marquee-auth-cli")
        try:
            await database.check_reachable()
            async with database.transaction() as session:
                return await work(session, settings)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except DomainError as error:
        typer.secho(error.detail, fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except DatabaseUnreachable as error:
        typer.secho(
            f"cannot reach the auth database at {error}; start `make dev`, "
            "or set AUTH_DATABASE_URL",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1) from None


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email address")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Asked for when not given (keeps it out of the shell history)",
        ),
    ],
) -> None:
    """Make an admin: a new verified account, or an existing account promoted.

    The admin role is in the user's tokens from their next sign-in or token refresh.
    """

    async def work(session: WriteSession, settings: AuthSettings) -> tuple[str, bool]:
        hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            concurrency=1,
        )
        user, created = await handlers.create_admin(
            email,
            password,
            users=UserRepository(session),
            outbox=Outbox(session, source=outbox_source(settings.service_name)),
            hasher=hasher,
            clock=utc_now,
        )
        return str(user.id), created

    user_id, created = _run(work)
    if created:
        typer.echo(f"Created admin {user_id} ({email.strip().lower()}).")
    else:
        typer.echo(
            f"{email.strip().lower()} ({user_id}) is an admin now; their password is unchanged. "
            "The role is in their tokens from their next sign-in or refresh."
        )


@app.command("rotate-keys")
def rotate_keys(
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Sign with the new key at once instead of after the publish-ahead delay "
            "(verifiers refetch the JWKS when they meet an unknown key id)",
        ),
    ] = False,
    withdraw_previous: Annotated[
        bool,
        typer.Option(
            "--withdraw-previous",
            help="A key was compromised: also remove every older key, so tokens it signed "
            "stop working (everyone signs in again). Implies --now.",
        ),
    ] = False,
) -> None:
    """Start using a new signing key; the old one stays published until its tokens expire."""

    async def work(session: WriteSession, settings: AuthSettings) -> tuple[str, datetime]:
        key = await handlers.rotate_signing_keys(
            keys=SigningKeyRepository(session),
            policy=settings.policy(),
            clock=utc_now,
            immediately=now,
            withdraw_previous=withdraw_previous,
        )
        return key.kid, key.activates_at

    kid, activates_at = _run(work)
    if activates_at <= utc_now():
        typer.echo(f"New signing key {kid} is active now.")
    else:
        typer.echo(
            f"New signing key {kid} is published and signs from "
            f"{activates_at.isoformat(timespec='seconds')}."
        )


@app.command("list-keys")
def list_keys() -> None:
    """The signing keys and their states (no private material is printed)."""

    async def work(session: WriteSession, settings: AuthSettings) -> list[str]:
        return [
            f"{key.kid}  {key.state:<8} {key.algorithm}  "
            f"activates {key.activates_at.isoformat(timespec='seconds')}"
            + (
                f"  retired {key.retired_at.isoformat(timespec='seconds')}"
                if key.retired_at
                else ""
            )
            for key in await SigningKeyRepository(session).all()
        ]

    for line in _run(work) or ["No signing keys yet; the service creates one when it starts."]:
        typer.echo(line)
