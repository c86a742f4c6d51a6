"""``Annotated`` dependencies of the auth API: its runtime, the caller's address, admins,
its repositories on the request's session, and :data:`RunHandler`, which hands a handler
all of them it asks for.

The clock, the outbox and the database are the platform's (:mod:`marquee_platform.deps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from marquee_auth.domain import AuthPolicy
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import (
    OneTimeTokenRepository,
    RefreshTokenRepository,
    SigningKeyRepository,
    UserRepository,
)
from marquee_auth.throttling import LoginThrottle
from marquee_auth.tokens import AccessTokenRevocations, DatabaseSigningKeys
from marquee_platform.clock import Clock
from marquee_platform.deps import (
    ClockDep,
    HandlerDependencies,
    OutboxDep,
    on_read_session,
    on_write_session,
)
from marquee_platform.forwarding import Network, client_address
from marquee_platform.outbox import Outbox
from marquee_platform.security import Principal, Role, require_roles

Repository = TypeVar("Repository")
Result = TypeVar("Result")


@dataclass(frozen=True, slots=True)
class AuthRuntime:
    """What the service builds once at start (``app.state.auth``) and hands to handlers."""

    policy: AuthPolicy
    hasher: PasswordHasher
    throttle: LoginThrottle
    revocations: AccessTokenRevocations
    signing_keys: DatabaseSigningKeys
    trusted_proxies: tuple[Network, ...]
    jwks_max_age_seconds: int


async def _runtime(request: Request) -> AuthRuntime:
    runtime: AuthRuntime = request.app.state.auth
    return runtime


async def _client_address(
    request: Request, runtime: Annotated[AuthRuntime, Depends(_runtime)]
) -> str:
    peer = request.client.host if request.client else None
    forwarded_for = ", ".join(request.headers.getlist("x-forwarded-for")) or None
    return client_address(peer, forwarded_for, runtime.trusted_proxies)


RuntimeDep = Annotated[AuthRuntime, Depends(_runtime)]
ClientAddressDep = Annotated[str, Depends(_client_address)]
"""The caller's address: the peer, or the first untrusted ``X-Forwarded-For`` hop when the
peer is one of ``trusted_proxies`` (the gateway)."""
AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]

UsersDep = Annotated[UserRepository, Depends(on_write_session(UserRepository))]
OneTimeTokensDep = Annotated[
    OneTimeTokenRepository, Depends(on_write_session(OneTimeTokenRepository))
]
RefreshTokensDep = Annotated[
    RefreshTokenRepository, Depends(on_write_session(RefreshTokenRepository))
]
SigningKeysDep = Annotated[SigningKeyRepository, Depends(on_write_session(SigningKeyRepository))]
"""Repositories in the request's transaction (they share its one write session)."""

ReadUsersDep = Annotated[UserRepository, Depends(on_read_session(UserRepository))]
ReadOneTimeTokensDep = Annotated[
    OneTimeTokenRepository, Depends(on_read_session(OneTimeTokenRepository))
]
ReadRefreshTokensDep = Annotated[
    RefreshTokenRepository, Depends(on_read_session(RefreshTokenRepository))
]
ReadSigningKeysDep = Annotated[SigningKeyRepository, Depends(on_read_session(SigningKeyRepository))]
"""Repositories for endpoints that only read (they share one read session)."""


@dataclass(frozen=True, slots=True)
class AuthHandlerDependencies(HandlerDependencies):
    """Everything auth's handlers take as keyword arguments, for one request.

    Calling it runs a handler with the ones its signature names (the way a cosmicpython
    bootstrap injects them), so an endpoint passes only what is particular to the call —
    the command, ``client_address``, ``grant`` — and a handler that needs one more
    dependency changes no endpoint.
    """

    users: UserRepository
    one_time_tokens: OneTimeTokenRepository
    refresh_tokens: RefreshTokenRepository
    keys: SigningKeyRepository
    outbox: Outbox
    hasher: PasswordHasher
    throttle: LoginThrottle
    revocations: AccessTokenRevocations
    policy: AuthPolicy
    clock: Clock


async def _handler_dependencies(
    users: UsersDep,
    one_time_tokens: OneTimeTokensDep,
    refresh_tokens: RefreshTokensDep,
    keys: SigningKeysDep,
    outbox: OutboxDep,
    runtime: RuntimeDep,
    clock: ClockDep,
) -> AuthHandlerDependencies:
    return AuthHandlerDependencies(
        users=users,
        one_time_tokens=one_time_tokens,
        refresh_tokens=refresh_tokens,
        keys=keys,
        outbox=outbox,
        hasher=runtime.hasher,
        throttle=runtime.throttle,
        revocations=runtime.revocations,
        policy=runtime.policy,
        clock=clock,
    )


RunHandler = Annotated[AuthHandlerDependencies, Depends(_handler_dependencies)]
"""``await run(handlers.sign_in, command)``: the handler, given this request's repositories
(in its one transaction), outbox, clock and the service's runtime."""
