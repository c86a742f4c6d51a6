"""``Annotated`` dependencies of the auth API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_auth.domain import AuthPolicy, Network, client_address
from marquee_auth.passwords import PasswordHasher
from marquee_auth.throttling import LoginThrottle
from marquee_auth.tokens import AccessTokenRevocations, DatabaseSigningKeys
from marquee_platform.db import Database
from marquee_platform.http import database_of
from marquee_platform.outbox import Outbox
from marquee_platform.security import Principal, Role, require_roles

OUTBOX_SOURCE = "/marquee/auth"


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


def _runtime(request: Request) -> AuthRuntime:
    runtime: AuthRuntime = request.app.state.auth
    return runtime


def _client_address(request: Request, runtime: Annotated[AuthRuntime, Depends(_runtime)]) -> str:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), runtime.trusted_proxies)


def outbox(session: AsyncSession) -> Outbox:
    return Outbox(session, source=OUTBOX_SOURCE)


RuntimeDep = Annotated[AuthRuntime, Depends(_runtime)]
ClientAddressDep = Annotated[str, Depends(_client_address)]
"""The caller's address: the peer, or the first untrusted ``X-Forwarded-For`` hop when the
peer is one of ``trusted_proxies`` (the gateway)."""
DatabaseDep = Annotated[Database, Depends(database_of)]
AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
