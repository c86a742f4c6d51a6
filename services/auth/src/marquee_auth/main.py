"""The auth service: app factory and its description for ``marquee``."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import FastAPI

from marquee_auth import api, handlers
from marquee_auth.deps import AuthRuntime
from marquee_auth.domain import AuthPolicy
from marquee_auth.passwords import PasswordHasher
from marquee_auth.repository import (
    OneTimeTokenRepository,
    RefreshTokenRepository,
    SigningKeyRepository,
)
from marquee_auth.settings import AuthSettings
from marquee_auth.throttling import LoginThrottle
from marquee_auth.tokens import AccessTokenRevocations, DatabaseSigningKeys
from marquee_platform.app import create_service_app
from marquee_platform.clock import utc_now
from marquee_platform.db import Database
from marquee_platform.forwarding import parse_networks
from marquee_platform.periodic import PeriodicTask
from marquee_platform.security import TokenVerifier, redis_revocation_check
from marquee_platform.service import ServiceSpec

logger = logging.getLogger(__name__)


async def maintain_keys_and_tokens(database: Database, policy: AuthPolicy) -> None:
    """One round of upkeep: signing keys (first key, promotion, rotation, pruning) and
    forgetting expired tokens. Each in its own transaction."""
    async with database.transaction() as session:
        result = await handlers.maintain_signing_keys(
            keys=SigningKeyRepository(session), policy=policy, clock=utc_now
        )
    if result.created or result.promoted or result.deleted:
        logger.info(
            "signing keys: created %s, promoted %s, retired %s, deleted %d",
            result.created,
            result.promoted,
            result.retired,
            result.deleted,
        )
    async with database.transaction() as session:
        await handlers.prune_expired(
            refresh_tokens=RefreshTokenRepository(session),
            one_time_tokens=OneTimeTokenRepository(session),
            policy=policy,
            clock=utc_now,
        )


def upkeep_task(database: Database, policy: AuthPolicy, *, every_seconds: float) -> PeriodicTask:
    """Key rotation and token pruning, by one replica at a time."""
    return PeriodicTask(
        "auth-upkeep",
        every_seconds=every_seconds,
        run=lambda: maintain_keys_and_tokens(database, policy),
        single_runner=database,
    )


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    policy = settings.policy()

    async def start_auth(app: FastAPI, stack: AsyncExitStack) -> None:
        database: Database = app.state.database
        signing_keys = DatabaseSigningKeys(database, retired_kept_for=policy.retired_key_kept_for)
        app.state.auth = AuthRuntime(
            policy=policy,
            hasher=PasswordHasher(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
                concurrency=settings.password_hash_concurrency,
            ),
            throttle=LoginThrottle(app.state.redis, settings.throttle_policy()),
            revocations=AccessTokenRevocations(
                app.state.redis, token_lifetime=policy.access_token_ttl
            ),
            signing_keys=signing_keys,
            trusted_proxies=parse_networks(settings.trusted_proxies),
            jwks_max_age_seconds=settings.jwks_max_age_seconds,
        )
        # Auth verifies its own tokens against its database rather than its own JWKS URL,
        # and refuses tokens revoked through the shared Redis marker.
        verifier: TokenVerifier = app.state.token_verifier
        verifier.keys = signing_keys
        verifier.is_revoked = redis_revocation_check(app.state.redis)
        # Before serving: a key must exist to sign with (created under an advisory lock,
        # so instances starting together make one).
        await maintain_keys_and_tokens(database, policy)

    return create_service_app(
        settings,
        title="Marquee auth",
        description=(
            "Users, roles, credentials and tokens; publishes the JWKS every "
            "service verifies against."
        ),
        routers=[api.auth, api.well_known],
        uses_redis=True,
        on_startup=[start_auth],
        periodic_tasks=[
            lambda app: upkeep_task(
                app.state.database,
                policy,
                every_seconds=settings.signing_key_check_interval_seconds,
            )
        ],
    )


SERVICE = ServiceSpec(
    name="auth",
    settings_class=AuthSettings,
    app_factory="marquee_auth.main:create_app",
    dev_port=8001,
    migrations=Path(__file__).parent / "migrations",
)
