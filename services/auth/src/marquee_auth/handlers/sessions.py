"""Sign-in, refresh and sign-out: sessions are refresh-token families; access tokens are JWTs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from marquee_auth.domain import (
    AuthPolicy,
    RevocationReason,
    SignIn,
    canonical_email,
    hash_token,
    new_secret_token,
)
from marquee_auth.handlers.shared import ordered_roles
from marquee_auth.models import User
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import RefreshTokenRepository, SigningKeyRepository, UserRepository
from marquee_auth.throttling import LoginThrottle
from marquee_auth.tokens import AccessTokenRevocations, sign_access_token
from marquee_platform.clock import Clock
from marquee_platform.errors import Unauthenticated, Unavailable


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a sign-in or refresh hands out. The refresh token exists only here: we keep
    its digest."""

    user_id: uuid.UUID
    roles: list[str]
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshRefused:
    """A refresh that must fail *and* whose effect (revoking the family) must commit."""

    detail: str
    code: str


async def sign_in(
    cmd: SignIn,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    keys: SigningKeyRepository,
    throttle: LoginThrottle,
    hasher: PasswordHasher,
    policy: AuthPolicy,
    clock: Clock,
) -> TokenPair:
    email = canonical_email(cmd.email)
    await throttle.check(email, cmd.client_address)
    # No row lock while the hash is checked (tens of milliseconds): concurrent sign-ins of
    # one account must not queue behind each other holding database connections.
    user = await users.by_email(email)
    password_hash = user.password_hash if user is not None else None
    if not await hasher.verify(password_hash, cmd.password) or user is None:
        await throttle.record_failure(email, cmd.client_address)
        raise Unauthenticated(
            "The email address or the password is not right.", code="invalid-credentials"
        )
    await throttle.reset_account(email)
    now = clock()
    assert password_hash is not None
    if hasher.needs_rehash(password_hash):
        # Only if the hash is still the one we checked: a password change that committed
        # meanwhile must not be overwritten with the old password.
        await users.replace_password_hash(
            user.id, old=password_hash, new=await hasher.hash(cmd.password)
        )
    await users.record_login(user.id, at=now)
    return await start_session(
        user, refresh_tokens=refresh_tokens, keys=keys, policy=policy, now=now
    )


async def start_session(
    user: User,
    *,
    refresh_tokens: RefreshTokenRepository,
    keys: SigningKeyRepository,
    policy: AuthPolicy,
    now: datetime,
) -> TokenPair:
    expires_at = now + policy.refresh_token_ttl
    family = await refresh_tokens.start_family(user_id=user.id, now=now, expires_at=expires_at)
    refresh_token = new_secret_token()
    await refresh_tokens.add_token(
        family=family, token_hash=hash_token(refresh_token), now=now, expires_at=expires_at
    )
    return await _pair(user, refresh_token, expires_at, keys=keys, policy=policy, now=now)


async def _pair(
    user: User,
    refresh_token: str,
    refresh_expires_at: datetime,
    *,
    keys: SigningKeyRepository,
    policy: AuthPolicy,
    now: datetime,
) -> TokenPair:
    key = await keys.signing_key(now=now)
    if key is None:
        raise Unavailable(
            "The auth service has no signing key yet (it creates one when it starts); "
            "retry in a moment."
        )
    roles = ordered_roles(set(user.roles))
    access = sign_access_token(
        key,
        user_id=user.id,
        roles=roles,
        now=now,
        lifetime=policy.access_token_ttl,
        issuer=policy.issuer,
        audience=policy.audience,
    )
    return TokenPair(
        user_id=user.id,
        roles=roles,
        access_token=access.token,
        access_token_expires_at=access.expires_at,
        refresh_token=refresh_token,
        refresh_token_expires_at=refresh_expires_at,
    )


async def refresh_session(
    refresh_token: str,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    keys: SigningKeyRepository,
    revocations: AccessTokenRevocations,
    policy: AuthPolicy,
    clock: Clock,
) -> TokenPair | RefreshRefused:
    """Rotate: the presented token is used up and a new one replaces it.

    A token that was already rotated can only be presented again by someone holding a
    copy (or a client that lost the answer to its refresh): the whole family is revoked
    and the user's access tokens die too. The caller must *commit* that, then answer 401.
    """
    now = clock()
    found = await refresh_tokens.find(hash_token(refresh_token))
    if found is None:
        raise Unauthenticated(
            "This refresh token is not valid (it may have expired); sign in again.",
            code="invalid-refresh-token",
        )
    token, family = found
    if family.revoked_at is not None:
        raise Unauthenticated(
            "This session has ended (signed out or revoked); sign in again.",
            code="session-ended",
        )
    if token.used_at is not None:
        await refresh_tokens.revoke_family(
            family.id, now=now, reason=RevocationReason.REUSE_DETECTED
        )
        await revocations.revoke_all(family.user_id, at=now)
        return RefreshRefused(
            detail=(
                "This refresh token was already used once. Someone may have copied it, so "
                "this session has been ended on every device that shared it; sign in again."
            ),
            code="refresh-token-reused",
        )
    if token.expires_at <= now:
        raise Unauthenticated(
            "This refresh token has expired; sign in again.", code="refresh-token-expired"
        )
    user = await users.get(family.user_id)
    if user is None or user.deleted_at is not None:
        raise Unauthenticated("This account no longer exists.", code="account-deleted")
    token.used_at = now
    expires_at = now + policy.refresh_token_ttl
    new_token = new_secret_token()
    await refresh_tokens.add_token(
        family=family, token_hash=hash_token(new_token), now=now, expires_at=expires_at
    )
    return await _pair(user, new_token, expires_at, keys=keys, policy=policy, now=now)


async def sign_out(
    refresh_token: str, *, refresh_tokens: RefreshTokenRepository, clock: Clock
) -> None:
    """End the session the token belongs to. Unknown tokens are ignored: signing out
    twice is fine, and the answer reveals nothing about a token."""
    found = await refresh_tokens.find(hash_token(refresh_token))
    if found is not None:
        await refresh_tokens.revoke_family(found[1].id, now=clock(), reason=RevocationReason.LOGOUT)


async def sign_out_everywhere(
    user_id: uuid.UUID,
    *,
    refresh_tokens: RefreshTokenRepository,
    revocations: AccessTokenRevocations,
    clock: Clock,
) -> None:
    now = clock()
    await refresh_tokens.revoke_all_families(
        user_id, now=now, reason=RevocationReason.LOGOUT_EVERYWHERE
    )
    await revocations.revoke_all(user_id, at=now)
