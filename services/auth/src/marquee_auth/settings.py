"""Settings of the auth service (environment prefix ``AUTH_``)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from marquee_auth.domain import AuthPolicy
from marquee_auth.throttling import ThrottlePolicy
from marquee_platform.settings import ServiceSettings

KEY_RETENTION_MARGIN = timedelta(seconds=120)
"""A retired key stays published for the access-token lifetime plus this: verifiers allow
30 s of clock leeway, and machines' clocks may disagree a little more."""


class AuthSettings(ServiceSettings):
    service_name: ClassVar[str] = "auth"

    # ---- tokens ---------------------------------------------------------------------
    access_token_ttl_seconds: int = Field(
        default=900, ge=60, le=3600, description="Lifetime of access tokens (JWT)"
    )
    refresh_token_ttl_days: int = Field(
        default=30, ge=1, le=365, description="Each refresh token's lifetime; refreshing slides it"
    )
    email_verification_ttl_hours: int = Field(default=48, ge=1, le=24 * 14)
    password_reset_ttl_minutes: int = Field(default=60, ge=5, le=24 * 60)
    password_reset_cooldown_seconds: int = Field(
        default=60,
        ge=0,
        description="At most one reset email per account in this time (no mail bombing)",
    )

    # ---- signing keys -------------------------------------------------------------
    signing_key_rotation_days: float = Field(
        default=30.0,
        ge=0,
        description="Rotate automatically when the active key is this old; 0 turns it off",
    )
    signing_key_publish_ahead_seconds: int = Field(
        default=600,
        ge=0,
        description="A new key is in the JWKS this long before it signs anything, so every "
        "verifier's cached JWKS has it first (must exceed jwks_max_age_seconds)",
    )
    signing_key_check_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often the service promotes, rotates and prunes keys"
    )
    jwks_max_age_seconds: int = Field(
        default=300, ge=0, description="Cache-Control max-age of the JWKS document"
    )

    # ---- passwords --------------------------------------------------------------------
    # OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane (~18 ms on a 2-core laptop).
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8 * 1024)
    argon2_parallelism: int = Field(default=1, ge=1)
    password_hash_concurrency: int = Field(
        default=4,
        ge=1,
        description="Hashes computed at once; more wait, so a login burst cannot exhaust memory",
    )

    # ---- brute-force defence ----------------------------------------------------------
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_lockout_base_seconds: int = Field(
        default=30, ge=1, description="First lockout; doubles with every further failure"
    )
    login_lockout_max_seconds: int = Field(default=3600, ge=1)
    login_max_failures_per_ip: int = Field(
        default=50, ge=1, description="Failed sign-ins from one address per window"
    )
    trusted_proxies: list[str] = Field(
        default=["127.0.0.1/32"],
        description="Networks whose X-Forwarded-For is believed (the gateway, load balancers)",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _publish_keys_before_caches_expire(self) -> AuthSettings:
        if 0 < self.signing_key_publish_ahead_seconds < self.jwks_max_age_seconds:
            raise ValueError(
                "signing_key_publish_ahead_seconds must be 0 or at least jwks_max_age_seconds, "
                "or verifiers may see tokens signed with a key their cached JWKS lacks"
            )
        return self

    def policy(self) -> AuthPolicy:
        access_token_ttl = timedelta(seconds=self.access_token_ttl_seconds)
        return AuthPolicy(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=timedelta(days=self.refresh_token_ttl_days),
            email_verification_ttl=timedelta(hours=self.email_verification_ttl_hours),
            password_reset_ttl=timedelta(minutes=self.password_reset_ttl_minutes),
            password_reset_cooldown=timedelta(seconds=self.password_reset_cooldown_seconds),
            key_rotation_age=(
                timedelta(days=self.signing_key_rotation_days)
                if self.signing_key_rotation_days > 0
                else None
            ),
            key_publish_ahead=timedelta(seconds=self.signing_key_publish_ahead_seconds),
            retired_key_kept_for=access_token_ttl + KEY_RETENTION_MARGIN,
        )

    def throttle_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            window_seconds=self.login_failure_window_seconds,
            max_account_failures=self.login_max_failures_per_account,
            lockout_base_seconds=self.login_lockout_base_seconds,
            lockout_max_seconds=self.login_lockout_max_seconds,
            max_address_failures=self.login_max_failures_per_ip,
        )
