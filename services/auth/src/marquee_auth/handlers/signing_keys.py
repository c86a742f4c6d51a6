"""Upkeep: signing keys (first key, rotation, retirement) and pruning expired tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from marquee_auth.domain import AuthPolicy
from marquee_auth.models import SigningKey
from marquee_auth.repository import (
    OneTimeTokenRepository,
    RefreshTokenRepository,
    SigningKeyRepository,
)
from marquee_auth.tokens import generate_signing_key
from marquee_platform.clock import Clock


@dataclass(frozen=True, slots=True)
class KeyMaintenance:
    created: list[str]
    promoted: list[str]
    retired: list[str]
    deleted: int


async def maintain_signing_keys(
    *, keys: SigningKeyRepository, policy: AuthPolicy, clock: Clock
) -> KeyMaintenance:
    """Run at start and periodically; safe when several instances run it at once.

    Creates the first key; promotes a ``next`` key once it is due (retiring the active
    one); schedules a ``next`` key when the active one is older than the rotation age;
    deletes retired keys once every token they signed has expired.
    """
    await keys.lock()
    now = clock()
    all_keys = list(await keys.all())
    created: list[str] = []
    promoted, retired = await _promote_due_keys(all_keys, keys=keys, now=now)
    active = next((key for key in all_keys if key.state == "active"), None)
    if active is None:
        key = generate_signing_key(now=now, activates_at=now, state="active")
        keys.add(key)
        await keys.flush()
        created.append(key.kid)
    elif (
        policy.key_rotation_age is not None
        and active.activates_at <= now - policy.key_rotation_age
        and not any(key.state == "next" for key in all_keys)
    ):
        key = await _schedule_next_key(keys=keys, policy=policy, now=now)
        created.append(key.kid)
    deleted = await keys.delete_retired_before(now - policy.retired_key_kept_for)
    return KeyMaintenance(created=created, promoted=promoted, retired=retired, deleted=deleted)


async def _promote_due_keys(
    all_keys: list[SigningKey], *, keys: SigningKeyRepository, now: datetime
) -> tuple[list[str], list[str]]:
    due = [key for key in all_keys if key.state == "next" and key.activates_at <= now]
    if not due:
        return [], []
    newest = max(due, key=lambda key: key.activates_at)
    retired = []
    for key in all_keys:
        if key.state == "active" or (key.state == "next" and key is not newest and key in due):
            key.state, key.retired_at = "retired", now
            retired.append(key.kid)
    await keys.flush()  # the old active key must be retired before the new one is active
    newest.state = "active"
    await keys.flush()
    return [newest.kid], retired


async def _schedule_next_key(
    *, keys: SigningKeyRepository, policy: AuthPolicy, now: datetime
) -> SigningKey:
    key = generate_signing_key(now=now, activates_at=now + policy.key_publish_ahead, state="next")
    keys.add(key)
    await keys.flush()
    if policy.key_publish_ahead.total_seconds() <= 0:
        await _promote_due_keys(list(await keys.all()), keys=keys, now=now)
    return key


async def rotate_signing_keys(
    *,
    keys: SigningKeyRepository,
    policy: AuthPolicy,
    clock: Clock,
    immediately: bool = False,
    withdraw_previous: bool = False,
) -> SigningKey:
    """Start using a new signing key.

    By default the new key is published now and signs from ``key_publish_ahead`` later,
    so every verifier's cached JWKS already has it. ``immediately`` (a compromised key)
    makes it sign at once; ``withdraw_previous`` also removes every older key from the
    JWKS, so tokens they signed stop working as soon as verifiers refetch.
    """
    await keys.lock()
    now = clock()
    existing = list(await keys.all())
    if immediately or withdraw_previous:
        for key in existing:
            if key.state == "next":
                await keys.delete(key.kid)  # never signed anything
        key = generate_signing_key(now=now, activates_at=now, state="next")
        keys.add(key)
        await keys.flush()
        await _promote_due_keys(list(await keys.all()), keys=keys, now=now)
        if withdraw_previous:
            for old in existing:
                await keys.delete(old.kid)
        return key
    upcoming = next((key for key in existing if key.state == "next"), None)
    if upcoming is not None:
        return upcoming
    return await _schedule_next_key(keys=keys, policy=policy, now=now)


async def prune_expired(
    *,
    refresh_tokens: RefreshTokenRepository,
    one_time_tokens: OneTimeTokenRepository,
    policy: AuthPolicy,
    clock: Clock,
) -> int:
    """Forget what can no longer be used: expired tokens, sessions over for a week."""
    now = clock()
    week = timedelta(days=7)
    return await refresh_tokens.prune(now=now, keep_ended_for=week) + await one_time_tokens.prune(
        now=now, keep_for=timedelta(days=1)
    )
